"""The PBFT replica's state and normal case: requests, batching, the three phases, execution,
blocks (Castro & Liskov, TOCS 2002 §4.1-§4.2, §4.6, §5.1; the blocker of docs/medical-chain.md
§1.5).

Theory of operation
-------------------
:class:`ReplicaCore` holds everything a replica knows and the rules of the normal case; the
sub-protocols that also change that state are its subclasses, one file each, stacked so that
each calls only what lies below it: :class:`~.statetransfer.StateTransfer` (checkpoints and state
transfer, TOCS §4.3, §5.3), :class:`~.viewchange.ViewChanges` (TOCS §4.4),
:class:`~.recovery.Recovery` (restart from persisted records) and, on top,
:class:`~.replica.Replica` with the node interface and the handler table. The one thing the
normal case needs from above, counting its own CHECKPOINT (:meth:`add_checkpoint`), is declared
here as abstract. See :mod:`.replica` for the protocol rule by rule.

One module on purpose (at the kit's ~700-line guide): the normal case is one concept, a request's
path from arrival to execution, and its checks read best in the order a message meets them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medbench.consensus.auth import Keyring
from medbench.consensus.pbft.blocker import BlockFormat, BlockMode, Chain
from medbench.consensus.pbft.checkpoint import Checkpoints, chain_digest
from medbench.consensus.pbft.log import COMMIT_PHASE, PREPARE_PHASE, ExecutedBatch, Log, Slot
from medbench.consensus.pbft.messages import (
    MAX_REFUSAL_CHARS,
    Block,
    Checkpoint,
    Commit,
    Item,
    NewView,
    Prepare,
    PrePrepare,
    Reply,
    Request,
    ViewChange,
    compute_batch_digest,
)
from medbench.consensus.pbft.refusals import DEFAULT_WINDOW, Refusals
from medbench.node import Committed, Note, Ready, Send
from medbench.quorum import QuorumTracker, Status, strong_quorum
from medbench.rotation import blocker_for

FUTURE_LIMIT = 256  # early messages kept per sending replica (one cannot crowd out the others)
# Enum members as module constants for the vote hot path (``Status.X`` is a slow class lookup).
_REACHED, _DUPLICATE, _CONFLICT = Status.REACHED, Status.DUPLICATE, Status.CONFLICT

INVALID = "invalid request: "  # prefix of the reasons the validator gave (not authenticity)

Validator = Callable[[Request], "str | None"]
Service = Callable[[Request, int], bytes]
"""``service(request, agreed_time_us) -> result``: execute one request at its batch's agreed time
(the replica's clock units, identical on every honest replica)."""


def refusal_code(reason: str) -> str:
    """The typed part of a validator's ``reason`` (before its first colon), as REPLY carries it:
    identical on replicas whose details differ, so f+1 of them match."""
    return reason.split(":", 1)[0].strip()[:MAX_REFUSAL_CHARS] or "refused"


def accept_all(request: Request) -> str | None:
    """The permissive validator: every request is valid."""
    return None


def acknowledge(request: Request, agreed_time_us: int) -> bytes:
    """The default service: the result of a request is its transaction ID (its digest)."""
    return request.digest()


@dataclass(frozen=True, slots=True)
class Config:
    """Protocol parameters of one run (all times in integer microseconds)."""

    n: int
    checkpoint_interval: int = 16
    log_window: int = 64
    max_batch_size: int = 16
    max_batch_delay_us: int = 0
    view_change_timeout_us: int = 500_000
    max_view_change_timeout_us: int = 60_000_000
    fetch_timeout_us: int = 300_000
    block_mode: BlockMode = BlockMode.INTEGRATED
    block_size: int = 100
    block_interval_us: int = 1_000_000
    # how far a PRE-PREPARE's time may be from a backup's clock (TOCS §4.6); generous, because
    # a pre-prepare may wait in a busy replica's queue, and small next to grant windows
    max_clock_skew_us: int = 10_000_000
    # largest STATE answer (encoded batches): a replica far behind gets its history in pieces
    # that end at intermediate stable checkpoints (statetransfer.StateTransfer.handle_fetch)
    max_state_bytes: int = 4 * 1024 * 1024
    refusal_window: int = DEFAULT_WINDOW  # refusals held per client (.refusals)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("need at least one replica")
        if self.checkpoint_interval < 1 or self.log_window < self.checkpoint_interval:
            raise ValueError("need 1 <= checkpoint_interval <= log_window")
        if self.max_batch_size < 1 or self.block_size < 1:
            raise ValueError("batch and block sizes must be positive")
        if self.block_mode == BlockMode.BLOCKER and self.n < 2:
            raise ValueError("blocker mode needs at least two replicas")
        if self.max_clock_skew_us < 0:
            raise ValueError("max_clock_skew_us must not be negative")
        if self.max_state_bytes < 1:
            raise ValueError("max_state_bytes must be positive")

    @property
    def f(self) -> int:
        """Faults tolerated: ``(n - 1) // 3``."""
        return (self.n - 1) // 3


class ReplicaCore(ABC):
    """A PBFT replica's state and normal case (see the module docstring)."""

    _handlers: dict[type, Callable[[int, Any], None]]
    """Message type -> handler, filled by :class:`~.replica.Replica` (replayed early messages
    go through it)."""

    def __init__(
        self,
        node_id: int,
        config: Config,
        keyring: Keyring,
        validator: Validator = accept_all,
        service: Service = acknowledge,
        block_format: BlockFormat | None = None,
    ) -> None:
        if not 0 <= node_id < config.n:
            raise ValueError(f"replica id {node_id} outside 0..{config.n - 1}")
        self.node_id = node_id
        self.config = config
        self.keyring = keyring
        self.validator = validator
        self.service = service
        n = config.n
        self.n = n
        self.f = config.f
        self.quorum = strong_quorum(n)  # 2f + 1 at n = 3f + 1 (medbench.quorum)
        self.others: tuple[int, ...] = tuple(r for r in range(n) if r != node_id)
        self.view = 0
        self.active = True
        self.now = 0
        self.log = Log()
        self.votes = QuorumTracker(n)
        self.checkpoints = Checkpoints(n, config.checkpoint_interval, config.log_window)
        self.chain = Chain(n, config.block_mode, block_format)
        self.last_executed = 0
        self.batch_time = 0  # agreed time of the last executed batch (TOCS §4.6)
        self.state_digest = self.checkpoints.stable_digest
        self.next_sequence = 0  # last sequence the primary assigned
        self.history: dict[int, ExecutedBatch] = {}
        self.last_reply: dict[int, Reply] = {}
        self.refused = Refusals(config.refusal_window)  # every refusal a client may have seen
        self.last_timestamp: dict[int, int] = {}
        # request key -> (time its timer started, request): the view-change timers (TOCS §4.4)
        self.pending: dict[tuple[int, int], tuple[int, Request]] = {}
        # request key -> new views it stayed pending through, unordered (ViewChanges._rejudge),
        # and the pending requests this replica gave up (they keep their timers a while)
        self.pending_views: Counter[tuple[int, int]] = Counter()
        self.gave_up: set[tuple[int, int]] = set()
        self.installed_view = 0  # the view of the last NEW-VIEW installed
        # for ViewChanges._rejudge: the last executed sequence at that install, whether the
        # view before it executed anything, and the requests pending when it began
        self.progress_mark = 0
        self.view_proposed = False
        self.pending_before: set[tuple[int, int]] = set()
        # (client, timestamp) -> highest sequence of a pre-prepare holding it this replica
        # accepted or proposed, until it executes (_may_refuse)
        self.voted: dict[tuple[int, int], int] = {}
        # this replica's CHECKPOINTs above its stable one: sent again at every new view and
        # after a restart, so lost ones cannot leave the log window full for ever
        self.own_checkpoints: dict[int, Checkpoint] = {}
        self.future: dict[int, list[tuple[int, Any]]] = {}  # early messages of a coming view
        self.future_count: Counter[int] = Counter()  # early messages held, per sender
        self.queue: deque[tuple[Item, int]] = deque()  # primary: (item, arrival time)
        self.queued: set[bytes] = set()  # digests queued or assigned, not yet executed
        self.vc_backoff = 0
        self.vc_deadline: int | None = None
        self.view_changes: dict[int, dict[int, ViewChange]] = {}
        self.new_view_sent: set[int] = set()
        self.own_view_changes: dict[int, ViewChange] = {}
        self.vc_resend_at = 0
        self.last_new_view: NewView | None = None
        self.fetch_target: tuple[int, bytes, tuple[Checkpoint, ...]] | None = None
        self.fetch_deadline: int | None = None
        self.fetch_round = 0
        self.block_sent: tuple[int, int, int] | None = None  # (height, view, time)
        self.last_block_time = 0
        self.unblocked_since: int | None = None  # when the oldest unblocked transaction waited
        self._verified: set[bytes] = set()
        self.rejections: Counter[str] = Counter()
        # SHA-256 evaluations of this replica, by medbench.hashwork category (counters())
        self.hash_work: Counter[str] = Counter()
        self.skipped_blocks: Counter[str] = Counter()  # committed BLOCKs not appended, by reason
        self.handled = 0
        self._ready = Ready()

    # --- small helpers ---------------------------------------------------------------------------

    @property
    def is_primary(self) -> bool:
        """True when this replica is the primary of its current view."""
        return self.view % self.n == self.node_id

    def primary(self, view: int | None = None) -> int:
        """The primary of ``view`` (default: the current view)."""
        return (self.view if view is None else view) % self.n

    def _timeout(self) -> int:
        t = self.config.view_change_timeout_us << min(self.vc_backoff, 30)
        return min(t, self.config.max_view_change_timeout_us)

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

    def _verify(self, sender: int, msg: Any) -> bool:
        return self.keyring.verify(sender, msg.body(), msg.auth)

    def _verify_item(self, item: Item) -> str | None:
        """Authenticity and validity of one batch item; acceptances are cached per digest.

        Why the cache is safe: the digest covers the body, which the authenticator checked once
        proves the sender wrote (a copy with another authenticator says the same thing). Only
        acceptances are cached, so a refused request is judged again every time it comes (say,
        once the grant it lacked has executed). An acceptance is admission, not the ledger's
        verdict: the service re-checks every request in the total order when it executes
        (Medical Chain's ``AccessValidator.service``), so a revocation ordered in between still
        refuses it, alike on every replica. An entry leaves the cache when its item executes,
        and the whole cache at each new view (:meth:`~.viewchange.ViewChanges.install_view`
        re-judges the pending requests), which also bounds it.
        """
        d = item.digest()
        if d in self._verified:
            return None
        if isinstance(item, Request):
            if item.client < self.n:
                return "request from a replica id"
            if not self._verify(item.client, item):
                return "request not authentic"
            reason = self.validator(item)
            if reason is not None:
                return f"invalid request: {reason}"
        else:
            reason = self.check_block(item)
            if reason is not None:
                return reason
        self._verified.add(d)
        return None

    def check_block(self, block: Block) -> str | None:
        """Why this replica would not admit ``block`` now (``None``: it would): mode, blocker,
        time and authenticator, cheap checks first. A wrapper (the Medical Chain node) asks
        before it holds a block for its ledger signature."""
        if self.config.block_mode is not BlockMode.BLOCKER:
            return "block message in integrated mode"
        if not 0 <= block.blocker < self.n:
            return "block from a non-replica"
        if block.blocker != blocker_for(block.height, block.view, self.n):
            return "block not from the expected blocker"
        # a block's time is bounded like a pre-prepare's (TOCS §4.6): a faulty blocker can
        # neither date it into the future (every later request would look stale) nor back
        # before its predecessor (a chain whose times run back fails its own audit)
        if abs(block.timestamp - self.now) > self.config.max_clock_skew_us:
            return "block time outside this replica's clock skew"
        if block.timestamp < self.chain.head_time:
            return "block time before its predecessor"
        if not self._verify(block.blocker, block):
            return "block not authentic"
        return None

    def _admit(self, item: Item) -> str | None:
        """:meth:`_verify_item` under the refusal rule (module docstring, *Refusals*): a request
        this replica refused stays refused for its timestamp, and a fresh validator refusal of
        an authentic request is answered (:meth:`_refuse`)."""
        if type(item) is Request and self.refused.refused(item.client, item.timestamp):
            return "request refused earlier"
        reason = self._verify_item(item)
        if reason is not None and type(item) is Request and reason.startswith(INVALID):
            if not self._may_refuse(item):
                # it voted for a batch holding the request (its own pre-prepare, one it
                # prepared, one a NEW-VIEW re-issued) at a sequence still open: a refusal now
                # could show the client a refusal for a request that commits
                return "request in a pre-prepare accepted earlier"
            self._refuse(item, reason[len(INVALID) :])
        return reason

    def _note_votes(self, pp: PrePrepare) -> None:
        """Remember the requests of a pre-prepare this replica accepted or proposed, with the
        highest sequence it voted for each at (:meth:`_may_refuse`)."""
        s = pp.sequence
        voted = self.voted
        for item in pp.batch:
            if type(item) is Request:
                key = (item.client, item.timestamp)
                if voted.get(key, 0) < s:
                    voted[key] = s

    def _may_refuse(self, req: Request) -> bool:
        """True unless this replica voted for ``req`` at a sequence it has not executed yet.

        A refusal promises the client that this replica never helps the request commit (the
        refusal quorum's f+1 honest refusers rule a commit out). Its PREPARE for a batch holding
        the request, in any view, may already be part of a prepared certificate that a later
        NEW-VIEW re-issues (and every replica then accepts), so it must not refuse while that
        sequence is open; once it executed the sequence, another batch was decided there and
        that certificate is dead.
        """
        key = (req.client, req.timestamp)
        s = self.voted.get(key)
        if s is None:
            return True
        if s <= self.last_executed:
            del self.voted[key]
            return True
        return False

    def _refuse(self, req: Request, reason: str) -> None:
        """Send ``req``'s client an authenticated refusal; remember it and drop its timer."""
        c = req.client
        reply = Reply(self.view, req.timestamp, c, self.node_id, b"", refusal=refusal_code(reason))
        self._seal(reply, c)
        if self.refused.add(reply):
            # persisted like a vote: a restarted replica must not prepare what it refused
            self._ready.persist.append(reply)
        self.pending.pop((c, req.timestamp), None)
        self._send((c,), reply)

    def _wrong_view(self, src: int, msg: Any) -> None:
        """Keep a bounded number of messages of the view being entered, per sender (a Byzantine
        replica flooding early votes fills only its own share); reject the others."""
        v = msg.view
        coming = v > self.view or (v == self.view and not self.active)
        if not coming or v > self.view + 2:
            self._reject(msg, "wrong view")
        elif self.future_count[src] >= FUTURE_LIMIT:
            self._reject(msg, "early-message buffer full")
        else:
            self.future.setdefault(v, []).append((src, msg))
            self.future_count[src] += 1

    def _in_window(self, sequence: int) -> bool:
        return (
            self.checkpoints.stable < sequence <= self.checkpoints.stable + self.config.log_window
        )

    # --- requests and batching (TOCS §4.1, §5.1) -------------------------------------------------

    def handle_request(self, src: int, req: Request) -> None:
        """A client request, straight from the client or relayed by a backup."""
        client = req.client
        last = self.last_timestamp.get(client, 0)
        if req.timestamp <= last:
            cached = self.last_reply.get(client)
            if cached is not None and cached.timestamp == req.timestamp and src == client:
                if not cached.auth:  # executed by state transfer: authenticate on first use
                    self._seal(cached, client)
                self._send((client,), cached)  # a retransmission: answer from the reply cache
            else:
                self._reject(req, "old request")
            return
        if self.refused.refused(client, req.timestamp):
            refusal = self.refused.reply(client, req.timestamp)
            if src == client and refusal is not None:
                self._send((client,), refusal)  # a retransmission: the same refusal, not re-judged
            else:
                self._reject(req, "request refused earlier")
            return
        reason = self._admit(req)
        if reason is not None:
            self._reject(req, reason)
            return
        key = (client, req.timestamp)
        if key not in self.pending:
            self.pending[key] = (self.now, req)
            for old in [k for k in self.gave_up if k[0] == client and k[1] < req.timestamp]:
                self.gave_up.discard(old)  # the client moved on: no view change for that one
                self.pending.pop(old, None)
        if self.is_primary and self.active:
            self._enqueue(req)
        elif src == client and self.active:
            self._send((self.primary(),), req)  # relay to the primary (TOCS §4.1)

    def _enqueue(self, item: Item) -> None:
        if type(item) is Request and self.pending_views[(item.client, item.timestamp)] > self.f:
            return  # views ordered others without it: it is being given up (ViewChanges._rejudge)
        d = item.digest()
        if d in self.queued:
            return
        self.queued.add(d)
        self.queue.append((item, self.now))
        self._maybe_send_batch()

    def _maybe_send_batch(self) -> None:
        cfg = self.config
        while self.queue and self.next_sequence < self.checkpoints.high:
            if (
                len(self.queue) < cfg.max_batch_size
                and self.now - self.queue[0][1] < cfg.max_batch_delay_us
            ):
                return
            count = min(len(self.queue), cfg.max_batch_size)
            batch = tuple(self.queue.popleft()[0] for _ in range(count))
            self._send_pre_prepare(batch)

    def _send_pre_prepare(self, batch: tuple[Item, ...]) -> None:
        self.next_sequence += 1
        s = self.next_sequence
        ts = max(self.now, self._time_floor(s))  # a clock set back must not make time run back
        self.hash_work["digest"] += 1
        pp = self._seal(
            PrePrepare(self.view, s, compute_batch_digest(ts, batch), ts, batch, self.node_id)
        )
        self._ready.persist.append(pp)
        self._send(self.others, pp)
        self._accept_pre_prepare(self.log.slot(s), pp)

    # --- normal case (TOCS §4.2) -----------------------------------------------------------------

    def handle_pre_prepare(self, src: int, pp: PrePrepare) -> None:
        """A backup checks and accepts a pre-prepare, then broadcasts its PREPARE."""
        v = pp.view
        if src != pp.replica or pp.replica != v % self.n:
            self._reject(pp, "pre-prepare not from the primary")
            return
        if v != self.view or not self.active:
            self._wrong_view(src, pp)
            return
        s = pp.sequence
        if not self._in_window(s):
            self._reject(pp, "outside watermarks")
            return
        slot = self.log.slot(s)
        if slot.view == v and slot.pre_prepare is not None:
            if slot.digest == pp.batch_digest:
                self._reject(pp, "duplicate")
            else:
                self._reject(pp, "conflicting pre-prepare")
            return
        if slot.committed and slot.digest != pp.batch_digest:
            self._reject(pp, "contradicts a committed batch")
            return
        if self._voted_otherwise(slot, v, pp.batch_digest):
            self._reject(pp, "contradicts own prepare")
            return
        if not self._verify(src, pp):
            self._reject(pp, "not authentic")
            return
        self.hash_work["digest"] += 1
        if compute_batch_digest(pp.timestamp, pp.batch) != pp.batch_digest:
            self._reject(pp, "batch digest mismatch")
            return
        reason = self._check_batch_time(pp)
        if reason is not None:
            self._reject(pp, reason)  # no PREPARE: the request timers move to a new primary
            return
        for item in pp.batch:
            reason = self._admit(item) or self._giving_up(item)
            if reason is not None:
                self._reject(pp, reason)
                return
        self._ready.persist.append(pp)
        self._accept_pre_prepare(slot, pp)

    def _giving_up(self, item: Item) -> str | None:
        """Why a backup does not vote for ``item`` in a fresh pre-prepare, or ``None``.

        A request pending, unordered, through more than f views that ordered others is being
        given up (:meth:`~.viewchange.ViewChanges._rejudge`), once this replica's votes for it
        are closed (:meth:`_may_refuse`). A new vote at a higher sequence would reopen them: a
        primary re-proposing it in every view it leads (a request reviver, soak seed 14627) kept
        it pending here, and this replica's timer changed views, for ever. Not voting is always
        safe; the certificates a NEW-VIEW re-issues are accepted all the same (``install_view``).
        """
        if type(item) is Request and self.pending_views[(item.client, item.timestamp)] > self.f:
            return "request being given up"
        return None

    def _time_floor(self, s: int) -> int:
        """The time a batch at ``s`` may not precede: the newest batch time known below ``s``.

        That is the nearest lower non-empty pre-prepare this replica holds (null requests carry
        no time), else the agreed time of the last executed batch.
        """
        log = self.log
        for q in range(s - 1, max(self.last_executed, self.checkpoints.stable), -1):
            slot = log.get(q)
            pp = None if slot is None else slot.pre_prepare
            if pp is not None and pp.batch:
                return max(self.batch_time, pp.timestamp)
        return self.batch_time

    def _check_batch_time(self, pp: PrePrepare) -> str | None:
        """Why a backup refuses ``pp``'s timestamp (TOCS §4.6), or ``None``.

        Bounded skew on both sides of this replica's clock: a Byzantine primary can neither date
        a batch into the future (into a grant not yet valid) nor freeze or rewind the clock
        (keeping an expired grant or a revoked key alive) by more than ``max_clock_skew_us``.
        """
        t = pp.timestamp
        skew = self.config.max_clock_skew_us
        if t > self.now + skew:
            return "batch time ahead of this replica's clock"
        if t < self.now - skew:
            return "batch time behind this replica's clock"
        if t < self._time_floor(pp.sequence):
            return "batch time before the previous batch"
        return None

    def _voted_otherwise(self, slot: Slot, view: int, digest: bytes) -> bool:
        """True when this replica already sent a PREPARE for another digest at this (view, seq).

        The slot's accepted pre-prepare normally answers this; the check on its own votes also
        holds when a restart lost the pre-prepare but kept the PREPARE (TOCS §4.2: a backup
        prepares at most one digest per view and sequence).
        """
        me = self.node_id
        for (w, d), voters in slot.prepares.items():
            if w == view and d != digest and me in voters:
                return True
        return False

    def _accept_pre_prepare(self, slot: Slot, pp: PrePrepare) -> None:
        slot.accept(pp)
        self._note_votes(pp)
        v, s, d = pp.view, pp.sequence, pp.batch_digest
        self.votes.add(PREPARE_PHASE, v, s, d, pp.replica)
        if pp.replica == self.node_id:
            for item in pp.batch:
                self.queued.add(item.digest())
        if pp.replica != self.node_id:
            prepare = self._seal(Prepare(v, s, d, self.node_id))
            self._ready.persist.append(prepare)
            self._send(self.others, prepare)
            slot.add_prepare(prepare)
            self.votes.add(PREPARE_PHASE, v, s, d, self.node_id)
        self._maybe_prepared(slot)

    def handle_prepare(self, src: int, msg: Prepare) -> None:
        """Count a backup's PREPARE (the hot path: cheap checks before the authenticator)."""
        r = msg.replica
        v = msg.view
        if src != r or r >= self.n:
            self._reject(msg, "forged sender")
            return
        if v != self.view or not self.active:
            self._wrong_view(src, msg)
            return
        s = msg.sequence
        stable = self.checkpoints.stable
        if s <= stable or s > stable + self.config.log_window:
            self._reject(msg, "outside watermarks")
            return
        if r == v % self.n:
            self._reject(msg, "prepare from the primary")
            return
        if not self.keyring.verify(r, msg.body(), msg.auth):
            self._reject(msg, "not authentic")
            return
        status = self.votes.add(PREPARE_PHASE, v, s, msg.batch_digest, r)
        if status is _DUPLICATE:
            return
        if status is _CONFLICT:
            self._note_evidence()
            return
        slot = self.log.slot(s)
        slot.add_prepare(msg)
        if status is _REACHED and slot.digest == msg.batch_digest:
            self._maybe_prepared(slot)  # later votes (ALREADY) change nothing

    def _maybe_prepared(self, slot: Slot) -> None:
        pp = slot.pre_prepare
        if pp is None or slot.commit_sent or pp.view != self.view or not self.active:
            return
        v, s, d = pp.view, pp.sequence, pp.batch_digest
        if not self.votes.reached(PREPARE_PHASE, v, s, d):  # the threshold lives in the tracker
            return
        # the pre-prepare stands for the primary's vote: the rest of the quorum are PREPAREs
        slot.proof = slot.certificate(pp.replica, self.votes.threshold(PREPARE_PHASE) - 1)
        slot.commit_sent = True
        commit = self._seal(Commit(v, s, d, self.node_id))
        self._ready.persist.append(slot.proof)  # persisted before the COMMIT it justifies
        self._ready.persist.append(commit)
        self._send(self.others, commit)
        self.votes.add(COMMIT_PHASE, v, s, d, self.node_id)
        self._maybe_committed(slot)

    def handle_commit(self, src: int, msg: Commit) -> None:
        """Count a COMMIT; 2f+1 matching ones on a prepared batch commit it."""
        r = msg.replica
        if src != r or r >= self.n:
            self._reject(msg, "forged sender")
            return
        if msg.view != self.view or not self.active:
            self._wrong_view(src, msg)
            return
        s = msg.sequence
        stable = self.checkpoints.stable
        if s <= stable or s > stable + self.config.log_window:
            self._reject(msg, "outside watermarks")
            return
        if not self.keyring.verify(r, msg.body(), msg.auth):
            self._reject(msg, "not authentic")
            return
        status = self.votes.add(COMMIT_PHASE, msg.view, s, msg.batch_digest, r)
        if status is _CONFLICT:
            self._note_evidence()
            return
        if status is _REACHED:
            slot = self.log.get(s)
            if slot is not None and slot.digest == msg.batch_digest:
                self._maybe_committed(slot)

    def _maybe_committed(self, slot: Slot) -> None:
        if slot.committed or not slot.commit_sent or slot.pre_prepare is None:
            return
        pp = slot.pre_prepare
        if not self.votes.reached(COMMIT_PHASE, pp.view, pp.sequence, pp.batch_digest):
            return
        slot.committed = True
        self._execute_ready()

    def _note_evidence(self) -> None:
        for ev in self.votes.take_evidence():
            self._ready.notes.append(Note("equivocation", ev))

    # --- execution -------------------------------------------------------------------------------

    def _execute_ready(self) -> None:
        while self.fetch_target is None:
            slot = self.log.get(self.last_executed + 1)
            if slot is None or not slot.committed or slot.pre_prepare is None:
                return
            pp = slot.pre_prepare
            self._execute(pp.sequence, pp.timestamp, pp.batch, pp.batch_digest, replies=True)

    def _execute(
        self, s: int, ts: int, items: tuple[Item, ...], digest: bytes, replies: bool
    ) -> ExecutedBatch:
        """Apply one committed batch (deterministic: the same on every honest replica).

        Every request is executed at the batch's agreed time, ``max(ts, previous agreed time)``:
        a pure function of the committed sequence, so state transfer and recovery, which replay
        the batches in order, reach the same times.
        """
        assert s == self.last_executed + 1, f"executing {s} after {self.last_executed}"
        agreed = self.batch_time = max(self.batch_time, ts)
        executed: list[Request] = []
        blocks: list[Any] = []
        chain = self.chain
        for item in items:
            d = item.digest()
            self.queued.discard(d)
            self._verified.discard(d)
            if isinstance(item, Request):
                c = item.client
                if item.timestamp <= self.last_timestamp.get(c, 0):
                    continue  # already executed: exactly-once by client timestamp
                result = self.service(item, agreed)
                reply = Reply(self.view, item.timestamp, c, self.node_id, result)
                self.last_timestamp[c] = item.timestamp
                self.pending.pop((c, item.timestamp), None)
                self.voted.pop((c, item.timestamp), None)
                # ordered all the same (other replicas admitted it): execution decides, and
                # refusals at or below this timestamp are spent
                self.refused.executed(c, item.timestamp)
                executed.append(item)
                chain.accept(item.digest())
                if replies:
                    self._seal(reply, c)
                    self._send((c,), reply)
                self.last_reply[c] = reply
            elif isinstance(item, Block):
                why = chain.check(item)
                if why is None:
                    blocks.append(chain.append(item.blocker, item.tx_ids, item.timestamp))
                else:
                    # ordered, but not appendable (e.g. a second block for one height, or one
                    # by a blocker of a former view): every honest replica skips it alike
                    self.skipped_blocks[why] += 1
                    self._ready.notes.append(Note("block-skipped", (s, item.height, why)))
        if chain.mode is BlockMode.INTEGRATED and executed:
            blocks.append(chain.append(-1, tuple(r.digest() for r in executed), agreed))
        work = self.hash_work
        work["tx_id"] += len(items)  # each ordered item's ID, once (the hashwork rule)
        work["digest"] += 1  # the chained state digest below
        for b in blocks:  # Chain.append builds the block, then validates it: twice each
            k = len(b.tx_ids)
            work["merkle"] += 2 * (2 * k - 1 if k else 1)  # RFC 6962 (hashwork.merkle_hashes)
            work["block_id"] += 2
        if blocks:
            self.last_block_time = self.now
            self.block_sent = None
        if not chain.unblocked:
            self.unblocked_since = None
        elif blocks or self.unblocked_since is None:
            self.unblocked_since = self.now
        if executed:
            self.vc_backoff = 0
        self.state_digest = chain_digest(self.state_digest, s, digest)
        self.last_executed = s
        batch = ExecutedBatch(
            s, ts, digest, items, tuple(executed), tuple(blocks), self.state_digest
        )
        self.history[s] = batch
        self._ready.persist.append(batch)
        self._ready.committed.append(Committed(s, batch))
        if replies and s % self.config.checkpoint_interval == 0:
            cp = self._seal(Checkpoint(s, self.state_digest, self.node_id))
            self._ready.persist.append(cp)
            self._send(self.others, cp)
            self.own_checkpoints[s] = cp
            self.add_checkpoint(cp)
        return batch

    def resend_checkpoints(self) -> None:
        """Send again this replica's CHECKPOINTs above its stable checkpoint (they are sent once
        when made; one lost, or forgotten by peers that restarted, would otherwise keep the
        checkpoint from becoming stable and the log window full for ever)."""
        stable = self.checkpoints.stable
        for s in sorted(self.own_checkpoints):
            if s <= stable:
                del self.own_checkpoints[s]
            else:
                self._send(self.others, self.own_checkpoints[s])

    # --- blocks (docs/medical-chain.md §1.5)
    # ------------------------------------------------------------------

    def _maybe_propose_block(self) -> None:
        """The blocker of the current view and chain length sends its BLOCK to the primary."""
        chain = self.chain
        height = chain.length
        if not self.active or blocker_for(height, self.view, self.n) != self.node_id:
            return
        if not chain.unblocked:
            return
        sent = self.block_sent
        cfg = self.config
        if sent is not None and sent[0] == height and sent[1] == self.view:
            if self.now - sent[2] < cfg.block_interval_us:
                return  # a block for this height is in flight; resend only after an interval
        elif (
            len(chain.unblocked) < cfg.block_size
            and self.now - self.last_block_time < cfg.block_interval_us
        ):
            return
        block = self._seal(
            Block(
                self.view,
                height,
                chain.head_id,
                self.node_id,
                chain.pending(cfg.block_size),
                max(self.now, chain.head_time),  # a clock behind the head's must not run back
            )
        )
        self.block_sent = (height, self.view, self.now)
        self._send((self.primary(),), block)

    def handle_block(self, src: int, block: Block) -> None:
        """The primary receives a blocker's BLOCK and orders it like a request."""
        if src != block.blocker:
            self._reject(block, "forged sender")
            return
        if not self.is_primary or not self.active:
            self._reject(block, "not the primary")
            return
        if block.view != self.view or block.height < self.chain.length:
            self._reject(block, "stale block")
            return
        reason = self._verify_item(block)
        if reason is not None:
            self._reject(block, reason)
            return
        self._enqueue(block)

    @abstractmethod
    def add_checkpoint(self, msg: Checkpoint) -> None:
        """Count a CHECKPOINT (this replica's own included); :mod:`.statetransfer` implements it."""

    # --- introspection ---------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Handled messages, rejections, skipped blocks, authentication operations and hash work.

        ``hash_<category>`` (categories of :mod:`medbench.hashwork`) count this replica's own
        SHA-256 evaluations: ``hash_digest`` every batch digest it computes or recomputes (its
        pre-prepares, every pre-prepare it checks — refused ones too —, each certificate of a
        VIEW-CHANGE it checks, each re-issued pre-prepare of a NEW-VIEW, each batch of a STATE)
        and every chained state digest (executed or transferred batch); ``hash_tx_id`` one per
        item of each executed batch; ``hash_merkle`` / ``hash_block_id`` the building and
        checking of every block the chain appends. MACs are in the keyring's ``primitives``.
        """
        out = {
            "handled": self.handled,
            "rejected": sum(self.rejections.values()),
            "blocks_skipped": sum(self.skipped_blocks.values()),
        }
        out.update(self.keyring.counters())
        work = self.hash_work
        for category in ("tx_id", "digest", "merkle", "block_id"):
            out[f"hash_{category}"] = work[category]
        return out
