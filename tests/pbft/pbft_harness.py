"""An in-process, deterministic network for PBFT nodes (after etcd raft's ``network`` in tests).

Messages travel with a seeded random latency over FIFO links; the harness can drop messages at
random, cut links, isolate nodes, add delay and turn a replica into a black hole (it receives but
nothing it sends leaves). Virtual time advances by ``tick``. It records what every node persisted,
committed and completed, the message counts and bytes by kind, and (optionally) a readable trace.

The adversary (``adversary.py``) adds two link faults PBFT's model allows (TOCS 2002 §2: the
network may fail to deliver, delay, duplicate or deliver messages out of order): ``dup_rate``
delivers a message a second time later, ``reorder_rate`` lets a message overtake the ones sent
before it on its link. Both default to 0, so links stay FIFO and exactly-once unless a test asks.

Every vote an honest replica makes is recorded (``votes_sent``) wherever it travels: a plain
PRE-PREPARE, PREPARE or COMMIT, the pre-prepares a new primary issues inside its NEW-VIEW, its
CHECKPOINTs (one state digest per sequence) and its REPLYs (one result per request). An
exception escaping a node's ``step`` or ``tick`` is re-raised as :class:`verdicts.NodeCrashed`.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from verdicts import NodeCrashed, SafetyViolation, VerdictFailure

from medbench.consensus.pbft import (
    Client,
    Config,
    ExecutedBatch,
    Replica,
    Submit,
    accept_all,
    acknowledge,
    make_keyrings,
)
from medbench.consensus.pbft.messages import Checkpoint, Commit, NewView, Prepare, PrePrepare, Reply
from medbench.consensus.pbft.replica import Service, Validator
from medbench.node import Ready, Send


@dataclass
class Stats:
    """Message counts and bytes by kind (one per destination)."""

    messages: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)

    @property
    def total_messages(self) -> int:
        return sum(self.messages.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


class Network:
    """Replicas ``0..n-1`` and clients ``n..n+clients-1`` on a simulated network."""

    def __init__(
        self,
        n: int = 4,
        clients: int = 1,
        seed: int = 0,
        scheme: str = "modeled",
        latency_us: tuple[int, int] = (500, 1500),
        tick_us: int = 1_000,
        trace: bool = False,
        client_timeout_us: int = 400_000,
        client_signatures: bool = True,
        app: Callable[[Network, int], tuple[Validator, Service]] | None = None,
        **config: Any,
    ) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.config = Config(n=n, **config)
        ids = list(range(n + clients))
        self.keyrings = make_keyrings(
            scheme, n, ids, seed=b"test-%d" % seed, client_signatures=client_signatures
        )
        # app(net, i) -> (validator, service) of replica i: a fresh pair at every (re)start
        self.app = app
        self.nodes: dict[int, Any] = {i: self._replica(i) for i in range(n)}
        for c in range(n, n + clients):
            self.nodes[c] = Client(c, n, self.keyrings[c], retransmit_timeout_us=client_timeout_us)
        self.client_ids = list(range(n, n + clients))
        self.latency_us = latency_us
        self.tick_us = tick_us
        self.now = 0
        self._heap: list[tuple[int, int, int, int, Any]] = []
        self._seq = 0
        self._link_time: dict[tuple[int, int], int] = {}
        self.drop_rate = 0.0
        self.dup_rate = 0.0
        self.reorder_rate = 0.0
        self.cut: set[tuple[int, int]] = set()
        self.isolated: set[int] = set()
        self.black_holes: set[int] = set()
        self.crashed: set[int] = set()
        self.extra_delay: dict[int, int] = {}
        self.persisted: dict[int, list[Any]] = {i: [] for i in range(n)}
        self.committed: dict[int, dict[int, ExecutedBatch]] = {i: {} for i in range(n)}
        self.completed: list[Any] = []
        self.notes: list[tuple[int, Any]] = []
        self.stats = Stats()
        self.trace_on = trace
        self.trace: list[str] = []
        self.submitted = 0
        self.recent: list[Any] = []  # the last messages sent (material for replay/mutation tests)
        # (replica, kind, view, sequence) -> digests it voted for: an honest replica has one
        # (checkpoints: view 0, the state digest; replies: view = client, sequence = timestamp)
        self.votes_sent: dict[tuple[int, str, int, int], set[bytes]] = {}
        # (replica, sequence, agreed time, the clock then): for the time checks of verdicts.py
        self.executed_times: list[tuple[int, int, int, int]] = []
        # replicas whose stable storage was rolled back: they may commit a sequence again
        self.amnesiac: set[int] = set()
        # (replica, sequence) -> the view it was in when it committed that sequence, and the
        # votes replicas sent, from then on, for another batch there
        self.commit_views: dict[tuple[int, int], int] = {}
        self.votes_after_commit: list[tuple[int, str, int, int]] = []

    # --- faults -----------------------------------------------------------------------------------

    def cut_link(self, a: int, b: int) -> None:
        """Drop every message between ``a`` and ``b`` (both directions)."""
        self.cut |= {(a, b), (b, a)}

    def heal(self) -> None:
        """Remove every network fault (crashed nodes stay crashed)."""
        self.drop_rate = 0.0
        self.dup_rate = 0.0
        self.reorder_rate = 0.0
        self.cut.clear()
        self.isolated.clear()
        self.black_holes.clear()
        self.extra_delay.clear()

    def _replica(self, i: int) -> Replica:
        if self.app is None:
            return Replica(i, self.config, self.keyrings[i])
        validator, service = self.app(self, i)
        return Replica(i, self.config, self.keyrings[i], validator, service)

    def crash(self, i: int) -> None:
        """Stop replica ``i``: it loses its memory; only its persisted records survive."""
        self.crashed.add(i)

    def restart(self, i: int) -> None:
        """Rebuild crashed replica ``i`` from its persisted records."""
        self.crashed.discard(i)
        validator, service = (accept_all, acknowledge) if self.app is None else self.app(self, i)
        replica, ready = Replica.recover(
            i, self.config, self.keyrings[i], self.persisted[i], validator, service, now=self.now
        )
        self.nodes[i] = replica
        self._apply(i, ready)

    # --- driving ----------------------------------------------------------------------------------

    def submit(self, client: int, op: bytes) -> None:
        """The application of ``client`` submits ``op``."""
        self.submitted += 1
        self._apply(client, self.nodes[client].step(client, Submit(op)))

    def deliver_now(self, src: int, dst: int, msg: Any) -> None:
        """Inject ``msg`` from ``src`` into ``dst`` immediately (tests of hostile input)."""
        self._apply(dst, self.step(dst, src, msg))

    def step(self, dst: int, src: int, msg: Any) -> Ready:
        """``nodes[dst].step(src, msg)``; an exception is a :class:`NodeCrashed` (not a verdict)."""
        try:
            return self.nodes[dst].step(src, msg)  # type: ignore[no-any-return]
        except VerdictFailure:
            raise
        except Exception as exc:
            raise NodeCrashed(f"node {dst} raised on {msg!r} from {src}: {exc!r}") from exc

    def _tick(self, i: int) -> Ready:
        try:
            return self.nodes[i].tick(self.now)  # type: ignore[no-any-return]
        except VerdictFailure:
            raise
        except Exception as exc:
            raise NodeCrashed(f"node {i} raised in tick at {self.now}: {exc!r}") from exc

    def _vote(self, src: int, kind: str, view: int, seq: int, digest: bytes) -> None:
        self.votes_sent.setdefault((src, kind, view, seq), set()).add(digest)
        # once committed, a sequence is settled: from the view it committed in on, a replica may
        # only vote for that batch there (a later NEW-VIEW must re-issue it)
        cv = self.commit_views.get((src, seq))
        if cv is not None and view >= cv and digest != self.committed[src][seq].batch_digest:
            self.votes_after_commit.append((src, kind, view, seq))

    def _record_votes(self, src: int, send: Send) -> None:
        m = send.msg
        votes = self.votes_sent
        if isinstance(m, (PrePrepare, Prepare, Commit)):
            if m.replica == src:
                self._vote(src, str(m.kind), m.view, m.sequence, m.batch_digest)
        elif isinstance(m, NewView):
            if m.replica == src:  # the new primary's own pre-prepares (a relay is only a copy)
                for pp in m.pre_prepares:
                    if pp.replica == src:
                        self._vote(src, "pre-prepare", pp.view, pp.sequence, pp.batch_digest)
        elif isinstance(m, Checkpoint):
            if m.replica == src:
                votes.setdefault((src, "checkpoint", 0, m.sequence), set()).add(m.state_digest)
        elif isinstance(m, Reply) and m.replica == src and not m.refusal:
            votes.setdefault((src, "reply", m.client, m.timestamp), set()).add(m.result)

    def _apply(self, src: int, ready: Ready) -> None:
        if src in self.persisted:
            self.persisted[src].extend(ready.persist)
        for c in ready.committed:
            batch = c.payload
            log = self.committed[src]
            if c.sequence in log and not (
                src in self.amnesiac and log[c.sequence].batch_digest == batch.batch_digest
            ):
                raise SafetyViolation(f"replica {src} committed {c.sequence} twice")
            log[c.sequence] = batch
            self.executed_times.append((src, c.sequence, batch.timestamp, self.now))
            node = self.nodes[src]
            self.commit_views.setdefault((src, c.sequence), getattr(node, "inner", node).view)
            if self.trace_on:
                self.trace.append(f"{self.now:>9} commit {src} s={c.sequence}")
        self.completed.extend(ready.completed)
        for note in ready.notes:
            self.notes.append((src, note))
            if self.trace_on and note.kind != "reject":
                self.trace.append(f"{self.now:>9} note {src} {note.kind} {note.detail}")
        if src < self.n:
            for send in ready.messages:
                self._record_votes(src, send)
        if src in self.black_holes or src in self.crashed:
            return
        for send in ready.messages:
            self.recent.append(send.msg)
            if len(self.recent) > 256:
                del self.recent[:128]
            size = len(send.msg.encode())
            kind = str(send.msg.kind)
            for dst in send.dsts:
                if dst == src:
                    continue
                self.stats.messages[kind] += 1
                self.stats.bytes[kind] += size
                if self.trace_on:
                    self.trace.append(f"{self.now:>9} send {src}->{dst} {send.msg!r}")
                if (src, dst) in self.cut or src in self.isolated or dst in self.isolated:
                    continue
                if self.drop_rate and self.rng.random() < self.drop_rate:
                    continue
                self._schedule(src, dst, send.msg)

    def _schedule(self, src: int, dst: int, msg: Any) -> None:
        """Queue ``msg`` on the link ``src -> dst``: FIFO unless it may overtake (reorder_rate),
        and perhaps a second copy later (dup_rate)."""
        lo, hi = self.latency_us
        t = self.now + self.rng.randint(lo, hi) + self.extra_delay.get(src, 0)
        if not (self.reorder_rate and self.rng.random() < self.reorder_rate):
            t = max(t, self._link_time.get((src, dst), 0))  # FIFO links
            self._link_time[(src, dst)] = t
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, src, dst, msg))
        if self.dup_rate and self.rng.random() < self.dup_rate:
            self._seq += 1
            later = t + self.rng.randint(lo, 4 * hi)
            heapq.heappush(self._heap, (later, self._seq, src, dst, msg))

    def run(self, duration_us: int) -> None:
        """Advance virtual time by ``duration_us``, delivering messages and ticking every node."""
        end = self.now + duration_us
        next_tick = (self.now // self.tick_us + 1) * self.tick_us
        while True:
            t_msg = self._heap[0][0] if self._heap else None
            if t_msg is not None and t_msg <= next_tick and t_msg <= end:
                t, _, src, dst, msg = heapq.heappop(self._heap)
                self.now = max(self.now, t)
                if dst in self.crashed:
                    continue
                self._apply(dst, self.step(dst, src, msg))
                continue
            if next_tick > end:
                break
            self.now = next_tick
            for i in sorted(self.nodes):
                if i not in self.crashed:
                    self._apply(i, self._tick(i))
            next_tick += self.tick_us
        self.now = end

    def run_until_idle(self, limit_us: int = 60_000_000, step_us: int = 50_000) -> bool:
        """Run until every client is idle (True) or ``limit_us`` passes (False)."""
        spent = 0
        while spent < limit_us:
            if all(self.nodes[c].idle for c in self.client_ids):
                return True
            self.run(step_us)
            spent += step_us
        return all(self.nodes[c].idle for c in self.client_ids)

    # --- verdicts ---------------------------------------------------------------------------------

    def replicas(self, ids: Iterable[int] | None = None) -> list[Replica]:
        """The honest replica objects (unwrapping fault wrappers)."""
        out = []
        for i in range(self.n) if ids is None else ids:
            node = self.nodes[i]
            out.append(getattr(node, "inner", node))
        return out


def safety_violations(net: Network, honest: Iterable[int]) -> list[str]:
    """Safety: no honest replica votes for two digests at one (view, sequence) — PRE-PREPAREs
    (those inside its NEW-VIEWs too), PREPAREs, COMMITs —, nor, in the view it committed a
    sequence or a later one, for another batch at that sequence, nor sends two state digests for one
    checkpoint or two results for one request; honest replicas never commit or execute different
    batches (digest or contents) at one sequence number, nor reach different state digests;
    their chains of blocks agree on their common prefix and list each executed transaction at
    most once; no batch or block is dated beyond ``max_clock_skew_us`` ahead of the clock that
    executes it, and block times never run back (TOCS §4.6)."""
    honest = sorted(honest)
    problems: list[str] = []
    for (i, kind, v, s), digests in sorted(net.votes_sent.items()):
        if i in honest and len(digests) > 1:
            where = f"client {v} timestamp {s}" if kind == "reply" else f"view {v} seq {s}"
            problems.append(f"replica {i} sent {len(digests)} different {kind}s at {where}")
    for i, kind, v, s in net.votes_after_commit:
        if i in honest:
            problems.append(f"replica {i} sent a {kind} at view {v} against seq {s}, committed")
    by_seq: dict[int, tuple[int, bytes, tuple[bytes, ...]]] = {}
    for i in honest:
        log = net.committed[i]
        for s, batch in log.items():
            items = tuple(x.digest() for x in batch.items)
            first = by_seq.setdefault(s, (i, batch.batch_digest, items))
            if first[1:] != (batch.batch_digest, items):
                problems.append(f"seq {s}: replica {first[0]} and {i} committed different batches")
        if log and sorted(log) != list(range(1, max(log) + 1)):
            problems.append(f"replica {i} committed with gaps")
    live = [i for i in honest if i not in net.crashed]
    # the executed history in memory: what a restart replayed and a state transfer installed too
    states: dict[int, tuple[int, bytes, int, tuple[bytes, ...], bytes]] = {}
    for i in live:
        r = net.replicas([i])[0]
        for s, b in r.history.items():
            items = tuple(x.digest() for x in b.items)
            mine = (i, b.batch_digest, b.timestamp, items, b.state_digest)
            first = states.setdefault(s, mine)
            if first[1:] != mine[1:]:
                problems.append(f"seq {s}: replicas {first[0]} and {i} executed different batches")
    chains = [(i, net.replicas([i])[0].chain.ids) for i in live]
    for i, ids in chains:
        for j, other in chains:
            k = min(len(ids), len(other))
            if ids[:k] != other[:k]:
                problems.append(f"chains of {i} and {j} differ")
    for i in live:
        problems.extend(chain_problems(net.replicas([i])[0], net.config.max_clock_skew_us))
    skew = net.config.max_clock_skew_us
    for i, s, ts, now in net.executed_times:
        if i in honest and ts > now + skew:
            problems.append(f"replica {i} executed seq {s} dated {ts - now} us ahead of its clock")
    return problems


def chain_problems(r: Replica, skew_us: int) -> list[str]:
    """Checks of one replica's chain of blocks (the kit's default block format only): every
    block lists transactions this replica executed, each once in the whole chain; block times
    never run back and stay within ``skew_us`` of the agreed time of the batch that ordered the
    block."""
    from medbench.consensus.pbft.blocker import SimpleBlock

    blocks = [b for b in r.chain.blocks[1:] if isinstance(b, SimpleBlock)]
    if not blocks:
        return []
    out: list[str] = []
    executed = {q.digest() for b in r.history.values() for q in b.requests}
    listed = [t for b in blocks for t in b.tx_ids]
    if len(set(listed)) != len(listed):
        out.append(f"replica {r.node_id}: a transaction is in two blocks")
    if not set(listed) <= executed:
        out.append(f"replica {r.node_id}: a block lists a transaction never executed")
    prev = 0
    for b in blocks:
        t = b.header.timestamp
        if t < prev:
            out.append(f"replica {r.node_id}: block {b.header.height} dated before its predecessor")
        prev = max(prev, t)
    when = {id(blk): ex.timestamp for ex in r.history.values() for blk in ex.blocks}
    for b in blocks:
        agreed = when.get(id(b))
        if agreed is not None and abs(b.header.timestamp - agreed) > skew_us:
            out.append(
                f"replica {r.node_id}: block {b.header.height} dated "
                f"{b.header.timestamp - agreed} us from the batch that ordered it"
            )
    return out


def sample_messages(keyrings: dict[int, Any]) -> list[Any]:
    """One authenticated message of every wire kind, nested ones included (n = 4, client 4)."""
    from medbench.consensus.pbft.messages import (
        Block,
        Checkpoint,
        Commit,
        Fetch,
        NewView,
        Prepare,
        PreparedProof,
        PrePrepare,
        Reply,
        Request,
        State,
        StateBatch,
        ViewChange,
        compute_batch_digest,
    )

    def seal(msg: Any, signer: int, to: int | None = None) -> Any:
        object.__setattr__(msg, "auth", keyrings[signer].sign(msg.body(), to))
        return msg

    req = seal(Request(4, 1, b"operation"), 4)
    block = seal(Block(0, 1, bytes(32), 1, (req.digest(),), 10), 1)
    batch = (req, block)
    d = compute_batch_digest(7, batch)
    pp = seal(PrePrepare(0, 1, d, 7, batch, 0), 0)
    prepares = tuple(seal(Prepare(0, 1, d, r), r) for r in (1, 2))
    commit = seal(Commit(0, 1, d, 3), 3)
    reply = seal(Reply(0, 1, 4, 2, b"result"), 2, 4)
    cps = tuple(seal(Checkpoint(4, bytes(range(32)), r), r) for r in (0, 1, 2))
    vc = seal(ViewChange(1, 4, cps, (PreparedProof(pp, prepares),), 3), 3)
    nv = seal(NewView(1, (vc,), (seal(PrePrepare(1, 5, d, 7, batch, 1), 1),), 1), 1)
    fetch = seal(Fetch(1, 3), 3)
    state = seal(State(1, 1, (StateBatch(1, 7, batch),), cps, 0), 0)
    refusal = seal(Reply(0, 2, 4, 1, b"", refusal="no-grant"), 1, 4)
    return [req, block, pp, prepares[0], commit, reply, cps[0], vc, nv, fetch, state, refusal]


# --- message-count figures ---------------------------------------------------------------


def expected_messages(n: int, batch: int, batches: int, k: int) -> dict[str, int]:
    """Fault-free PBFT, ``batches`` batches of ``batch`` requests, checkpoint every ``k``.

    Per batch: (n-1) PRE-PREPAREs, (n-1)^2 PREPAREs (n-1 backups to n-1 peers), n(n-1) COMMITs
    (every replica to its n-1 peers); per request: 1 REQUEST and n REPLYs; per checkpoint
    n(n-1) CHECKPOINTs. Per request that is
    1 + n + [(n-1) + (n-1)^2 + n(n-1)] / batch + n(n-1) / (k * batch).
    """
    return {
        "request": batch * batches,
        "pre-prepare": (n - 1) * batches,
        "prepare": (n - 1) ** 2 * batches,
        "commit": n * (n - 1) * batches,
        "reply": n * batch * batches,
        "checkpoint": n * (n - 1) * (batches // k),
    }


def message_sizes(n: int, batch: int, now_us: int = 1_000_000) -> dict[str, int]:
    """Encoded bytes of one message of each kind in a fault-free :func:`measure` run.

    Built from prototypes with the run's shapes: modeled authentication (16-byte tags), ``batch``
    requests of the form ``op-<client>-0`` from clients ``n..n+batch-1`` (timestamp 1), a batch
    timestamp of ``now_us`` (the primary's clock), sequence 1, view 0, replies carrying the
    request digest (the default service). Integers are MessagePack's shortest forms, so the
    real messages differ from these by a byte or two where a field value crosses a size step.
    """
    keys = make_keyrings("modeled", n, range(n + batch), seed=b"sizes")

    def seal(msg: Any, signer: int, to: int | None = None) -> Any:
        return msg.with_auth(keys[signer].sign(msg.body(), to))

    from medbench.consensus.pbft.messages import (
        Checkpoint,
        Reply,
        Request,
        compute_batch_digest,
    )

    reqs = tuple(seal(Request(c, 1, b"op-%d-0" % c), c) for c in range(n, n + batch))
    d = compute_batch_digest(now_us, reqs)
    last = n - 1
    protos = {
        "request": reqs[-1],
        "pre-prepare": seal(PrePrepare(0, 1, d, now_us, reqs, 0), 0),
        "prepare": seal(Prepare(0, 1, d, last), last),
        "commit": seal(Commit(0, 1, d, last), last),
        "reply": seal(Reply(0, 1, n, last, reqs[-1].digest()), last, n),
        "checkpoint": seal(Checkpoint(4, d, last), last),
    }
    return {kind: len(m.encode()) for kind, m in protos.items()}


def expected_bytes(n: int, batch: int, batches: int, k: int) -> dict[str, int]:
    """Bytes by kind of a fault-free run: :func:`expected_messages` times :func:`message_sizes`.

    Per request that is s_req + n s_reply + [(n-1) s_pp(batch) + ((n-1)^2 + n(n-1)) s_vote]
    / batch + n(n-1) s_cp / (k batch), where s_pp(batch) grows with the batch it carries.
    """
    sizes = message_sizes(n, batch)
    return {
        kind: count * sizes[kind] for kind, count in expected_messages(n, batch, batches, k).items()
    }


def measure(n: int, batch: int, batches: int, k: int = 4) -> Network:
    """Run ``batches`` rounds of ``batch`` clients each sending one request per round."""
    net = Network(
        n=n,
        clients=batch,
        seed=n * 1000 + batch,
        max_batch_size=batch,
        max_batch_delay_us=60_000_000,
        checkpoint_interval=k,
        log_window=4 * k,
        tick_us=10_000,
    )
    for c in net.client_ids:
        for r in range(batches):
            net.submit(c, b"op-%d-%d" % (c, r))
    assert net.run_until_idle(120_000_000, step_us=100_000)
    return net
