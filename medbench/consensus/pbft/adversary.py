"""The adversary's stronger Byzantine behaviours (issue 13), beside :mod:`.byzantine`.

Theory of operation
-------------------
Same model as :mod:`.byzantine`: a faulty replica is an honest
:class:`~medbench.consensus.pbft.replica.Replica` whose inputs and outputs a wrapper rewrites,
signing what it alters with its own keys (it never owns another replica's key); a faulty client
is a :class:`~medbench.consensus.pbft.client.Client` that does the same to its requests. What
the randomized schedules (``tests/pbft/schedules.py``) draw from here:

* :class:`ColludingEquivocator` — members of one :class:`Coalition`: when a member is primary it
  sends two conflicting pre-prepares to two halves of the honest replicas and every member
  prepares and commits *each* digest to its half. With at most f members each half lacks a
  quorum on one side (PBFT stays safe); with f+1 both halves commit (the checker must see it);
* :class:`DigestForger` — as primary, the real pre-prepare to half of the backups and, to the
  other half, one with the same digest and time over another batch (its last item dropped):
  only the backups' digest check stands between that and two histories under one digest;
* :class:`NewViewChooser` — as a new primary it picks which VIEW-CHANGEs (and so which prepared
  certificates) its NEW-VIEW carries (``fewest``, ``oldest``, ``all``), sends two different
  NEW-VIEWs to two halves (``equivocate``), or lies: a NEW-VIEW whose pre-prepares ignore the
  certificates (``nulls``) or that carries only f+1 view changes (``small``);
* :class:`LyingBlocker` — as blocker it dates its BLOCK an hour ahead (``future``) or behind
  (``past``), names the wrong height or predecessor, lists a transaction never executed, one
  already in a block, or none;
* :class:`ReplyLiar` — replies with a wrong result, a refusal for what it executed, an inflated
  view (to steer clients, issue 13 defect 8), or front-runs execution with a fake result in its
  own name and forged ones in its peers' names;
* :class:`StateLiar` — answers FETCH with a STATE whose batches are altered (null batches for
  executed ones), under the genuine proof or under proofs it makes up (its own checkpoint
  repeated, peers' checkpoints it cannot sign, or its checkpoint alone);
* :class:`RequestReviver` — remembers every request it saw and keeps proposing (as primary) or
  relaying (as backup) the ones not executed yet, refused ones included, in turn;
* :class:`Flooder` — floods CHECKPOINTs (many sequences and digests) or VIEW-CHANGEs (ever
  higher views, each one it would lead, and where it would stay silent) that are each authentic;
* :class:`LyingClient` — a client whose requests carry MAC authenticators valid only at some
  replicas (``partial-mac``, the "big MAC" attack; with signed requests, a spoiled copy goes to
  half of the replicas), that replays all its old requests (``replay``), or sends a conflicting
  request under each timestamp to half of the replicas (``conflict``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medbench.consensus.auth import Keyring
from medbench.consensus.pbft.byzantine import Byzantine, _restamped, _seal
from medbench.consensus.pbft.checkpoint import GENESIS_DIGEST, chain_digest
from medbench.consensus.pbft.client import Client
from medbench.consensus.pbft.messages import (
    NULL_DIGEST,
    Block,
    Checkpoint,
    Commit,
    Fetch,
    NewView,
    Prepare,
    PrePrepare,
    Reply,
    Request,
    State,
    StateBatch,
    ViewChange,
    compute_batch_digest,
)
from medbench.consensus.pbft.replica import Replica
from medbench.consensus.pbft.viewchange import plan_new_view
from medbench.hashing import sha256
from medbench.node import Ready, Send

HOUR_US = 3_600_000_000


# --- colluding equivocators ----------------------------------------------------------------------


class Coalition:
    """The shared knowledge of colluding replicas: their keys, the honest halves, an outbox."""

    def __init__(self, members: Iterable[int], keyrings: dict[int, Keyring], n: int) -> None:
        self.members = sorted(set(members))
        self.keyrings = {m: keyrings[m] for m in self.members}
        self.honest = [r for r in range(n) if r not in self.members]
        self.outbox: dict[int, list[Send]] = {}
        self.split: dict[tuple[int, int], tuple[bytes, bytes]] = {}

    def halves(self, view: int, sequence: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The two halves of the honest replicas for one attack (rotating with the slot)."""
        h = self.honest
        k = (view + sequence) % max(len(h), 1)
        order = h[k:] + h[:k]
        cut = (len(order) + 1) // 2
        return tuple(order[:cut]), tuple(order[cut:])


class ColludingEquivocator(Byzantine):
    """One member of a :class:`Coalition` (see the module docstring)."""

    def __init__(self, inner: Replica, coalition: Coalition) -> None:
        super().__init__(inner)
        self.coalition = coalition

    def outgoing(self, send: Send) -> list[Send]:
        """Split this primary's pre-prepares; keep the members' honest votes on the first half."""
        m = send.msg
        co = self.coalition
        if isinstance(m, PrePrepare) and m.replica == self.node_id and m.batch:
            return self._attack(m)
        if isinstance(m, (Prepare, Commit)) and m.replica == self.node_id:
            split = co.split.get((m.view, m.sequence))
            if split is not None:
                a, b = co.halves(m.view, m.sequence)
                mine = a if m.batch_digest == split[0] else b
                dsts = tuple(d for d in send.dsts if d in mine or d in co.members)
                return [Send(dsts, m)] if dsts else []
        return [send]

    def _attack(self, pp: PrePrepare) -> list[Send]:
        co = self.coalition
        v, s = pp.view, pp.sequence
        other = _seal(self.inner.keyring, _restamped(pp, pp.timestamp + 1))
        co.split[(v, s)] = (pp.batch_digest, other.batch_digest)
        a, b = co.halves(v, s)
        friends = tuple(r for r in co.members if r != self.node_id)
        out = [Send(a + friends, pp), Send(b, other)]
        for digest, half in ((pp.batch_digest, a), (other.batch_digest, b)):
            if not half:
                continue
            for member in co.members:
                box = out if member == self.node_id else co.outbox.setdefault(member, [])
                key = co.keyrings[member]
                if member != self.node_id:
                    box.append(Send(half, _seal(key, Prepare(v, s, digest, member))))
                box.append(Send(half, _seal(key, Commit(v, s, digest, member))))
        return out

    def tick(self, now: int) -> Ready:
        """Tick the replica and send what the coalition queued for this member."""
        ready = super().tick(now)
        ready.messages.extend(self.coalition.outbox.pop(self.node_id, []))
        return ready


class DigestForger(Byzantine):
    """Same digest, different batches to two halves (see the module docstring)."""

    def outgoing(self, send: Send) -> list[Send]:
        """Split this primary's own pre-prepares."""
        pp = send.msg
        if not isinstance(pp, PrePrepare) or pp.replica != self.node_id or not pp.batch:
            return [send]
        if len(send.dsts) < 2:
            return [send]
        forged = PrePrepare(pp.view, pp.sequence, pp.batch_digest, pp.timestamp, pp.batch[:-1],
                            pp.replica)  # fmt: skip
        half = len(send.dsts) // 2
        return [
            Send(send.dsts[:half], pp),
            Send(send.dsts[half:], _seal(self.inner.keyring, forged)),
        ]


# --- a new primary choosing its certificates --------------------------------------------------


NEW_VIEW_STRATEGIES = ("fewest", "oldest", "all", "equivocate", "nulls", "small")


class NewViewChooser(Byzantine):
    """As new primary it builds its NEW-VIEW from the view changes it chooses (module docstring).

    It waits up to half a view-change timeout for more than a quorum of VIEW-CHANGEs, so that it
    has a choice, then replaces the honest choice of :meth:`ViewChanges.maybe_new_view`.
    """

    STALL_AFTER = 2  # pre-prepares it still sends in a view it started, then it goes silent

    def __init__(self, inner: Replica, strategy: str) -> None:
        super().__init__(inner)
        if strategy not in NEW_VIEW_STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}")
        self.strategy = strategy
        self.first_seen: dict[int, int] = {}
        self.sent: dict[int, int] = {}  # view it started -> pre-prepares sent in it
        inner.maybe_new_view = self._maybe_new_view  # type: ignore[method-assign]

    def outgoing(self, send: Send) -> list[Send]:
        """In a view it started, stall after a few batches, so another view change follows
        and the certificates of its view are judged against older ones."""
        m = send.msg
        if isinstance(m, PrePrepare) and m.replica == self.node_id and m.view in self.sent:
            self.sent[m.view] += 1
            if self.sent[m.view] > self.STALL_AFTER:
                return []
        return [send]

    def tick(self, now: int) -> Ready:
        """Tick the replica, then perhaps send the NEW-VIEW it waited to choose."""
        ready = self.inner.tick(now)  # the replica's pending Ready: the NEW-VIEW joins it
        self._maybe_new_view()
        return self._filter(ready)

    def _maybe_new_view(self) -> None:
        r = self.inner
        v = r.view
        if r.active or r.primary(v) != r.node_id or v in r.new_view_sent:
            return
        vcs = r.view_changes.get(v, {})
        if len(vcs) < r.quorum:
            return
        since = self.first_seen.setdefault(v, r.now)
        if len(vcs) < r.n and r.now - since < r.config.view_change_timeout_us // 2:
            return  # wait a little for more choice
        chosen = self._choose(list(vcs.values()), r.quorum)
        plan = plan_new_view(chosen)
        pps = self._pre_prepares(v, plan)
        nv = _seal(r.keyring, NewView(v, tuple(chosen), pps, r.node_id))
        r.new_view_sent.add(v)
        r.last_new_view = nv
        r._ready.persist.append(nv)
        self.sent[v] = 0
        backups = r.others
        if self.strategy == "equivocate" and len(vcs) > r.quorum:
            other = self._choose(list(vcs.values())[::-1], r.quorum, reverse=True)
            other_plan = plan_new_view(other)
            other_nv = _seal(
                r.keyring, NewView(v, tuple(other), self._pre_prepares(v, other_plan), r.node_id)
            )
            half = len(backups) // 2
            r._send(backups[:half], nv)
            r._send(backups[half:], other_nv)
        else:
            r._send(backups, nv)
        r.install_view(v, plan, pps)

    def _choose(
        self, vcs: list[ViewChange], quorum: int, reverse: bool = False
    ) -> list[ViewChange]:
        s = self.strategy
        if s == "all":
            return sorted(vcs, key=lambda vc: vc.replica)
        if s == "small":  # f+1 view changes: its own, emptied of certificates, and the barest
            r = self.inner
            mine = [vc for vc in vcs if vc.replica == r.node_id]
            own = [
                _seal(r.keyring, ViewChange(vc.view, vc.stable_sequence, vc.checkpoint_proof, (),
                                            vc.replica))
                for vc in mine
            ]  # fmt: skip
            rest = sorted(
                (vc for vc in vcs if vc.replica != r.node_id), key=lambda vc: len(vc.prepared)
            )
            return (own + rest)[: r.f + 1]
        if s == "oldest":

            def age(vc: ViewChange) -> int:
                return sum(p.pre_prepare.view for p in vc.prepared)

            return sorted(vcs, key=age, reverse=reverse)[:quorum]
        # fewest certificates (equivocate: fewest for one half, most for the other)
        return sorted(vcs, key=lambda vc: (len(vc.prepared), vc.replica), reverse=reverse)[:quorum]

    def _pre_prepares(self, v: int, plan: Any) -> tuple[PrePrepare, ...]:
        r = self.inner
        out = []
        for s, (ts, batch, d) in sorted(plan.batches.items()):
            if self.strategy == "nulls":
                ts, batch, d = 0, (), NULL_DIGEST
            out.append(_seal(r.keyring, PrePrepare(v, s, d, ts, batch, r.node_id)))
        return tuple(out)


# --- lying blockers, replies, state -------------------------------------------------------------


BLOCK_LIES = ("future", "past", "height", "prev", "foreign", "duplicate", "empty")


class LyingBlocker(Byzantine):
    """As blocker it lies in its BLOCKs (module docstring); ``lie`` is one of ``BLOCK_LIES``."""

    def __init__(self, inner: Replica, lie: str) -> None:
        super().__init__(inner)
        if lie not in BLOCK_LIES:
            raise ValueError(f"unknown lie {lie!r}")
        self.lie = lie

    def outgoing(self, send: Send) -> list[Send]:
        """Rewrite (and re-sign) this replica's own BLOCKs."""
        b = send.msg
        if not isinstance(b, Block) or b.blocker != self.node_id:
            return [send]
        view, height, prev, txs, ts = b.view, b.height, b.prev_id, b.tx_ids, b.timestamp
        lie = self.lie
        if lie == "future":
            ts += HOUR_US
        elif lie == "past":
            ts = max(0, ts - HOUR_US)
        elif lie == "height":
            height += 1
        elif lie == "prev":
            prev = sha256(prev)
        elif lie == "foreign":
            txs = (*txs, sha256(b"never executed %d" % height))
        elif lie == "duplicate":
            chain = self.inner.chain
            old = sorted(chain.blocked)[:1]
            txs = (*txs, *old) if old else (*txs, *txs[:1])
        else:
            txs = ()
        bad = Block(view, height, prev, b.blocker, txs, ts)
        return [Send(send.dsts, _seal(self.inner.keyring, bad))]


REPLY_LIES = ("result", "refusal", "view", "forge")


class ReplyLiar(Byzantine):
    """Lies to clients (module docstring); ``lie`` is one of ``REPLY_LIES``."""

    def __init__(self, inner: Replica, lie: str) -> None:
        super().__init__(inner)
        if lie not in REPLY_LIES:
            raise ValueError(f"unknown lie {lie!r}")
        self.lie = lie
        self.answered: set[tuple[int, int]] = set()

    def _reply(
        self, view: int, ts: int, client: int, replica: int, result: bytes, refusal: str
    ) -> Reply:
        r = Reply(view, ts, client, replica, result, refusal=refusal)
        return r.with_auth(self.inner.keyring.sign(r.body(), client))  # type: ignore[no-any-return]

    def step(self, src: int, msg: Any) -> Ready:
        """Deliver; ``forge``: answer a fresh request at once, before anyone executed it, in
        this replica's name and (unverifiably) in its peers' names."""
        ready = super().step(src, msg)
        if self.lie == "forge" and isinstance(msg, Request) and src == msg.client:
            key = (msg.client, msg.timestamp)
            if key not in self.answered:
                self.answered.add(key)
                fake = sha256(b"fake" + msg.digest())
                for replica in range(self.inner.n):
                    r = Reply(0, msg.timestamp, msg.client, replica, fake)
                    r = r.with_auth(self.inner.keyring.sign(r.body(), msg.client))
                    ready.messages.append(Send((msg.client,), r))
        return ready

    def outgoing(self, send: Send) -> list[Send]:
        """Rewrite this replica's replies."""
        m = send.msg
        if not isinstance(m, Reply) or m.replica != self.node_id or self.lie == "forge":
            return [send]
        if self.lie == "result" and not m.refusal:
            bad = self._reply(m.view, m.timestamp, m.client, m.replica, sha256(m.result), "")
        elif self.lie == "refusal" and not m.refusal:
            bad = self._reply(m.view, m.timestamp, m.client, m.replica, b"", "refused")
        elif self.lie == "view":
            bad = self._reply(m.view + 1000, m.timestamp, m.client, m.replica, m.result, m.refusal)
        else:
            return [send]
        return [Send(send.dsts, bad)]


STATE_LIES = ("contents", "repeated-proof", "forged-proof", "lone-proof")


class StateLiar(Byzantine):
    """Answers FETCH with a forged STATE (module docstring); ``lie`` is one of ``STATE_LIES``.

    ``contents`` rewrites its genuine answers (their proof kept); the proof lies answer every
    FETCH at once from its own history, up to its last executed batch, whether or not it holds
    a stable checkpoint there, and its genuine answers are swallowed.
    """

    def __init__(self, inner: Replica, lie: str) -> None:
        super().__init__(inner)
        if lie not in STATE_LIES:
            raise ValueError(f"unknown lie {lie!r}")
        self.lie = lie

    def step(self, src: int, msg: Any) -> Ready:
        """Deliver; answer a FETCH with a made-up STATE (the proof lies)."""
        ready = super().step(src, msg)
        if self.lie != "contents" and isinstance(msg, Fetch) and src == msg.replica:
            r = self.inner
            batches = [
                StateBatch(q, b.timestamp, b.items)
                for q in range(msg.sequence, r.last_executed + 1)
                if (b := r.history.get(q)) is not None
            ]
            if batches and len(batches) == r.last_executed + 1 - msg.sequence:
                forged = self._forge(msg.sequence, r.last_executed, batches, ())
                if forged is not None:
                    ready.messages.append(Send((src,), forged))
        return ready

    def outgoing(self, send: Send) -> list[Send]:
        """Replace (``contents``) or swallow this replica's genuine STATE answers."""
        m = send.msg
        if not isinstance(m, State) or m.replica != self.node_id:
            return [send]
        if self.lie != "contents":
            return []
        forged = self._forge(m.sequence, m.checkpoint_sequence, list(m.batches), m.proof)
        return [Send(send.dsts, forged)] if forged is not None else [send]

    def _forge(
        self, seq: int, cs: int, batches: list[StateBatch], proof: tuple[Checkpoint, ...]
    ) -> State | None:
        r = self.inner
        victim = next((i for i, b in enumerate(batches) if b.items), None)
        if victim is None:
            return None
        b = batches[victim]
        batches[victim] = StateBatch(b.sequence, b.timestamp, ())  # an executed batch made null
        if self.lie != "contents":
            prev = r.history.get(seq - 1)
            d = prev.state_digest if prev is not None else GENESIS_DIGEST
            for x in batches:
                d = chain_digest(d, x.sequence, compute_batch_digest(x.timestamp, x.items))
            own = _seal(r.keyring, Checkpoint(cs, d, r.node_id))
            if self.lie == "repeated-proof":
                proof = (own,) * r.quorum
            elif self.lie == "forged-proof":
                others = [j for j in range(r.n) if j != r.node_id][: r.quorum - 1]
                fakes = tuple(
                    Checkpoint(cs, d, j).with_auth(r.keyring.sign(Checkpoint(cs, d, j).body()))
                    for j in others
                )
                proof = (own, *fakes)
            else:
                proof = (own,)
        forged = State(seq, cs, tuple(batches), proof, r.node_id)
        return _seal(r.keyring, forged)  # type: ignore[no-any-return]


class RequestReviver(Byzantine):
    """Keeps proposing (as primary) or relaying (as backup) every old request it saw."""

    def __init__(self, inner: Replica, every: int = 7) -> None:
        super().__init__(inner)
        self.every = every
        self.seen: dict[bytes, Request] = {}
        self.count = 0

    def incoming(self, src: int, msg: Any) -> Any:
        """Remember requests, alone or inside pre-prepares."""
        if isinstance(msg, Request):
            self._keep(msg)
        elif isinstance(msg, PrePrepare):
            for item in msg.batch:
                if isinstance(item, Request):
                    self._keep(item)
        return msg

    def _keep(self, req: Request) -> None:
        if len(self.seen) < 256:
            self.seen.setdefault(req.digest(), req)

    def tick(self, now: int) -> Ready:
        """Every ``every`` ticks, revive one old request."""
        ready = self.inner.tick(now)
        self.count += 1
        r = self.inner
        live = [q for q in self.seen.values() if q.timestamp > r.last_timestamp.get(q.client, 0)]
        if live and self.count % self.every == 0:
            req = live[(self.count // self.every) % len(live)]
            if r.is_primary and r.active:
                r._ready = ready
                r.queue.append((req, r.now))  # past its own refusal memory and reply cache
                r._maybe_send_batch()
            else:
                ready.messages.append(Send((r.primary(),), req))
        return self._filter(ready)


FLOODS = ("checkpoints", "view-changes")


class Flooder(Byzantine):
    """Floods authentic CHECKPOINTs or VIEW-CHANGEs (module docstring)."""

    def __init__(self, inner: Replica, what: str, per_tick: int = 4) -> None:
        super().__init__(inner)
        if what not in FLOODS:
            raise ValueError(f"unknown flood {what!r}")
        self.what = what
        self.per_tick = per_tick
        self.count = 0

    def outgoing(self, send: Send) -> list[Send]:
        """A view-change flooder leads the views it drags the others into, and stalls there."""
        if self.what == "view-changes" and isinstance(send.msg, (NewView, PrePrepare)):
            return []
        return [send]

    def tick(self, now: int) -> Ready:
        """Tick the replica and add this tick's flood."""
        ready = self._filter(self.inner.tick(now))
        r = self.inner
        for _ in range(self.per_tick):
            self.count += 1
            if self.what == "checkpoints":
                s = r.checkpoints.stable + self.count % (4 * r.config.log_window) + 1
                d = sha256(b"flood %d" % self.count)
                msg: Any = _seal(r.keyring, Checkpoint(s, d, r.node_id))
            else:  # ever higher views, each one this replica would lead (so none starts)
                v = r.view + self.count * r.n
                v += (r.node_id - v) % r.n
                cp = r.checkpoints
                msg = _seal(r.keyring, ViewChange(v, cp.stable, cp.stable_proof, (), r.node_id))
            ready.messages.append(Send(r.others, msg))
        return ready


# --- lying clients -------------------------------------------------------------------------------


CLIENT_LIES = ("partial-mac", "replay", "conflict")


class LyingClient(Client):
    """A faulty client (module docstring); ``lie`` is one of ``CLIENT_LIES``."""

    def __init__(self, node_id: int, n: int, keyring: Keyring, lie: str, seed: int = 0,
                 **kw: Any) -> None:  # fmt: skip
        super().__init__(node_id, n, keyring, **kw)
        if lie not in CLIENT_LIES:
            raise ValueError(f"unknown lie {lie!r}")
        self.lie = lie
        self.seed = seed
        self.sent: list[Request] = []
        self.ticks = 0

    def _maybe_send(self) -> None:
        before = len(self._ready.messages)
        super()._maybe_send()
        if len(self._ready.messages) == before:
            return
        req = self.outstanding
        assert req is not None
        first = (self.seed + req.timestamp) % self.n  # a rotating half of the replicas
        victims = tuple(sorted({(first + k) % self.n for k in range(max(1, self.n // 2))}))
        if self.lie == "partial-mac" and type(req.auth) is tuple and len(req.auth) == self.n:
            bad = req.with_auth(
                tuple(bytes(len(e)) if j in victims else e for j, e in enumerate(req.auth))
            )
            self.outstanding = bad
            self._ready.messages[-1] = Send(tuple(range(self.n)), bad)
        elif self.lie == "partial-mac":  # a signed request: a spoiled copy to half of them
            spoiled = req.with_auth(bytes(len(req.auth)) if type(req.auth) is bytes else b"")
            others = tuple(r for r in range(self.n) if r not in victims)
            self._ready.messages[-1] = Send(others, req)
            self._ready.messages.append(Send(victims, spoiled))
        elif self.lie == "conflict":
            other = Request(self.node_id, req.timestamp, req.operation + b"/conflict")
            other = other.with_auth(self.keyring.sign(other.body()))
            half = tuple(range(self.n // 2, self.n))
            self._ready.messages.append(Send(half, other))
        self.sent.append(self.outstanding or req)

    def tick(self, now: int) -> Ready:
        """Tick; ``replay`` resends every old request to every replica now and then."""
        ready = super().tick(now)
        self.ticks += 1
        if self.lie == "replay" and self.sent and self.ticks % 13 == 0:
            for req in self.sent[-8:]:
                ready.messages.append(Send(tuple(range(self.n)), req))
        return ready
