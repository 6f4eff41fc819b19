"""View change rules: checking VIEW-CHANGE messages and computing a NEW-VIEW (TOCS 2002 §4.4).

Theory of operation
-------------------
A backup whose request timer expires stops accepting messages of view ``v`` and sends
``<VIEW-CHANGE, v+1, h, C, P, i>``: ``h`` its stable checkpoint with proof ``C`` (2f+1 CHECKPOINTs)
and ``P`` one prepared certificate per sequence above ``h`` (a PRE-PREPARE and 2f matching
PREPAREs of distinct backups, the highest view's). :func:`check_view_change` verifies all of it,
authenticators included, so a faulty replica cannot invent a certificate.

The primary of ``v+1`` collects 2f+1 valid view changes (its own included) and derives the
pre-prepares of the new view with :func:`plan_new_view`:

* ``min_s`` = the highest stable checkpoint among them, ``max_s`` = the highest prepared sequence;
* for every ``s`` in ``(min_s, max_s]``: if some certificate for ``s`` exists, re-issue its batch
  (the one from the highest view); otherwise issue the *null request* (empty batch).

Any batch committed at ``s`` was prepared by 2f+1 replicas, f+1 of them honest; any 2f+1 view
changes include one of those, so the batch is re-issued and no committed request is lost or
reordered. Backups recompute the plan from the NEW-VIEW's view changes and accept it only if the
primary's pre-prepares match exactly.

With MAC authenticators each checker verifies nested messages with its own entry only, and the
VIEW-CHANGE-ACK protocol of TOCS §4.5 is not implemented: safety holds, but a faulty replica
can split the honest replicas' verdicts on certificates holding its own messages and so stall a
view change (precisely: :mod:`medbench.consensus.auth`, *macs*).

The pure rules come first; the replica's view-change handlers follow as functions of the
:class:`~.self.Replica` whose state they change (its handler table binds them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from medbench.consensus.pbft.checkpoint import verify_proof
from medbench.consensus.pbft.core import INVALID
from medbench.consensus.pbft.log import ViewRecord
from medbench.consensus.pbft.messages import (
    NULL_DIGEST,
    Item,
    NewView,
    PrePrepare,
    Request,
    Timeout,
    Verify,
    ViewChange,
    compute_batch_digest,
)
from medbench.consensus.pbft.statetransfer import StateTransfer
from medbench.node import Note
from medbench.quorum import strong_quorum

UNORDERED = "unordered: pending through more than f new views"
"""Why a replica gives up a request no view ordered (:meth:`ViewChanges._rejudge`)."""
GIVE_UP_VIEWS = 2
"""A request given up keeps its view-change timer for up to ``GIVE_UP_VIEWS * n`` new views (or
until its client sends a newer one): every other honest replica becomes primary meanwhile, so
one that still held it pending sees f+1 views in a row not propose it and gives it up too."""


def check_view_change(
    vc: ViewChange, n: int, window: int, verify: Verify, tally: Counter[str] | None = None
) -> str | None:
    """``None`` when ``vc``'s checkpoint proof and prepared certificates hold, else why not.

    The outer authenticator of ``vc`` is checked by the caller; ``tally["digest"]`` (if given)
    counts the batch digests recomputed.
    """
    quorum = strong_quorum(n)
    h = vc.stable_sequence
    if h == 0:
        if vc.checkpoint_proof:
            return "proof for the genesis checkpoint"
    elif verify_proof(vc.checkpoint_proof, h, n, quorum, verify) is None:
        return "bad checkpoint proof"
    seen: set[int] = set()
    for proof in vc.prepared:
        pp = proof.pre_prepare
        s = pp.sequence
        if s in seen:
            return "two certificates for one sequence"
        seen.add(s)
        if not h < s <= h + window:
            return "certificate outside the watermarks"
        if pp.view >= vc.view:
            return "certificate from a view not before the new one"
        primary = pp.view % n
        if pp.replica != primary:
            return "certificate pre-prepare not from its primary"
        if tally is not None:
            tally["digest"] += 1
        if compute_batch_digest(pp.timestamp, pp.batch) != pp.batch_digest:
            return "certificate batch digest mismatch"
        voters: set[int] = set()
        for p in proof.prepares:
            if (p.view, p.sequence, p.batch_digest) != (pp.view, s, pp.batch_digest):
                return "certificate prepare does not match"
            if p.replica == primary or not 0 <= p.replica < n or p.replica in voters:
                return "certificate prepare from a wrong replica"
            voters.add(p.replica)
        if len(voters) < quorum - 1:  # 2f at n = 3f + 1: the pre-prepare is the primary's vote
            return "certificate without a quorum of prepares"
        if not verify(pp.replica, pp.body(), pp.auth):
            return "certificate pre-prepare not authentic"
        for p in proof.prepares:
            if not verify(p.replica, p.body(), p.auth):
                return "certificate prepare not authentic"
    return None


@dataclass(frozen=True, slots=True)
class Plan:
    """What a NEW-VIEW must re-issue: ``batches[s] = (timestamp, batch, digest)``."""

    min_s: int
    max_s: int
    batches: dict[int, tuple[int, tuple[Item, ...], bytes]]
    checkpoint: ViewChange


def plan_new_view(view_changes: Iterable[ViewChange]) -> Plan:
    """Compute ``min_s``, ``max_s`` and the batch for every sequence between (TOCS §4.4)."""
    vcs = list(view_changes)
    assert vcs, "plan_new_view needs view changes"
    best_vc = max(vcs, key=lambda vc: vc.stable_sequence)
    min_s = best_vc.stable_sequence
    chosen: dict[int, PrePrepare] = {}
    for vc in vcs:
        for proof in vc.prepared:
            pp = proof.pre_prepare
            if pp.sequence <= min_s:
                continue
            old = chosen.get(pp.sequence)
            if old is None or pp.view > old.view:
                chosen[pp.sequence] = pp
    max_s = max(chosen, default=min_s)
    batches: dict[int, tuple[int, tuple[Item, ...], bytes]] = {}
    for s in range(min_s + 1, max_s + 1):
        cert = chosen.get(s)
        if cert is None:
            batches[s] = (0, (), NULL_DIGEST)
        else:
            batches[s] = (cert.timestamp, cert.batch, cert.batch_digest)
    return Plan(min_s, max_s, batches, best_vc)


def matches_plan(
    plan: Plan,
    pre_prepares: tuple[PrePrepare, ...],
    view: int,
    n: int,
    tally: Counter[str] | None = None,
) -> bool:
    """True when ``pre_prepares`` are exactly the plan's, issued by the primary of ``view``
    (``tally["digest"]``, if given, counts the batch digests recomputed)."""
    if len(pre_prepares) != len(plan.batches):
        return False
    for pp, s in zip(pre_prepares, range(plan.min_s + 1, plan.max_s + 1), strict=True):
        ts, _batch, digest = plan.batches[s]
        if pp.sequence != s or pp.view != view or pp.replica != view % n:
            return False
        if pp.batch_digest != digest or pp.timestamp != ts:
            return False
        if tally is not None:
            tally["digest"] += 1
        if compute_batch_digest(pp.timestamp, pp.batch) != digest:
            return False
    return True


class ViewChanges(StateTransfer):
    """The view-change handlers of a replica (TOCS §4.4; see the module docstring)."""

    def handle_timeout(self, src: int, msg: Timeout) -> None:
        """A local timer fired: request timer, view-change timer or fetch timer."""
        if msg.timer == "fetch":
            if self.fetch_target is not None:
                self.send_fetch()
            else:
                self.fetch_deadline = None
            return
        if msg.timer in ("request", "view-change"):
            self.start_view_change(self.view + 1)
            return
        self._reject(msg, "unknown timer")

    def start_view_change(self, new_view: int) -> None:
        if new_view <= self.view:
            return
        self.view = new_view
        self.active = False
        self.queue.clear()
        self._ready.notes.append(Note("view-change", new_view))
        stable = self.checkpoints.stable
        prepared = tuple(
            slot.proof for slot in self.log if slot.proof is not None and slot.sequence > stable
        )
        vc = self._seal(
            ViewChange(new_view, stable, self.checkpoints.stable_proof, prepared, self.node_id)
        )
        self._ready.persist.append(ViewRecord(new_view, False))
        self._ready.persist.append(vc)
        self._send(self.others, vc)
        self.own_view_changes[new_view] = vc
        for old in sorted(self.own_view_changes)[:-4]:
            del self.own_view_changes[old]
        self.vc_resend_at = self.now + self.config.view_change_timeout_us
        # the timer for the new view starts only once 2f+1 replicas are in it (TOCS §4.5.2), so a
        # replica that suspects the primary alone does not race ahead through views
        self.vc_deadline = None
        self.vc_backoff += 1
        self.store_view_change(vc)
        self.maybe_new_view()

    def store_view_change(self, vc: ViewChange) -> None:
        by_replica = self.view_changes.setdefault(vc.view, {})
        by_replica[vc.replica] = vc
        if (
            vc.view == self.view
            and not self.active
            and self.vc_deadline is None
            and len(by_replica) >= self.quorum
        ):
            self.vc_deadline = self.now + self._timeout()
        # memory bound: each replica keeps view changes for at most 4 views, and a view nobody
        # holds any more leaves no key behind; so at most 4n views are held and every scan of
        # them (here, and the f+1 rule of handle_view_change) costs O(n), not O(views seen)
        held = sorted(v for v, m in self.view_changes.items() if vc.replica in m)
        for v in held[:-4]:
            by_view = self.view_changes[v]
            del by_view[vc.replica]
            if not by_view:
                del self.view_changes[v]

    def handle_view_change(self, src: int, vc: ViewChange) -> None:
        """Check and store a VIEW-CHANGE; join f+1 higher views; a new primary sends NEW-VIEW."""
        if src != vc.replica or vc.replica >= self.n:
            self._reject(vc, "forged sender")
            return
        if vc.view < self.view or (vc.view == self.view and self.active):
            nv = self.last_new_view
            mine = self.own_view_changes.get(vc.view)
            if src == self.node_id:
                pass
            elif self.active and nv is not None and nv.view >= vc.view:
                self._send((src,), nv)  # it missed the NEW-VIEW: relay it (signed by the primary)
            elif mine is not None:
                self._send((src,), mine)  # it may have missed our view change for its view
            self._reject(vc, "stale view change")
            return
        if not self._verify(src, vc):
            self._reject(vc, "not authentic")
            return
        reason = check_view_change(
            vc, self.n, self.config.log_window, self.keyring.verify, self.hash_work
        )
        if reason is not None:
            self._reject(vc, reason)
            return
        self.store_view_change(vc)
        # liveness rule (TOCS §4.5.2): f+1 replicas are in higher views -> join the smallest
        higher: dict[int, int] = {}
        for v, m in self.view_changes.items():
            if v > self.view:
                for r in m:
                    higher[r] = max(higher.get(r, 0), v)
        if len(higher) >= self.f + 1:
            self.start_view_change(min(higher.values()))
        self.maybe_new_view()

    def maybe_new_view(self) -> None:
        v = self.view
        if self.active or self.primary(v) != self.node_id or v in self.new_view_sent:
            return
        vcs = self.view_changes.get(v, {})
        if self.node_id not in vcs or len(vcs) < self.quorum:
            return
        chosen = [vcs[self.node_id]] + [vcs[r] for r in sorted(vcs) if r != self.node_id]
        chosen = chosen[: self.quorum]
        plan = plan_new_view(chosen)
        pps = tuple(
            self._seal(PrePrepare(v, s, d, ts, batch, self.node_id))
            for s, (ts, batch, d) in sorted(plan.batches.items())
        )
        nv = self._seal(NewView(v, tuple(chosen), pps, self.node_id))
        self.new_view_sent.add(v)
        self.last_new_view = nv
        self._ready.persist.append(nv)
        self._send(self.others, nv)
        self.install_view(v, plan, pps)

    def handle_new_view(self, src: int, nv: NewView) -> None:
        """Check a NEW-VIEW against the plan recomputed from its view changes, then enter it."""
        v = nv.view
        if nv.replica != v % self.n:
            self._reject(nv, "new-view not from the new primary")
            return
        if v < self.view or (v == self.view and self.active):
            self._reject(nv, "stale new-view")
            return
        # the NEW-VIEW is the new primary's message wherever it comes from: any replica may relay it
        # (handle_view_change does), so it is checked against its claimed author, never the sender
        if not self._verify(nv.replica, nv):
            self._reject(nv, "not authentic")
            return
        voters = set()
        for vc in nv.view_changes:
            if vc.view != v or not 0 <= vc.replica < self.n or vc.replica in voters:
                self._reject(nv, "bad view-change set")
                return
            voters.add(vc.replica)
        if len(voters) < self.quorum:
            self._reject(nv, "too few view changes")
            return
        known = self.view_changes.get(v, {})
        for vc in nv.view_changes:
            if known.get(vc.replica) != vc:
                if not self._verify(vc.replica, vc):
                    self._reject(nv, "view change not authentic")
                    return
                reason = check_view_change(
                    vc, self.n, self.config.log_window, self.keyring.verify, self.hash_work
                )
                if reason is not None:
                    self._reject(nv, f"view change: {reason}")
                    return
        plan = plan_new_view(nv.view_changes)
        if not matches_plan(plan, nv.pre_prepares, v, self.n, self.hash_work):
            self._reject(nv, "pre-prepares do not match the view changes")
            return
        for pp in nv.pre_prepares:
            if not self._verify(nv.replica, pp):  # matches_plan checked pp.replica == nv.replica
                self._reject(nv, "pre-prepare not authentic")
                return
        self._ready.persist.append(nv)
        self.last_new_view = nv
        self.install_view(v, plan, nv.pre_prepares)

    def install_view(self, v: int, plan: Plan, pps: tuple[PrePrepare, ...]) -> None:
        # the view just left counts against the requests pending since it began, unordered, if
        # this replica executed something in it (_rejudge): it made progress without them
        self.view_proposed = self.last_executed > self.progress_mark
        self.progress_mark = self.last_executed
        self.installed_view = v
        self.view = v
        self.active = True
        self.vc_deadline = None
        self.queue.clear()
        self._ready.notes.append(Note("new-view", v))
        self._ready.persist.append(ViewRecord(v, True))
        for old in [w for w in self.view_changes if w <= v]:
            del self.view_changes[old]
        self.next_sequence = max(plan.max_s, self.checkpoints.stable)
        if plan.min_s > self.checkpoints.stable:
            best = plan.checkpoint
            digest = best.checkpoint_proof[0].state_digest
            self.make_stable(plan.min_s, digest, best.checkpoint_proof)
        for pp in pps:
            if pp.sequence <= self.checkpoints.stable:
                continue
            slot = self.log.slot(pp.sequence)
            if pp.replica == self.node_id:
                self._ready.persist.append(pp)
            self._accept_pre_prepare(slot, pp)
        self.next_sequence = max(plan.max_s, self.checkpoints.stable)
        # a new view re-judges what waits: the rules may have changed with the executed state since
        # a request was admitted (see Replica._verify_item); a request now refused loses its timer.
        # Not the requests of the re-issued pre-prepares: this replica just accepted them (their
        # order may already be committed elsewhere), so refusing them too would show a client a
        # refusal for a request that executes (defect 6 of issue 13); execution decides those.
        self._verified.clear()
        ordered = {item.digest() for pp in pps for item in pp.batch}
        for key, (_, req) in list(self.pending.items()):
            if req.digest() in ordered:
                continue
            reason = self._rejudge(key, req)  # a refusal is answered to its client (_refuse)
            if reason is not None:
                self.pending.pop(key, None)
                self._reject(req, reason)
        self.pending = {k: (self.now, req) for k, (_, req) in self.pending.items()}
        self.pending_views = Counter(
            {k: c for k, c in self.pending_views.items() if k in self.pending}
        )
        self.gave_up &= self.pending.keys()
        self.pending_before = set(self.pending)
        if self.unblocked_since is not None:
            self.unblocked_since = self.now
        if self.is_primary:
            self.queued = {
                item.digest()
                for slot in self.log
                if slot.pre_prepare is not None and slot.pre_prepare.view == v
                for item in slot.pre_prepare.batch
            }
            for item in list(self.pending_items()):
                if self._admit(item) is None:
                    self._enqueue(item)
        self._execute_ready()
        self.resend_checkpoints()
        early = [m for w in sorted(self.future) if w <= v for m in self.future.pop(w)]
        self.future_count = Counter(src for held in self.future.values() for src, _ in held)
        for src, msg in early:
            self._handlers[type(msg)](src, msg)

    def _rejudge(self, key: tuple[int, int], req: Request) -> str | None:
        """Judge a pending request again right after installing a new view (``None``: it stays
        pending). A request this replica voted for at a sequence still open stays pending
        whatever the validator says now (:meth:`_may_refuse`): execution decides it.

        A request still valid but pending, unordered, through more than f whole views in a row in
        which this replica executed other batches is given up (:data:`UNORDERED`); a primary no
        longer proposes it meanwhile (:meth:`~.core.ReplicaCore._enqueue`). Refusals are decided at
        admission, so honest replicas may split on a request (one judged it before a grant executed,
        another after): with f+1 honest refusers (or, with f replicas silent, one) it can never
        commit, and with fewer than a refusal quorum its client never completes, while the others
        keep proposing it and change views for it forever. In f+1 successive views at least one
        primary is honest; a request that stayed unordered while they ordered others is refused like
        any other (persisted, never prepared), once no vote of this replica for it is open. In views
        that order nothing (no quorum reachable, say) nothing is given up. Its timer keeps running a
        while (:data:`GIVE_UP_VIEWS`, or until its client sends a newer request), so that the
        replicas still holding it pending change views and give it up too, and the client hears a
        refusal quorum (:class:`~.client.Client` takes one of mixed reasons when no single reason
        can reach a quorum, or when its timer runs out).
        """
        views = self.pending_views[key]
        if (self.view_proposed and key in self.pending_before) or key in self.gave_up:
            views = self.pending_views[key] = views + 1
        if self.refused.refused(req.client, req.timestamp):
            if key in self.gave_up and views <= GIVE_UP_VIEWS * self.n:
                return None  # its timer still runs, for the replicas that hold it pending
            return "request refused earlier"
        if not self._may_refuse(req):
            return None
        reason = self._verify_item(req)
        if reason is not None and reason.startswith(INVALID):
            self._refuse(req, reason[len(INVALID) :])
            return reason
        if reason is not None:
            return reason
        if views > self.f:
            self._refuse(req, UNORDERED)  # drops its timer: kept a while (GIVE_UP_VIEWS)
            self.pending[key] = (self.now, req)
            self.gave_up.add(key)
        return None

    def pending_items(self) -> Iterable[Item]:
        """Requests a new primary knows to be unexecuted: uncommitted slots, then pending timers."""
        for slot in self.log:
            pp = slot.pre_prepare
            if pp is None or slot.committed or pp.view == self.view:
                continue
            for item in pp.batch:
                if type(item) is Request and item.timestamp > self.last_timestamp.get(
                    item.client, 0
                ):
                    yield item
        for _, req in self.pending.values():
            if req.timestamp > self.last_timestamp.get(req.client, 0):
                yield req
