"""Twins (Bano et al., "Twins: BFT Systems Made Robust", 2022) for the PBFT replica.

A Byzantine replica is modelled as two *honest* copies sharing one identity and one key (the same
:class:`~medbench.consensus.auth.Keyring`): whatever one copy says the other may contradict, and
every message each copy sends is authentic. The copies are placed in different partitions, so
each half of the network hears a different, individually honest replica — equivocation with no
hand-written attack. Copy A of replica ``t`` is node ``t``, copy B node ``TWIN + t``; a message to
replica ``t`` reaches every copy in the sender's partition; clients reach every copy.

A scenario is ``(twins, rounds)``: which replicas are twinned and, per round, the leader and the
partition. Round ``k`` runs in the first view after round ``k-1``'s whose primary (``v mod n``)
is the round's leader: the harness fires the view-change timer of every replica copy up to that
view at the round's start (the VIEW-CHANGEs of the views skipped are lost, as asynchrony
allows), and timers are long during the rounds, so views change only where the scenario says.
Each round lasts ``ROUND_US``; clients submit one request per round and retransmit to everyone.
After the last round the partitions heal (both copies of each twin stay up and connected: a
Byzantine replica that keeps equivocating), timers go back to normal, and the run is judged by
:func:`schedules.check_healed`: safety (the votes of the honest replicas, what they commit and
execute), liveness (every request completes), convergence at a common stable checkpoint and
exactly-once execution.

The enumeration (:func:`scenarios`), systematic within a bound:

* partitions per round: "everyone connected", or two groups with the copies of each twin apart
  and every honest replica on either side — at n = 4 all 2^3 placements (8 + 1 = 9); at n = 7
  (two twins) the second twin's orientation times the 6 contiguous splits of the sorted honest
  replicas (12 + 1 = 13);
* leaders: any of the n replicas per round;
* twinned replicas: each of the 4 at n = 4; at n = 7 the pairs {0, 1}, {0, 2}, {0, 3} — every
  pair up to a rotation of the replica ids (the primary rotation ``v mod n`` commutes with it);
* ``ROUNDS = 2`` rounds.

That is 4 x (9 x 4)^2 = 5,184 scenarios at n = 4 and 3 x (13 x 7)^2 = 24,843 at n = 7
(:func:`count`). ``make test`` runs a fixed stride through both; ``make soak`` all of them.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from typing import Any

from pbft_harness import Network
from schedules import Schedule, check_healed, check_safety

from medbench.consensus.pbft import BlockMode, Replica
from medbench.node import Ready

TWIN = 1000
ROUNDS = 2
ROUND_US = 150_000
LONG_TIMEOUT_US = 60_000_000  # no view change of its own accord during the rounds
TIMEOUT_US = 60_000
Partition = dict[int, int] | None  # copy -> group (0 or 1); None: everyone connected


class TwinsNetwork(Network):
    """The harness network with twin copies (see the module docstring)."""

    def __init__(self, n: int, twins: tuple[int, ...], **kw: Any) -> None:
        super().__init__(n=n, **kw)
        self.twins = twins
        for t in twins:
            twin = Replica(t, self.config, self.keyrings[t])  # same identity, same key
            self.nodes[TWIN + t] = twin
            self.committed[TWIN + t] = {}
            self.persisted[TWIN + t] = []
        self.partition: Partition = None

    @staticmethod
    def identity(copy: int) -> int:
        """The replica (or client) id a node speaks as."""
        return copy - TWIN if copy >= TWIN else copy

    def copies(self, ident: int) -> tuple[int, ...]:
        """The nodes that receive what is sent to ``ident``."""
        return (ident, TWIN + ident) if ident in self.twins else (ident,)

    def connected(self, a: int, b: int) -> bool:
        """Whether copies ``a`` and ``b`` are in the same partition (clients reach everyone)."""
        p = self.partition
        if p is None or a not in p or b not in p:
            return True
        return p[a] == p[b]

    def _apply(self, src: int, ready: Ready) -> None:
        ident = self.identity(src)
        if src >= TWIN:  # a twin copy: its votes count under its identity (never an honest one)
            self.completed.extend(ready.completed)
            for note in ready.notes:
                self.notes.append((src, note))
            for send in ready.messages:
                self._record_votes(ident, send)
            self._route(src, ident, ready)
            return
        saved, self.black_holes = self.black_holes, self.black_holes | {src}
        try:
            super()._apply(src, ready)  # records, then sends nothing (a black hole for a moment)
        finally:
            self.black_holes = saved
        if src not in self.black_holes and src not in self.crashed:
            self._route(src, ident, ready)

    def _route(self, src: int, ident: int, ready: Ready) -> None:
        for send in ready.messages:
            kind = str(send.msg.kind)
            for dst in send.dsts:
                if dst == ident:
                    continue
                self.stats.messages[kind] += 1
                for copy in self.copies(dst):
                    if self.connected(src, copy):
                        lo, hi = self.latency_us
                        t = max(self.now + self.rng.randint(lo, hi),
                                self._link_time.get((src, copy), 0))  # fmt: skip
                        self._link_time[(src, copy)] = t
                        self._seq += 1
                        heapq.heappush(self._heap, (t, self._seq, ident, copy, send.msg))

    def force_view(self, view: int) -> None:
        """Fire the view-change timer of every replica copy below ``view`` up to it."""
        for copy in sorted(self.nodes):
            if self.identity(copy) >= self.n:
                continue
            r = self.nodes[copy]
            if r.view < view:
                r._ready = Ready()
                r.start_view_change(view)
                self._apply(copy, r._ready)

    def set_timeouts(self, view_change_us: int) -> None:
        """Every replica copy's view-change timeout (the config is shared and frozen)."""
        cfg = dataclasses.replace(self.config, view_change_timeout_us=view_change_us)
        self.config = cfg
        for copy, node in self.nodes.items():
            if self.identity(copy) < self.n:
                node.config = cfg
                # timers armed under the old timeout fire as if armed under the new one
                if node.vc_deadline is not None:
                    node.vc_deadline = min(node.vc_deadline, self.now + view_change_us)
                node.vc_resend_at = min(node.vc_resend_at, self.now + view_change_us)


@dataclass(frozen=True)
class Scenario:
    """Which replicas are twinned and, per round, (leader, partition index)."""

    n: int
    twins: tuple[int, ...]
    rounds: tuple[tuple[int, int], ...]

    def __str__(self) -> str:
        return f"twins n={self.n} {self.twins} rounds={self.rounds}"


def twin_sets(n: int, beyond_f: bool = False) -> list[tuple[int, ...]]:
    """Which replicas are twinned (see the module docstring); ``beyond_f``: f+1 of them, the
    non-vacuity check (n = 4: the pairs up to rotation)."""
    if beyond_f:
        if n != 4:
            raise ValueError("f+1 twins are enumerated at n = 4")
        return [(0, 1), (0, 2)]
    if n == 4:
        return [(t,) for t in range(4)]
    if n == 7:
        return [(0, 1), (0, 2), (0, 3)]
    raise ValueError(f"Twins are enumerated at n = 4 and n = 7, not {n}")


def partitions(n: int, twins: tuple[int, ...]) -> list[Partition]:
    """Everyone connected, then every two-group placement of the bound (module docstring)."""
    honest = [r for r in range(n) if r not in twins]
    out: list[Partition] = [None]
    for orient in product((0, 1), repeat=len(twins) - 1):
        base = {twins[0]: 0, TWIN + twins[0]: 1}
        for t, o in zip(twins[1:], orient, strict=True):
            base[t], base[TWIN + t] = o, 1 - o
        if n == 4:  # every placement of the honest replicas
            sides: list[tuple[int, ...]] = list(product((0, 1), repeat=len(honest)))
        else:
            sides = [tuple(0 if i < j else 1 for i in range(len(honest)))
                     for j in range(len(honest) + 1)]  # fmt: skip
        for side in sides:
            p = dict(base)
            p.update(zip(honest, side, strict=True))
            out.append(p)
    return out


def count(n: int, rounds: int = ROUNDS, beyond_f: bool = False) -> int:
    """How many scenarios the bound holds at ``n``."""
    return sum((len(partitions(n, t)) * n) ** rounds for t in twin_sets(n, beyond_f))


def scenarios(n: int, rounds: int = ROUNDS, beyond_f: bool = False) -> Iterator[Scenario]:
    """Every scenario of the bound at ``n``, in a fixed order."""
    for twins in twin_sets(n, beyond_f):
        per_round = list(product(range(n), range(len(partitions(n, twins)))))
        for combo in product(per_round, repeat=rounds):
            yield Scenario(n, twins, tuple(combo))


def scenario_at(n: int, index: int, rounds: int = ROUNDS) -> Scenario:
    """The ``index``-th scenario of :func:`scenarios` (mod the count), without listing them."""
    index %= count(n, rounds)
    for twins in twin_sets(n):
        per_round = list(product(range(n), range(len(partitions(n, twins)))))
        size = len(per_round) ** rounds
        if index < size:
            combo = []
            for _ in range(rounds):
                index, digit = divmod(index, len(per_round))
                combo.append(per_round[digit])
            return Scenario(n, twins, tuple(reversed(combo)))
        index -= size
    raise AssertionError("unreachable")


def subset(n: int, stride: int, offset: int = 0, beyond_f: bool = False) -> list[Scenario]:
    """Every ``stride``-th scenario from ``offset``: a deterministic sample of the bound."""
    every = scenarios(n, beyond_f=beyond_f)
    return [s for i, s in enumerate(every) if i % stride == offset % stride]


def run_scenario(sc: Scenario, mode: BlockMode = BlockMode.INTEGRATED) -> Schedule:
    """Play the rounds of ``sc``, heal, and judge the run (raises a verdict on a violation)."""
    n = sc.n
    net = TwinsNetwork(
        n, sc.twins, clients=3, seed=1, tick_us=5_000, latency_us=(200, 3_000),
        checkpoint_interval=4, log_window=8, max_batch_size=2, view_change_timeout_us=TIMEOUT_US,
        fetch_timeout_us=40_000, client_timeout_us=40_000, block_mode=mode, block_size=3,
        block_interval_us=50_000,
    )  # fmt: skip
    net.set_timeouts(LONG_TIMEOUT_US)
    honest = [r for r in range(n) if r not in sc.twins]
    clients = [n, n + 1, n + 2]  # the last: background traffic once healed
    sched = Schedule(None, net, honest, [], clients, None, name=str(sc), background=n + 2)
    parts = partitions(n, sc.twins)
    view = -1
    for k, (leader, p) in enumerate(sc.rounds):
        view += 1
        while view % n != leader:
            view += 1
        net.partition = parts[p]
        if view > 0:
            net.force_view(view)
        for c in clients[:2]:
            sched.submit(c, b"%s r%d c%d" % (str(sc).encode(), k, c))
        net.run(ROUND_US)
        check_safety(sched, f"in round {k}")
    net.partition = None
    net.set_timeouts(TIMEOUT_US)
    return check_healed(sched)
