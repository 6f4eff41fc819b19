"""An in-process, deterministic network for HotStuff nodes (after ``tests/pbft/pbft_harness.py``).

Messages travel with a seeded random latency over FIFO links; the harness can drop messages at
random, cut links, isolate nodes, add delay per sender, turn a replica into a black hole (it
receives, nothing it sends leaves) and crash a replica (it loses its memory; its persisted records
survive — the harness is its disk — and :meth:`Network.restart` rebuilds it with
:meth:`Replica.recover`). Virtual time advances by ``tick``. It records what every node persisted,
committed and completed, every vote each replica sent (for the double-vote check), message counts
and bytes by kind, and (optionally) a readable trace.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from medbench.consensus.hotstuff import (
    Client,
    Config,
    ExecutedBlock,
    Replica,
    Submit,
    VerdictMemo,
    Vote,
    make_keyrings,
)
from medbench.consensus.hotstuff.persist import decode_record, encode_record
from medbench.node import Ready


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
        memo: bool = True,
        disk_roundtrip: bool = False,
        **config: Any,
    ) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.config = Config(n=n, **config)
        ids = list(range(n + clients))
        self.keyrings = make_keyrings(scheme, n, ids, seed=b"test-%d" % seed)
        self.memo = VerdictMemo(scheme) if memo and scheme != "macs" else None
        self.nodes: dict[int, Any] = {
            i: Replica(i, self.config, self.keyrings[i], memo=self.memo) for i in range(n)
        }
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
        self.cut: set[tuple[int, int]] = set()
        self.isolated: set[int] = set()
        self.black_holes: set[int] = set()
        self.crashed: set[int] = set()
        self.extra_delay: dict[int, int] = {}
        self.disk_roundtrip = disk_roundtrip  # store records as bytes (encode/decode) on restart
        self.persisted: dict[int, list[Any]] = {i: [] for i in range(n)}
        self.committed: dict[int, dict[int, ExecutedBlock]] = {i: {} for i in range(n)}
        self.completed: list[Any] = []
        self.notes: list[tuple[int, Any]] = []
        self.stats = Stats()
        self.trace_on = trace
        self.trace: list[str] = []
        self.submitted = 0
        self.delivered = 0
        self.recent: list[Any] = []  # the last messages sent (material for replay/mutation tests)
        # (replica, view) -> block hashes it voted for (sent or persisted): one per honest replica
        self.votes_sent: dict[tuple[int, int], set[bytes]] = {}

    # --- faults -----------------------------------------------------------------------------------

    def cut_link(self, a: int, b: int) -> None:
        """Drop every message between ``a`` and ``b`` (both directions)."""
        self.cut |= {(a, b), (b, a)}

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between nodes of different groups (nodes in no group: unaffected)."""
        sets = [set(g) for g in groups]
        for i, a in enumerate(sets):
            for b in sets[i + 1 :]:
                for x in a:
                    for y in b:
                        self.cut_link(x, y)

    def heal(self) -> None:
        """Remove every network fault (crashed nodes stay crashed)."""
        self.drop_rate = 0.0
        self.cut.clear()
        self.isolated.clear()
        self.black_holes.clear()
        self.extra_delay.clear()

    def crash(self, i: int) -> None:
        """Stop replica ``i``: it loses its memory; only its persisted records survive."""
        self.crashed.add(i)

    def restart(self, i: int, records: list[Any] | None = None) -> None:
        """Rebuild crashed replica ``i`` from its persisted records (or from ``records``)."""
        self.crashed.discard(i)
        recs = self.persisted[i] if records is None else records
        if self.disk_roundtrip:
            recs = [decode_record(encode_record(r)) for r in recs]
        replica, ready = Replica.recover(
            i, self.config, self.keyrings[i], recs, memo=self.memo, now=self.now
        )
        self.nodes[i] = replica
        self._apply(i, ready)

    # --- driving ----------------------------------------------------------------------------------

    def submit(self, client: int, op: bytes) -> None:
        """The application of ``client`` submits ``op``."""
        self.submitted += 1
        self._apply(client, self.nodes[client].step(client, Submit(op)))

    def deliver_now(self, src: int, dst: int, msg: Any) -> Ready:
        """Inject ``msg`` from ``src`` into ``dst`` immediately (tests of hostile input)."""
        ready = self.nodes[dst].step(src, msg)
        self._apply(dst, ready)
        return ready

    def _apply(self, src: int, ready: Ready) -> None:
        if src in self.persisted:
            self.persisted[src].extend(ready.persist)
        for c in ready.committed:
            log = self.committed[src]
            old = log.get(c.sequence)
            if old is not None:
                # a restarted replica may commit again what it committed before: the same block
                assert old.block_hash == c.payload.block_hash, f"replica {src} re-committed"
            log[c.sequence] = c.payload
            if self.trace_on:
                self.trace.append(
                    f"{self.now:>9} commit {src} h={c.sequence} "
                    f"id={c.payload.block_hash[:4].hex()} n={len(c.payload.requests)}"
                )
        self.completed.extend(ready.completed)
        for note in ready.notes:
            self.notes.append((src, note))
            if self.trace_on and note.kind != "reject":
                self.trace.append(f"{self.now:>9} note {src} {note.kind} {note.detail}")
        if src < self.n:
            # every vote a replica casts is persisted before it leaves (a vote to itself, as the
            # next leader, never leaves): the persist list sees them all
            for m in ready.persist:
                if type(m) is Vote and m.replica == src:
                    self.votes_sent.setdefault((src, m.view), set()).add(m.block_hash)
            for send in ready.messages:
                m = send.msg
                if type(m) is Vote and m.replica == src:
                    self.votes_sent.setdefault((src, m.view), set()).add(m.block_hash)
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
                lo, hi = self.latency_us
                t = self.now + self.rng.randint(lo, hi) + self.extra_delay.get(src, 0)
                t = max(t, self._link_time.get((src, dst), 0))  # FIFO links
                self._link_time[(src, dst)] = t
                self._seq += 1
                heapq.heappush(self._heap, (t, self._seq, src, dst, send.msg))

    def run(self, duration_us: int) -> None:
        """Advance virtual time by ``duration_us``, delivering messages and ticking every node."""
        end = self.now + duration_us
        next_tick = (self.now // self.tick_us + 1) * self.tick_us
        while True:
            t_msg = self._heap[0][0] if self._heap else None
            if t_msg is not None and t_msg <= next_tick and t_msg <= end:
                t, _, src, dst, msg = heapq.heappop(self._heap)
                self.now = max(self.now, t)
                if dst in self.crashed or dst not in self.nodes:
                    continue  # a crashed node, or an id nobody has (hostile input names any)
                self.delivered += 1
                self._apply(dst, self.nodes[dst].step(src, msg))
                continue
            if next_tick > end:
                break
            self.now = next_tick
            for i in sorted(self.nodes):
                if i not in self.crashed:
                    self._apply(i, self.nodes[i].tick(self.now))
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
        """The replica objects (unwrapping fault wrappers)."""
        out = []
        for i in range(self.n) if ids is None else ids:
            node = self.nodes[i]
            out.append(getattr(node, "inner", node))
        return out


def safety_violations(net: Network, honest: Iterable[int]) -> list[str]:
    """Safety: no honest replica votes for two blocks in one view; honest replicas never commit
    different blocks at one height, nor with gaps; the state digests of a common height agree."""
    honest = sorted(honest)
    problems: list[str] = []
    for (i, v), hashes in sorted(net.votes_sent.items()):
        if i in honest and len(hashes) > 1:
            problems.append(f"replica {i} voted for {len(hashes)} different blocks in view {v}")
    by_height: dict[int, tuple[int, bytes, bytes]] = {}
    for i in honest:
        log = net.committed[i]
        for h, e in sorted(log.items()):
            first = by_height.setdefault(h, (i, e.block_hash, e.state_digest))
            if first[1] != e.block_hash:
                problems.append(
                    f"height {h}: replicas {first[0]} and {i} committed different blocks"
                )
            elif first[2] != e.state_digest:
                problems.append(f"height {h}: replicas {first[0]} and {i} differ in state")
        if log and sorted(log) != list(range(min(log), max(log) + 1)):
            problems.append(f"replica {i} committed with gaps")
    return problems


def executed_ops(replica: Replica) -> list[tuple[int, bytes]]:
    """``(client, operation)`` of every request the replica executed, in order."""
    return [(q.client, q.operation) for e in replica.executed for q in e.requests]


# --- message-count figures ----------------------------------------------------------------------


def expected_messages(n: int, clients: int, batch: int) -> dict[str, int]:
    """Fault-free chained HotStuff, ``clients`` requests submitted at once, ``batch`` per block.

    ``m = ceil(clients / batch)`` blocks carry requests, in consecutive views; three more
    (empty) blocks grow the three-chain that commits the last of them. Every block costs
    (n - 1) PROPOSALs (the leader to the others) and (n - 1) VOTEs (every replica to the next
    leader, whose own vote stays local); every request 1 REQUEST per replica (the client
    broadcasts) and n REPLYs. So per block decision in the steady state: 2(n - 1) messages,
    and in all ``(m + 3) * 2(n - 1) + 2 n * clients``.
    """
    m = -(-clients // batch)
    return {
        "request": n * clients,
        "proposal": (m + 3) * (n - 1),
        "vote": (m + 3) * (n - 1),
        "reply": n * clients,
    }


def measure(n: int, clients: int, batch: int, **kw: Any) -> Network:
    """``clients`` clients each submit one request at 10 ms; run until all complete."""
    net = Network(
        n=n,
        clients=clients,
        seed=n * 1000 + clients,
        max_batch_size=batch,
        max_batch_delay_us=60_000_000,
        tick_us=10_000,
        **kw,
    )
    net.run(net.tick_us)  # every replica's clock reads 10 ms: block times are 3-byte integers
    for c in net.client_ids:
        net.submit(c, b"op-%04d" % c)
    assert net.run_until_idle(60_000_000, step_us=10_000)
    net.run(100_000)  # the votes on the last block reach the next leader
    return net


# --- sample messages and sizes -----------------------------------------------------------------


def sample_messages(keyrings: dict[int, Any]) -> list[Any]:
    """One authenticated message of every wire kind, nested ones included (n = 4, client 4)."""
    from medbench.consensus.hotstuff import (
        GENESIS,
        GENESIS_QC,
        QC,
        Block,
        NewView,
        Proposal,
        Reply,
        Request,
        SyncRequest,
        SyncResponse,
    )

    def seal(msg: Any, signer: int, to: int | None = None) -> Any:
        return msg.with_auth(keyrings[signer].sign(msg.body(), to))

    req = seal(Request(4, 1, b"operation"), 4)
    b1 = Block(1, 1, GENESIS.hash, GENESIS_QC, 1_000, (req,), 1)
    votes = tuple(seal(Vote(1, b1.hash, r), r) for r in (0, 1, 2))
    qc = QC(1, b1.hash, votes)
    b2 = Block(2, 2, b1.hash, qc, 2_000, (), 2)
    proposal = seal(Proposal(b2, (), 2), 2)
    vote = seal(Vote(2, b2.hash, 3), 3)
    nvs = tuple(seal(NewView(4, qc, vote if r == 3 else None, r == 2, r), r) for r in (1, 2))
    exit_vote = seal(Vote(3, bytes(range(32)), 3), 3)  # a vote of view 3 proves 3 left it
    b4 = Block(4, 3, b2.hash, qc, 4_000, (req,), 0)
    tc_proposal = seal(Proposal(b4, (*nvs, exit_vote), 0), 0)
    reply = seal(Reply(1, 1, 4, 2, req.digest()), 2, 4)
    sreq = seal(SyncRequest(b2.hash, 0, 8, 3), 3)
    sreq_high = seal(SyncRequest(b"", 0, 8, 3), 3)
    sresp = seal(SyncResponse(None, (b2, b1), 1), 1)
    sresp_qc = seal(SyncResponse(qc, (b1,), 1), 1)
    carrying = seal(NewView(4, qc, vote, True, 3), 3)
    return [req, proposal, vote, carrying, tc_proposal, reply, sreq, sreq_high, sresp, sresp_qc]


def message_sizes(n: int, batch: int, view: int = 9, ts: int = 1_000) -> dict[str, int]:
    """Encoded bytes of one message of each kind in a fault-free :func:`measure` run.

    Prototypes with the run's shapes: modeled authentication (16-byte tags), requests
    ``op-<client>`` of clients below 128 (timestamp 1), replies carrying the request digest,
    views, heights and replica ids below 128 (MessagePack fixints) and a block time in
    256..65535 µs (a 3-byte integer). ``proposal-<k>`` is a proposal carrying ``k`` requests and
    a QC of ``strong_quorum(n)`` votes; ``proposal-genesis-<k>`` one justified by the genesis QC
    (the first block of a run, no votes).
    """
    from medbench.consensus.hotstuff import GENESIS, GENESIS_QC, QC, Block, Proposal, Reply
    from medbench.consensus.hotstuff import Request as Req
    from medbench.quorum import strong_quorum

    keys = make_keyrings("modeled", n, range(n + batch + 1), seed=b"sizes")

    def seal(msg: Any, signer: int, to: int | None = None) -> Any:
        return msg.with_auth(keys[signer].sign(msg.body(), to))

    reqs = tuple(seal(Req(c, 1, b"op-%04d" % c), c) for c in range(n, n + batch))
    h = bytes(range(32))
    q = strong_quorum(n)
    qc = QC(view - 1, h, tuple(seal(Vote(view - 1, h, r), r) for r in range(q)))
    sizes = {
        "request": len(reqs[0].encode()),
        "reply": len(seal(Reply(view, 1, n, n - 1, reqs[0].digest()), n - 1, n).encode()),
        "vote": len(seal(Vote(view, h, n - 1), n - 1).encode()),
    }
    for k in sorted({0, batch}):
        block = Block(view, view, h, qc, ts, reqs[:k], view % n)
        sizes[f"proposal-{k}"] = len(seal(Proposal(block, (), view % n), view % n).encode())
        first = Block(1, 1, GENESIS.hash, GENESIS_QC, ts, reqs[:k], 1)
        sizes[f"proposal-genesis-{k}"] = len(seal(Proposal(first, (), 1), 1).encode())
    return sizes


def expected_bytes(n: int, clients: int, batch: int) -> dict[str, int]:
    """Bytes by kind of a :func:`measure` run: :func:`expected_messages` times the sizes.

    The first block is justified by the genesis QC (no votes); the other ``m - 1`` request
    blocks carry ``batch`` requests and a QC of ``strong_quorum(n)`` votes, the three flush
    blocks no request. So proposals cost ``(n - 1) * [s(genesis, b) + (m - 1) s(qc, b) +
    3 s(qc, 0)]`` bytes; votes ``(m + 3)(n - 1) s_vote``; requests and replies ``n * clients``
    times theirs. (``clients`` is a multiple of ``batch``.)
    """
    assert clients % batch == 0
    m = clients // batch
    s = message_sizes(n, batch)
    counts = expected_messages(n, clients, batch)
    proposal = (n - 1) * (
        s[f"proposal-genesis-{batch}"] + (m - 1) * s[f"proposal-{batch}"] + 3 * s["proposal-0"]
    )
    return {
        "request": counts["request"] * s["request"],
        "proposal": proposal,
        "vote": counts["vote"] * s["vote"],
        "reply": counts["reply"] * s["reply"],
    }
