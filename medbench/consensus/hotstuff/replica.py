"""The chained HotStuff replica: a sans-IO state machine (Yin et al., PODC 2019, §4-§5).

Theory of operation
-------------------
``Replica`` implements :class:`medbench.node.Node`: its driver calls ``step(src, msg)`` for every
message and ``tick(now_us)`` for time, and gets one :class:`medbench.node.Ready` back. **The
driver writes ``Ready.persist`` before delivering ``Ready.messages``** — the vote record (and
the lock) reach the disk before the vote leaves — then hands ``Ready.committed`` (executed
blocks, in height order) to the application. :meth:`Replica.recover` rebuilds a crashed replica
from those records.

Replicas are ``0..n-1``; clients are any other id. The protocol is Algorithm 3 (event-driven
chained HotStuff) with the pacemaker of :mod:`.pacemaker`; rule by rule:

* REQUEST: a client broadcasts its request to every replica (each keeps it in its
  :mod:`.mempool`, so any leader can propose it). A request whose client timestamp is not newer
  than the client's last executed one is answered from the reply cache (exactly-once).
* Proposing (Algorithm 3 ``onPropose``, Algorithm 4 ``onBeat``): the leader of view ``v``
  proposes once it holds the QC of view ``v - 1`` (the happy path) or a timeout certificate for
  ``v`` (:mod:`.pacemaker`), never twice in a view. The block extends ``qc_high.node``
  (``parent == justify.node``), carries up to ``max_batch_size`` mempool requests not already
  in an uncommitted ancestor, and the leader's clock as its agreed time. It proposes when a
  batch is full or its oldest request waited ``max_batch_delay_us`` — or at once, with what it
  has, while an uncommitted ancestor still holds requests (the chain must grow three more
  blocks to commit them: the pipeline flush), or when a replica timed out on it with work.
* Voting (Algorithm 3 ``onReceiveProposal``): a replica checks the proposal (:mod:`.admission`,
  cheapest first: leader of its view, shape, then its signature, then its QC and timeout
  certificate, then, once the parent is known, height, time and requests), stores the block,
  runs ``update`` and asks :mod:`.safety` for a vote (once per view, safeNode); the vote goes to
  the leader of ``v + 1`` and the replica enters ``v + 1``. A proposal whose parent is unknown
  is buffered (bounded) while the parent is fetched (:mod:`.sync`).
* ``update`` (Algorithm 3): for the justify QC of a block (on ``b''``): ``qc_high`` rises to
  it (Algorithm 5 ``updateQCHigh``), the lock moves to ``b'`` (:mod:`.safety`), and the
  three-chain rule commits ``b`` and its ancestors (:mod:`.blocktree`); committed blocks execute
  in height order (:mod:`.execution`) and every replica replies to the clients.
* VOTE (Algorithm 3 ``onReceiveVote``): the next leader counts distinct authentic votes per
  (view, block) (:mod:`.votes`); ``strong_quorum(n)`` of them form a QC, which raises
  ``qc_high`` and lets it propose.
* Timeouts and NEW-VIEW (:mod:`.pacemaker`): exponential back-off, NEW-VIEW to the next leader
  only (linear), timeout certificates of ``n - f`` proofs of leaving the previous view.

Hostile input never raises out of ``step``/``tick``: it is dropped, counted in
:attr:`Replica.rejections` and reported as ``Note("reject", (kind, reason))``; two different
authentic proposals of one leader for one view, or two votes of one replica in one view, are
reported as ``Note("equivocation", (first, second))`` holding both messages. Handlers are chosen
from one table keyed by message type; local kinds from a peer are rejected.

Against the paper, each documented where it is made: threshold signatures are modeled as
``n - f`` individual ones (:mod:`.messages`); there are no checkpoints or state transfer, a
lagging replica fetches blocks (:mod:`.sync`) and every replica keeps its ledger in memory; the
agreed time of a block is ``max(timestamp, previous agreed time)`` as in PBFT; and the
pacemaker adds four liveness rules the random fault schedules showed necessary with
round-robin leaders (:mod:`.pacemaker`): NEW-VIEW carries the sender's uncovered vote, a vote
of the previous view counts as a proof of leaving it, a timeout certificate waits briefly for a
QC about to form, and every voter times out once (NEW-VIEW's *busy* bit forcing a proposal).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from medbench.consensus.auth import Keyring
from medbench.consensus.hotstuff import admission, recovery, sync
from medbench.consensus.hotstuff.blocktree import BlockTree
from medbench.consensus.hotstuff.certificates import (
    VerdictMemo,
    check_qc,
    verify_nested,
)
from medbench.consensus.hotstuff.config import Config
from medbench.consensus.hotstuff.execution import (
    ExecutedBlock,
    Execution,
    Service,
    acknowledge,
)
from medbench.consensus.hotstuff.mempool import Mempool
from medbench.consensus.hotstuff.messages import (
    GENESIS_QC,
    LOCAL_KINDS,
    QC,
    Block,
    NewView,
    Proposal,
    Reply,
    Request,
    SyncRequest,
    SyncResponse,
    Timeout,
    Vote,
)
from medbench.consensus.hotstuff.pacemaker import Pacemaker
from medbench.consensus.hotstuff.persist import CommitRecord
from medbench.consensus.hotstuff.safety import SafetyRules
from medbench.consensus.hotstuff.votes import Added, VoteCollector
from medbench.node import Committed, Note, Ready, Send
from medbench.quorum import strong_quorum

GC_INTERVAL = 16
"""Committed heights between two garbage collections of votes, proposals and forks."""


class Replica:
    """One chained HotStuff replica (see the module docstring)."""

    def __init__(
        self,
        node_id: int,
        config: Config,
        keyring: Keyring,
        service: Service = acknowledge,
        memo: VerdictMemo | None = None,
    ) -> None:
        if not 0 <= node_id < config.n:
            raise ValueError(f"replica id {node_id} outside 0..{config.n - 1}")
        self.node_id = node_id
        self.config = config
        self.keyring = keyring
        self.service = service
        self.memo = memo
        n = config.n
        self.n = n
        self.f = config.f
        self.quorum = strong_quorum(n)  # n - f = 2f + 1 at n = 3f + 1 (medbench.quorum)
        self.others: tuple[int, ...] = tuple(r for r in range(n) if r != node_id)
        self.now = 0
        self.tree = BlockTree()
        self.safety = SafetyRules(node_id, keyring)
        self.pacemaker = Pacemaker(
            node_id, n, self.quorum, config.view_timeout_us, config.max_view_timeout_us
        )
        self.fetcher = sync.Fetcher(node_id, n, config.sync_timeout_us, config.max_staged_blocks)
        self.qc_high: QC = GENESIS_QC
        # a proposal was voted for since the last timeout: the view timer runs even without
        # work of its own, once (pacemaker docstring, *Every voter times out once*)
        self.awake = False
        self.last_proposed_view = 0
        self.proposals: dict[int, Proposal] = {}  # view -> first valid proposal (evidence)
        self.collector = VoteCollector(self.quorum, memo)
        self.buffered: dict[bytes, list[tuple[int, Proposal]]] = {}  # parent -> proposals
        self.buffered_count = 0
        self.mempool = Mempool(config.max_pending_per_client)
        self.execution = Execution(node_id, service)
        self._next_gc = GC_INTERVAL
        self._verified: set[bytes] = set()  # digests of requests whose client signature checked
        self.rejections: Counter[str] = Counter()
        self.hash_work: Counter[str] = Counter()
        self.handled = 0
        self._ready = Ready()
        self._handlers: dict[type, Callable[[int, Any], None]] = {
            Request: self.handle_request,
            Proposal: self.handle_proposal,
            Vote: self.handle_vote,
            NewView: self.handle_new_view,
            SyncRequest: self.handle_sync_request,
            SyncResponse: self.handle_sync_response,
        }
        self._local_handlers: dict[type, Callable[[int, Any], None]] = {
            Timeout: self.handle_timeout,
        }
        assert all(t.KIND in LOCAL_KINDS for t in self._local_handlers)  # type: ignore[attr-defined]
        assert not any(t.KIND in LOCAL_KINDS for t in self._handlers)  # type: ignore[attr-defined]

    # --- the node interface ----------------------------------------------------------------------

    def step(self, src: int, msg: Any) -> Ready:
        """Handle ``msg`` from node ``src``; never raises on bad input from a peer."""
        ready = self._ready = Ready()
        self.handled += 1
        handler = self._handlers.get(type(msg))
        if handler is not None:
            handler(src, msg)
            return ready
        handler = self._local_handlers.get(type(msg))
        if src != self.node_id and getattr(msg, "KIND", None) in LOCAL_KINDS:
            self._reject(msg, "local kind from the network")
        elif handler is None:
            self._reject(msg, "unknown message type")
        else:
            handler(src, msg)
        return ready

    def tick(self, now: int) -> Ready:
        """The clock reads ``now`` µs: the view timer, batch delays and sync retries."""
        ready = self._ready = Ready()
        if now > self.now:
            self.now = now
        pm = self.pacemaker
        if self.awake or self._has_work():
            pm.arm(self.now)
            if pm.expired(self.now):
                self.handle_timeout(self.node_id, Timeout("view"))
        else:
            pm.disarm()
        if self.fetcher.deadline is not None and self.now >= self.fetcher.deadline:
            self.handle_timeout(self.node_id, Timeout("sync"))
        if self.mempool or self.pacemaker.ready_at:
            self._maybe_propose()
        return ready

    # --- small helpers ---------------------------------------------------------------------------

    @property
    def view(self) -> int:
        """The pacemaker's current view."""
        return self.pacemaker.view

    def leader(self, view: int) -> int:
        """The leader of ``view`` (``view mod n``)."""
        return view % self.n

    def _reject(self, msg: Any, reason: str) -> None:
        self.rejections[reason] += 1
        kind = getattr(msg, "KIND", type(msg).__name__)
        self._ready.notes.append(Note("reject", (str(kind), reason)))

    def _seal(self, msg: Any, to: int | None = None) -> Any:
        """Authenticate a message this replica just built (it has not escaped yet)."""
        object.__setattr__(msg, "auth", self.keyring.sign(msg.body(), to))
        return msg

    def _send(self, dsts: tuple[int, ...], msg: Any) -> None:
        if dsts:
            self._ready.messages.append(Send(dsts, msg))

    def _has_work(self) -> bool:
        """A request waits, or an uncommitted block on the main branch orders requests."""
        return len(self.mempool) > 0 or self.tree.chain_has_requests(self.qc_high.block_hash)

    def _check_request(self, req: Request) -> str | None:
        """Authenticity of a request (cached per digest: the digest covers the body)."""
        if req.client < self.n:
            return "request from a replica id"
        d = req.digest()
        if d in self._verified:
            return None
        if not self.keyring.verify(req.client, req.body(), req.auth):
            return "request not authentic"
        self._verified.add(d)
        return None

    def _check_qc(self, qc: QC) -> str | None:
        return check_qc(qc, self.keyring, self.n, self.quorum, self.memo)

    # --- requests (client side of the protocol) -------------------------------------------------

    def handle_request(self, src: int, req: Request) -> None:
        """A client request: answer a retransmission from the reply cache, else keep it in the
        mempool for whichever leader proposes next."""
        c = req.client
        ex = self.execution
        if req.timestamp <= ex.last_timestamp.get(c, 0):
            cached = ex.last_reply.get(c)
            if cached is not None and cached.timestamp == req.timestamp and src == c:
                if not cached.auth:  # executed while recovering: authenticate on first use
                    self._seal(cached, c)
                self._send((c,), cached)
            else:
                self._reject(req, "old request")
            return
        pool = self.mempool
        if (c, req.timestamp) in pool.waiting:
            return  # a retransmission of a request already waiting
        if pool.full_for(c):
            self._reject(req, "too many pending requests of this client")
            return
        reason = self._check_request(req)
        if reason is not None:
            self._reject(req, reason)
            return
        pool.add(req, self.now)
        if self.pacemaker.view % self.n == self.node_id:  # only a leader may propose
            self._maybe_propose()

    # --- proposing (Algorithm 3 onPropose, Algorithm 4 onBeat) -----------------------------------

    def _choose_batch(self, parent: Block) -> tuple[list[Request], int]:
        """Up to ``max_batch_size`` mempool requests not yet ordered on ``parent``'s branch."""
        in_chain = {
            (r.client, r.timestamp)
            for b in self.tree.uncommitted_chain(parent.hash)
            for r in b.batch
        }
        return self.mempool.choose(
            in_chain, self.execution.last_timestamp, self.config.max_batch_size, self.now
        )

    def _maybe_propose(self) -> None:
        """Propose in the current view if this replica leads it and may (module docstring)."""
        v = self.pacemaker.view
        if v % self.n != self.node_id or v <= self.last_proposed_view:
            return
        qc = self.qc_high
        cert = self.pacemaker.certificates.get(v)
        if qc.view + 1 == v:
            tc: tuple[NewView | Vote, ...] = ()
        else:
            if cert is None:
                return
            if self.now < self.pacemaker.ready_at.get(v, 0) and self._better_qc_possible():
                return  # a higher QC may still complete: wait the grace period for it
            tc = cert
        parent = self.tree.get(qc.block_hash)
        if parent is None:
            return  # being fetched (wanted when qc_high rose)
        batch, oldest = self._choose_batch(parent)
        cfg = self.config
        full = len(batch) >= cfg.max_batch_size or (
            batch and self.now - oldest >= cfg.max_batch_delay_us
        )
        # a busy NEW-VIEW in the certificate: a replica timed out waiting for this leader with
        # work to do (even if this replica has none left): propose, if only an empty block
        forced = cert is not None and any(type(m) is NewView and m.busy for m in cert)
        if not (full or forced or self.tree.chain_has_requests(parent.hash)):
            return
        self._propose(v, parent, qc, tc, tuple(batch))

    def _better_qc_possible(self) -> bool:
        """Votes for a view above ``qc_high`` are still being collected here."""
        return self.collector.pending_above(self.qc_high.view)

    def _propose(
        self,
        v: int,
        parent: Block,
        qc: QC,
        tc: tuple[NewView | Vote, ...],
        batch: tuple[Request, ...],
    ) -> None:
        ts = max(self.now, parent.timestamp)
        block = Block(v, parent.height + 1, parent.hash, qc, ts, batch, self.node_id)
        self.hash_work["block_id"] += 1
        p = self._seal(Proposal(block, tc, self.node_id))
        self.last_proposed_view = v
        self.pacemaker.ready_at.pop(v, None)
        self._ready.persist.append(p)  # before it is sent: never two proposals in one view
        self._send(self.others, p)
        self.proposals[v] = p
        self._admit(self.node_id, p, parent)

    # --- proposals and votes (Algorithm 3) -------------------------------------------------------

    def handle_proposal(self, src: int, p: Proposal) -> None:
        """Check a proposal cheapest-first (:mod:`.admission`), then store, update and vote."""
        b = p.block
        v = b.view
        reason = admission.shape(p, src, self.n, self.tree.tip.view, self.config.max_batch_size)
        if reason is not None:
            self._reject(p, reason)
            return
        self.hash_work["block_id"] += 1
        seen = self.proposals.get(v)
        if seen is not None and seen.block.hash == b.hash:
            # a repeat: answer with the vote already cast, if any (the safety rules' repeat)
            last = self.safety.last_vote
            if last is not None and last.view == v and last.block_hash == b.hash:
                self._send_vote(last)
            return
        if not self.keyring.verify(src, p.body(), p.auth):
            self._reject(p, "not authentic")
            return
        if seen is not None:
            self._ready.notes.append(Note("equivocation", (seen, p)))
            self._reject(p, "equivocating proposal")
            return
        reason = admission.certificates(p, self.keyring, self.n, self.quorum, self.memo)
        if reason is not None:
            self._reject(p, reason)
            return
        self.proposals[v] = p
        parent = self.tree.get(b.parent)
        if parent is None:
            self._buffer(src, p)
            return
        self._admit(src, p, parent)

    def _buffer(self, src: int, p: Proposal) -> None:
        """Keep a verified proposal whose parent is unknown and fetch the parent."""
        if self.buffered_count >= self.config.max_buffered_proposals:
            self._reject(p, "unknown parent and the buffer is full")
            return
        self.buffered.setdefault(p.block.parent, []).append((src, p))
        self.buffered_count += 1
        self._ready.notes.append(Note("sync", p.block.parent))
        self._want(p.block.parent, src)

    def _admit(self, src: int, p: Proposal, parent: Block) -> None:
        """The proposal's parent is known: final checks, store, update, vote."""
        b = p.block
        skew = self.config.max_clock_skew_us
        reason = admission.extends(b, parent, self.now, skew, self._check_request)
        if reason is not None:
            self._reject(p, reason)
            return
        if b.hash not in self.tree:
            self.tree.add(b)
            self._ready.persist.append(b)
        self._update(b.justify, src)
        decision = self.safety.vote(b)
        if decision.vote is None:
            self._reject(p, f"no vote: {decision.reason}")
        else:
            self._ready.persist.extend(decision.records)  # the vote is on disk before it leaves
            self._send_vote(decision.vote)
            self.awake = True
            if self.pacemaker.enter(b.view + 1) or not decision.repeat:
                self.pacemaker.restart(self.now)
        self._release(b.hash)
        self._maybe_propose()

    def _send_vote(self, vote: Vote) -> None:
        nxt = (vote.view + 1) % self.n
        if nxt == self.node_id:
            self._count_vote(vote)
        else:
            self._send((nxt,), vote)

    def _release(self, block_hash: bytes) -> None:
        """Admit the buffered proposals waiting for ``block_hash``."""
        waiting = self.buffered.pop(block_hash, None)
        if not waiting:
            return
        self.buffered_count -= len(waiting)
        parent = self.tree.get(block_hash)
        assert parent is not None
        for src, p in waiting:
            if p.block.view > self.tree.tip.view:
                self._admit(src, p, parent)

    def _update(self, qc: QC, src: int) -> None:
        """Algorithm 3 ``update`` for a block whose justify is ``qc`` (the QC of ``b''``)."""
        self._raise_qc_high(qc, src)
        b2 = self.tree.get(qc.block_hash)
        if b2 is None or b2.height == 0:
            return
        rec = self.safety.update_lock(b2.justify)
        if rec is not None:
            self._ready.persist.append(rec)
        b0 = self.tree.three_chain(qc)
        if b0 is not None and not self.tree.is_committed(b0):
            self._commit(b0)

    def _raise_qc_high(self, qc: QC, src: int) -> None:
        """Algorithm 5 ``updateQCHigh``; a QC of view ``v`` also proves view ``v`` is over."""
        if qc.view <= self.qc_high.view:
            return
        self.qc_high = qc
        if self.pacemaker.enter(qc.view + 1):
            self.pacemaker.restart(self.now)
        if qc.block_hash not in self.tree:
            self._want(qc.block_hash, src)

    def handle_vote(self, src: int, vote: Vote) -> None:
        """The next leader counts a vote (cheap checks before the signature)."""
        r = vote.replica
        v = vote.view
        if src != r or r >= self.n:
            self._reject(vote, "forged sender")
            return
        if (v + 1) % self.n != self.node_id:
            self._reject(vote, "vote to a replica that does not lead the next view")
            return
        if (v, vote.block_hash) in self.collector.formed:
            return  # a late vote for a QC already formed
        if v <= self.tree.tip.view or v < self.qc_high.view:
            self._reject(vote, "stale vote")
            return
        if v > self.pacemaker.view + self.config.vote_window:
            self._reject(vote, "vote too far ahead")
            return
        if not self.keyring.verify(r, vote.body(), vote.auth):
            self._reject(vote, "not authentic")
            return
        self._count_vote(vote)

    def _count_vote(self, vote: Vote) -> None:
        added, qc, evidence = self.collector.add(vote)
        if added is Added.CONFLICT:
            self._ready.notes.append(Note("equivocation", evidence))
            self._reject(vote, "conflicting vote")
            return
        if added is Added.DUPLICATE:
            return
        if qc is not None:
            self._raise_qc_high(qc, vote.replica)
            self._maybe_propose()
        v = vote.view
        if (v + 1) % self.n == self.node_id and v + 1 > self.last_proposed_view:
            self._collect_exit(v + 1, vote)  # a vote of v proves its sender left view v

    # --- view change (Algorithm 5) ---------------------------------------------------------------

    def handle_timeout(self, src: int, t: Timeout) -> None:
        """A local timer: the view timer (NEW-VIEW to the next leader) or a sync retry."""
        if t.timer == "sync":
            for block_hash, peer in self.fetcher.due(self.now):
                self._ask(block_hash, peer)
            return
        if t.timer != "view":
            self._reject(t, "unknown timer")
            return
        w = self.pacemaker.time_out(self.now)
        self._ready.notes.append(Note("view-change", w))
        self.awake = False
        busy = self._has_work()
        nv = self._seal(NewView(w, self.qc_high, self._carried_vote(), busy, self.node_id))
        self._ready.persist.append(nv)
        leader = w % self.n
        if leader == self.node_id:
            self._collect_new_view(nv)
        else:
            self._send((leader,), nv)

    def _carried_vote(self) -> Vote | None:
        """The last vote, if no QC this replica knows covers it: the NEW-VIEW carries it to the
        next leader (:mod:`.pacemaker`, *Votes survive a crashed leader*)."""
        last = self.safety.last_vote
        return last if last is not None and last.view > self.qc_high.view else None

    def handle_new_view(self, src: int, nv: NewView) -> None:
        """A NEW-VIEW to this replica as the leader of ``nv.view``."""
        r = nv.replica
        if src != r or r >= self.n:
            self._reject(nv, "forged sender")
            return
        if nv.view % self.n != self.node_id:
            self._reject(nv, "new-view to a replica that does not lead that view")
            return
        if not self.keyring.verify(r, nv.body(), nv.auth):
            self._reject(nv, "not authentic")
            return
        reason = self._check_qc(nv.qc)
        if reason is not None:
            self._reject(nv, f"invalid QC: {reason}")
            return
        vote = nv.vote
        if vote is not None:
            if vote.replica != r:
                self._reject(nv, "carries another replica's vote")
                return
            if not verify_nested(self.keyring, self.memo, r, vote):
                self._reject(nv, "carried vote not authentic")
                return
        self._raise_qc_high(nv.qc, src)
        self._collect_new_view(nv)

    def _collect_new_view(self, nv: NewView) -> None:
        vote = nv.vote
        if (
            vote is not None
            and vote.view > self.tree.tip.view
            and (vote.view, vote.block_hash) not in self.collector.formed
        ):
            self._count_vote(vote)  # a vote its sender's leader may never have received
        if nv.view > self.last_proposed_view:
            self._collect_exit(nv.view, nv)

    def _collect_exit(self, view: int, proof: NewView | Vote) -> None:
        """Count a proof that its sender left ``view - 1``; propose on a timeout certificate."""
        if view <= self.tree.tip.view or view > self.pacemaker.view + self.config.vote_window:
            return
        tc = self.pacemaker.add_exit(view, proof, self.now, self.config.certificate_grace_us)
        if tc is not None:
            if self.pacemaker.enter(view):
                self.pacemaker.restart(self.now)
            self._maybe_propose()

    # --- block sync (module sync) ----------------------------------------------------------------

    def _want(self, block_hash: bytes, src: int) -> None:
        if self.fetcher.want(block_hash, self.now):
            peer = src if src != self.node_id and 0 <= src < self.n else None
            if peer is None:
                peer = self.others[0] if self.others else None
            if peer is not None:
                self._ask(block_hash, peer)

    def _ask(self, block_hash: bytes, peer: int) -> None:
        req = self._seal(
            SyncRequest(block_hash, self.tree.height, self.config.max_sync_blocks, self.node_id)
        )
        self._send((peer,), req)

    def handle_sync_request(self, src: int, req: SyncRequest) -> None:
        """Answer with the asked block and its ancestors (or the highest QC and its chain)."""
        if src != req.replica or req.replica >= self.n:
            self._reject(req, "forged sender")
            return
        if not self.keyring.verify(src, req.body(), req.auth):
            self._reject(req, "not authentic")
            return
        qc, blocks = sync.serve(self.tree, self.qc_high, req, self.config.max_sync_blocks)
        if not blocks:
            return
        self._send((src,), self._seal(SyncResponse(qc, blocks, self.node_id)))

    def handle_sync_response(self, src: int, resp: SyncResponse) -> None:
        """Admit a fetched chain that hashes down from a wanted (certified) block."""
        if src != resp.replica or resp.replica >= self.n:
            self._reject(resp, "forged sender")
            return
        if not self.keyring.verify(src, resp.body(), resp.auth):
            self._reject(resp, "not authentic")
            return
        fetcher = self.fetcher
        known = sync.Either(self.tree, fetcher.staged)
        reason = sync.check_response(
            resp, self.config.max_sync_blocks, self._check_qc, fetcher.wanted, known
        )
        if reason is not None:
            if reason != sync.IGNORE:
                self._reject(resp, reason)
            return
        blocks, qc = resp.blocks, resp.qc
        self.hash_work["block_id"] += len(blocks)
        committed_height = self.tree.height
        for b in reversed(blocks):
            fetcher.got(b.hash)
            if b.height > committed_height and b.hash not in self.tree and not fetcher.stage(b):
                self._reject(resp, "sync stage full")
                return
        for b in fetcher.connectable(self.tree):
            self._join(b, src)
        bottom = sync.lowest_staged(fetcher.staged, blocks[-1].hash)
        if bottom is not None and bottom.height > committed_height + 1:
            self._want(bottom.parent, src)  # the chain goes on below: fetch the next chunk
        if qc is not None:
            self._update(qc, src)
        self._maybe_propose()

    def _join(self, b: Block, src: int) -> None:
        """Admit a fetched block (its parent is known) and run ``update`` for it."""
        parent = self.tree.get(b.parent)
        if parent is None or b.height != parent.height + 1 or b.view <= parent.view:
            self._ready.notes.append(Note("reject", ("sync-response", "bad fetched block")))
            self.rejections["bad fetched block"] += 1
            return
        self.tree.add(b)
        self._ready.persist.append(b)
        self._update(b.justify, src)
        self._release(b.hash)

    # --- commit and execution --------------------------------------------------------------------

    def _commit(self, b0: Block) -> None:
        """Algorithm 3 ``onCommit``: commit ``b0`` and its uncommitted ancestors, in order."""
        chain = self.tree.to_commit(b0)
        if chain is None:
            # only possible with more than f faulty replicas: two conflicting three-chains
            self._ready.notes.append(Note("conflicting-commit", (b0.height, b0.hash)))
            return
        for b in chain:
            self._execute(b, replies=True)
        self._ready.persist.append(CommitRecord(b0.height, b0.hash))
        self.pacemaker.progress()
        if b0.height >= self._next_gc:  # amortized: every GC_INTERVAL committed heights
            self._next_gc = b0.height + GC_INTERVAL
            self._collect_garbage()

    def _execute(self, b: Block, replies: bool) -> None:
        """Execute one committed block (:mod:`.execution`), reply, report it."""
        record, answers = self.execution.execute(b)
        drop = self.mempool.drop
        if replies:
            sign = self.keyring.sign
            out = self._ready.messages
            for reply in answers:
                c = reply.client
                object.__setattr__(reply, "auth", sign(reply.body(), c))  # as _seal does
                out.append(Send((c,), reply))
                drop((c, reply.timestamp))
        else:
            for reply in answers:
                drop((reply.client, reply.timestamp))
        verified = self._verified
        for req in b.batch:
            verified.discard(req.digest())
        work = self.hash_work
        work["tx_id"] += len(b.batch)  # each ordered request's ID, once (the hashwork rule)
        work["digest"] += 1  # the chained state digest
        self.tree.append_committed(b)
        self._ready.committed.append(Committed(b.height, record))

    def _collect_garbage(self) -> None:
        """Forget what a commit made useless: old votes, proposals, forks, staged blocks."""
        tip = self.tree.tip
        self.tree.prune()
        self.fetcher.drop_below(tip.height)
        floor = tip.view
        for v in [v for v in self.proposals if v <= floor]:
            del self.proposals[v]
        self.collector.forget_below(floor)
        self.pacemaker.forget_below(floor)
        for parent in [h for h, w in self.buffered.items() if all(p.view <= floor for _, p in w)]:
            self.buffered_count -= len(self.buffered.pop(parent))

    # --- recovery from persisted records --------------------------------------------------------

    @classmethod
    def recover(
        cls,
        node_id: int,
        config: Config,
        keyring: Keyring,
        records: Iterable[Any],
        service: Service = acknowledge,
        memo: VerdictMemo | None = None,
        now: int = 0,
    ) -> tuple[Replica, Ready]:
        """Rebuild a crashed replica from its persisted records; the Ready asks every peer for
        its highest QC and the blocks below it (:mod:`.sync`)."""
        r = cls(node_id, config, keyring, service, memo)
        state = recovery.replay(records, node_id)
        r.now = now
        r.safety.restore(state.safety_records)
        for b in state.blocks:
            parent = r.tree.get(b.parent)
            if parent is not None and b.hash not in r.tree and b.height == parent.height + 1:
                r.tree.add(b)
        r._ready = Ready()
        if state.commit is not None:
            tip = r.tree.get(state.commit.block_hash)
            chain = None if tip is None else r.tree.to_commit(tip)
            for b in chain or ():
                r._execute(b, replies=False)  # replies are rebuilt unsigned: sealed on demand
        r.tree.prune()
        for qc in [b.justify for b in state.blocks] + [r.safety.locked]:
            if qc.view > r.qc_high.view and qc.block_hash in r.tree:
                r.qc_high = qc
        r.last_proposed_view = state.last_proposed_view
        r.pacemaker.view = max(
            1,
            r.safety.last_voted_view + 1,
            state.last_proposed_view,
            state.last_new_view,
            r.qc_high.view + 1,
        )
        ready = r._ready = Ready()
        req = r._seal(SyncRequest(b"", r.tree.height, config.max_sync_blocks, node_id))
        r._send(r.others, req)
        return r, ready

    # --- introspection ---------------------------------------------------------------------------

    @property
    def state_digest(self) -> bytes:
        """The chained digest of every executed block."""
        return self.execution.state_digest

    @property
    def executed(self) -> list[ExecutedBlock]:
        """Every block this replica executed, in height order."""
        return self.execution.executed

    @property
    def last_reply(self) -> dict[int, Reply]:
        """The last reply to each client (the reply cache)."""
        return self.execution.last_reply

    def counters(self) -> dict[str, int]:
        """Handled messages, rejections, authentication operations and hash work.

        ``hash_<category>`` (categories of :mod:`medbench.hashwork`) count this replica's own
        SHA-256 evaluations: ``hash_block_id`` every block hash it computes (its proposals,
        every proposal it checks that passes the cheap checks, every fetched block),
        ``hash_tx_id`` one per request of each committed block, ``hash_digest`` one chained
        state digest per committed block. Request digests computed to check a client's
        signature are the ``tx_id`` of the same request (counted once, at execution).
        """
        out = {"handled": self.handled, "rejected": sum(self.rejections.values())}
        out.update(self.keyring.counters())
        work = self.hash_work
        for category in ("tx_id", "digest", "merkle", "block_id"):
            out[f"hash_{category}"] = work[category]
        return out
