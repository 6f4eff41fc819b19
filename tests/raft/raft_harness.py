"""An in-process, deterministic network for Raft nodes (after ``tests/pbft/pbft_harness.py``).

Messages travel with a seeded random latency over FIFO links; the harness can drop messages at
random, cut links, partition, isolate nodes and add delay per sender, and crash a node (it loses
its memory; its persisted records survive — the harness is its disk — and
:meth:`Network.restart` rebuilds it with :meth:`Replica.recover`). Virtual time advances by
``tick``. It records what every node persisted and committed, every completion, the leaders of
every term, message counts and bytes by kind, and (optionally) a readable trace.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from medbench.consensus.raft import (
    AppliedEntry,
    Client,
    Config,
    Replica,
    Role,
    Submit,
    decode_record,
    encode_record,
)
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

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        return Counter(self.messages), Counter(self.bytes)


class Network:
    """Nodes ``0..n-1`` and clients ``n..n+clients-1`` on a simulated network."""

    def __init__(
        self,
        n: int = 3,
        clients: int = 1,
        seed: int = 0,
        latency_us: tuple[int, int] = (500, 1500),
        tick_us: int = 1_000,
        trace: bool = False,
        client_timeout_us: int = 400_000,
        disk_roundtrip: bool = False,
        **config: Any,
    ) -> None:
        self.n = n
        self.rng = random.Random(seed)
        config.setdefault("seed", b"raft-test-%d" % seed)
        self.config = Config(n=n, **config)
        self.nodes: dict[int, Any] = {i: Replica(i, self.config) for i in range(n)}
        for c in range(n, n + clients):
            self.nodes[c] = Client(c, n, retransmit_timeout_us=client_timeout_us)
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
        self.crashed: set[int] = set()
        self.extra_delay: dict[int, int] = {}
        self.disk_roundtrip = disk_roundtrip
        self.persisted: dict[int, list[Any]] = {i: [] for i in range(n)}
        self.committed: dict[int, dict[int, AppliedEntry]] = {i: {} for i in range(n)}
        self.recommitted: list[str] = []  # a node committed two different entries at one index
        self.leaders: dict[int, set[int]] = {}  # term -> nodes that became its leader
        self.completed: list[Any] = []
        self.notes: list[tuple[int, Any]] = []
        self.stats = Stats()
        self.trace_on = trace
        self.trace: list[str] = []
        self.submitted = 0
        self.delivered = 0
        self.recent: list[Any] = []

    # --- faults -----------------------------------------------------------------------------------

    def cut_link(self, a: int, b: int) -> None:
        """Drop every message between ``a`` and ``b`` (both directions)."""
        self.cut |= {(a, b), (b, a)}

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between nodes of different groups."""
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
        self.extra_delay.clear()

    def crash(self, i: int) -> None:
        """Stop node ``i``: it loses its memory; only its persisted records survive."""
        self.crashed.add(i)

    def restart(self, i: int, records: list[Any] | None = None) -> None:
        """Rebuild crashed node ``i`` from its persisted records (or from ``records``)."""
        self.crashed.discard(i)
        recs = self.persisted[i] if records is None else records
        if self.disk_roundtrip:
            recs = [decode_record(encode_record(r)) for r in recs]
        node, ready = Replica.recover(i, self.config, recs, now=self.now)
        self.nodes[i] = node
        self._apply(i, ready)

    # --- driving ----------------------------------------------------------------------------------

    def submit(self, client: int, op: bytes) -> None:
        """The application of ``client`` submits ``op``."""
        self.submitted += 1
        self._apply(client, self.nodes[client].step(client, Submit(op)))

    def deliver_now(self, src: int, dst: int, msg: Any) -> Ready:
        """Inject ``msg`` from ``src`` into ``dst`` immediately (hostile-input tests)."""
        ready = self.nodes[dst].step(src, msg)
        self._apply(dst, ready)
        return ready

    def _apply(self, src: int, ready: Ready) -> None:
        if src in self.persisted:
            self.persisted[src].extend(ready.persist)
        for c in ready.committed:
            e: AppliedEntry = c.payload
            log = self.committed[src]
            old = log.get(c.sequence)
            if old is not None and (old.term, old.request) != (e.term, e.request):
                self.recommitted.append(f"node {src} committed two entries at index {c.sequence}")
            log[c.sequence] = e
            if self.trace_on:
                self.trace.append(f"{self.now:>9} commit {src} i={c.sequence} t={e.term}")
        self.completed.extend(ready.completed)
        for note in ready.notes:
            self.notes.append((src, note))
            if note.kind == "leader":
                self.leaders.setdefault(note.detail, set()).add(src)
            if self.trace_on and note.kind != "reject":
                self.trace.append(f"{self.now:>9} note {src} {note.kind} {note.detail}")
        if src in self.crashed:
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

    def run_until_leader(self, limit_us: int = 10_000_000) -> int:
        """Run until some live node leads; return it."""
        spent = 0
        while spent < limit_us:
            leaders = [
                i
                for i in range(self.n)
                if i not in self.crashed and self.replicas([i])[0].role is Role.LEADER
            ]
            if leaders:
                return max(leaders, key=lambda i: self.replicas([i])[0].term)
            self.run(self.tick_us)
            spent += self.tick_us
        raise AssertionError("no leader elected")

    # --- verdicts ---------------------------------------------------------------------------------

    def replicas(self, ids: Iterable[int] | None = None) -> list[Replica]:
        """The node objects (unwrapping fault wrappers)."""
        out = []
        for i in range(self.n) if ids is None else ids:
            node = self.nodes[i]
            out.append(getattr(node, "inner", node))
        return out


def safety_violations(net: Network, nodes: Iterable[int]) -> list[str]:
    """Raft's safety properties over ``nodes``: State Machine Safety (no two nodes apply
    different entries at one index; no node applies two), Election Safety (at most one leader
    per term), and equal state digests at equal applied indices."""
    nodes = sorted(nodes)
    problems = [p for p in net.recommitted if int(p.split()[1]) in nodes]
    by_index: dict[int, tuple[int, Any]] = {}
    for i in nodes:
        for idx, e in sorted(net.committed[i].items()):
            first = by_index.setdefault(idx, (i, e))
            other = first[1]
            if (other.term, other.request) != (e.term, e.request):
                problems.append(
                    f"index {idx}: nodes {first[0]} and {i} committed different entries"
                )
            elif other.state_digest != e.state_digest:
                problems.append(f"index {idx}: nodes {first[0]} and {i} differ in state")
    for term, leaders in sorted(net.leaders.items()):
        both = leaders & set(nodes)
        if len(both) > 1:
            problems.append(f"term {term} has {len(both)} leaders: {sorted(both)}")
    return problems


def executed_ops(node: Replica, net: Network) -> list[tuple[int, bytes]]:
    """``(client, operation)`` of every request ``node`` executed, in index order (the harness's
    record of its applied entries; entries installed by a snapshot are not listed)."""
    log = net.committed[node.node_id]
    return [
        (e.request.client, e.request.operation)
        for _, e in sorted(log.items())
        if e.request is not None and e.executed
    ]


# --- message-count figures ----------------------------------------------------------------------


def expected_messages(n: int, requests: int) -> dict[str, int]:
    """Fault-free Raft with a known leader and one entry per AppendEntries round: per request
    one REQUEST (client to leader), (n - 1) APPEND-ENTRIES, (n - 1) responses, one REPLY: the
    2(n - 1) per entry of the paper's normal operation (§5.3), plus the client's two."""
    return {
        "request": requests,
        "append-entries": (n - 1) * requests,
        "append-entries-response": (n - 1) * requests,
        "reply": requests,
    }


def message_sizes(n: int, term: int, index: int) -> dict[str, int]:
    """Encoded bytes of each kind in a :func:`measure` run: requests ``op-<client>`` from
    clients below 128 with small timestamps, AppendEntries carrying one such entry; terms,
    indices and ids below 128 (MessagePack fixints, one byte each) and results the 32-byte
    request digest."""
    from medbench.consensus.raft import (
        AppendEntries,
        AppendEntriesResponse,
        Entry,
        Reply,
        Request,
    )

    req = Request(n, 1, b"op-%04d" % n)
    entry = Entry(term, index, req)
    return {
        "request": len(req.encode()),
        "append-entries": len(AppendEntries(term, 0, index - 1, term, (entry,), index).encode()),
        "append-entries-response": len(AppendEntriesResponse(term, 1, True, index, 0).encode()),
        "reply": len(Reply(n, 1, 0, True, req.digest(), 0).encode()),
        "heartbeat": len(AppendEntries(term, 0, index, term, (), index).encode()),
    }


def measure(
    n: int, clients: int, rounds: int, **kw: Any
) -> tuple[Network, dict[str, int], dict[str, int]]:
    """Elect a leader and commit its no-op, point every client at it, then ``clients`` clients
    send ``rounds`` requests each (closed loop); return the network and the message counts and
    bytes by kind of that window alone."""
    net = Network(n=n, clients=clients, seed=n * 100 + clients, latency_us=(500, 1_500), **kw)
    leader = net.run_until_leader()
    net.run(20_000)
    for c in net.client_ids:
        net.nodes[c].leader = leader
    msgs0, bytes0 = net.stats.snapshot()
    for c in net.client_ids:
        for _ in range(rounds):
            net.submit(c, b"op-%04d" % c)
    assert net.run_until_idle(30_000_000, step_us=1_000)
    msgs1, bytes1 = net.stats.snapshot()
    return net, dict(msgs1 - msgs0), dict(bytes1 - bytes0)


def sample_messages() -> list[Any]:
    """One message of every wire kind (entries, no-ops and a snapshot included)."""
    from medbench.consensus.raft import (
        AppendEntries,
        AppendEntriesResponse,
        Entry,
        InstallSnapshot,
        InstallSnapshotResponse,
        Reply,
        Request,
        RequestVote,
        RequestVoteResponse,
        Snapshot,
    )

    req = Request(5, 1, b"operation")
    entries = (Entry(2, 4, None), Entry(2, 5, req))
    snap = Snapshot(9, 2, bytes(range(32)), 3, ((5, 1, b"r"), (6, 4, b"")))
    return [
        req,
        Reply(5, 1, 0, True, b"result", 0),
        Reply(5, 1, 2, False, b"", -1),
        RequestVote(3, 1, 7, 2),
        RequestVoteResponse(3, 2, True),
        AppendEntries(2, 0, 3, 1, entries, 3),
        AppendEntries(2, 0, 5, 2, (), 5),
        AppendEntriesResponse(2, 1, True, 5, 0),
        AppendEntriesResponse(2, 1, False, 5, 3),
        InstallSnapshot(3, 0, snap),
        InstallSnapshotResponse(3, 1, 9),
    ]


def expected_bytes(n: int, requests: int, term: int = 1) -> dict[str, int]:
    """Bytes by kind of a :func:`measure` window: :func:`expected_messages` times the sizes of
    :func:`message_sizes` (every field a one-byte integer, so every message of a kind has the
    same size)."""
    sizes = message_sizes(n, term, 2)
    return {k: c * sizes[k] for k, c in expected_messages(n, requests).items()}
