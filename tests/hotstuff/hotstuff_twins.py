"""Twins (Bano et al., "Twins: BFT Systems Made Robust", 2020) for the chained HotStuff replica.

Twins was designed for the HotStuff family (its first target was DiemBFT): a Byzantine replica
is modelled as two *honest* copies sharing one identity and one key. Whatever one copy says the
other may contradict, and every message of each copy is authentic, so placing the copies in
different partitions makes each half of the network hear a different, individually honest
replica — equivocating proposals, votes for two blocks in one view, NEW-VIEWs with different
QCs — with no hand-written attack. Copy A of replica ``t`` is node ``t``, copy B node
``TWIN + t``; a message to replica ``t`` reaches every copy in the sender's partition, and
clients reach every copy. (The module is not called ``twins.py``: pytest imports the helper
modules of ``tests/pbft`` and ``tests/hotstuff`` by their bare names, and ``tests/pbft/twins.py``
has that one.)

A scenario is ``(twins, rounds)``: which replicas are twinned and, per round, the leader and the
partition. The replica's leader of view ``v`` is ``v mod n`` (a round-robin pacemaker,
docs/medical-chain.md §4), so a scenario chooses a leader the way the PBFT Twins harness does:
round ``k`` starts in the first view above every copy's current view whose leader is the
round's leader; every replica copy's view timer fires up to that view at the round's start (the
NEW-VIEWs of the views skipped are lost, as asynchrony allows; those of the round's view reach
its leader within the partition, where they form a timeout certificate if a quorum of
identities is there). Within a round the protocol runs on: views change on evidence (votes and
QCs, within a partition) and on short view timers (``ROUND_TIMEOUT_US``, back-off capped), so a
side that lacks a leader or a quorum moves on and later leaders of the rotation get their turn
in the same partition — each side of a round sees several views. (With timers kept long, views
changed only at round starts, two rounds held too few consecutive views for a three-chain on
either side, and with two twins the checks found no violation in a sample of 49 scenarios.)
Each round lasts ``ROUND_US``; clients submit one request per round and retransmit to
everyone. After the last round the partitions heal — both copies of each twin stay up and
connected: a Byzantine replica that keeps equivocating — timers go back to normal, and the run
is judged (typed verdicts of ``tests/pbft/verdicts.py``):

* safety (after every round and at the end): no honest replica votes for two blocks in one view;
  no two honest replicas commit different blocks at one height; committed chains have no gaps
  (with the former: every honest ledger is a prefix of the longest), equal state digests at
  equal heights (``hotstuff_harness.safety_violations``);
* liveness: every client request completes once healed;
* agreement: after a little more traffic the honest replicas reach one height and one state
  digest, and each executed every submitted request exactly once.

The enumeration (:func:`scenarios`), systematic within a bound at n = 4: partitions per round —
"everyone connected", or two groups with the copies of each twin apart and every honest replica
on either side (with one twin 2^3 placements, so 9); leaders — any of the 4 replicas per round;
twinned replica — each of the 4; ``ROUNDS = 2``. That is 4 x (9 x 4)^2 = 5,184 scenarios
(:func:`count`). ``make test`` runs a fixed stride; ``make soak`` all of them.

Non-vacuity (``beyond_f``): with f + 1 = 2 twinned replicas the honest ones are a minority, both
sides of a partition can hold a quorum of identities, and the same checks must find conflicting
commits in some scenarios (``test_hotstuff_twins.py`` reports the fraction).
"""

from __future__ import annotations

import heapq
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

from hotstuff_harness import Network, executed_ops, safety_violations

from medbench.consensus.hotstuff import Replica
from medbench.consensus.hotstuff.messages import Timeout
from medbench.node import Ready

_PBFT_TESTS = str(Path(__file__).resolve().parent.parent / "pbft")
if _PBFT_TESTS not in sys.path:
    sys.path.append(_PBFT_TESTS)  # appended: the typed verdicts, without shadowing our modules

from verdicts import (  # noqa: E402
    AgreementViolation,
    LivenessViolation,
    SafetyViolation,
    VerdictFailure,
    raise_if,
)

TWIN = 1000
ROUNDS = 2
ROUND_US = 120_000
ROUND_TIMEOUT_US = (20_000, 40_000)  # (base, cap) during the rounds: views keep turning
TIMEOUT_US = 40_000
MAX_TIMEOUT_US = 1_000_000
Partition = dict[int, int] | None  # copy -> group (0 or 1); None: everyone connected


class TwinsNetwork(Network):
    """The HotStuff harness network with twin copies (see the module docstring)."""

    def __init__(self, n: int, twins: tuple[int, ...], **kw: Any) -> None:
        super().__init__(n=n, **kw)
        self.twins = twins
        for t in twins:
            # same identity, same key: an honest copy that contradicts the other
            self.nodes[TWIN + t] = Replica(t, self.config, self.keyrings[t], memo=self.memo)
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

    def replica_copies(self) -> list[int]:
        """Every node that runs a replica (twin copies included), in id order."""
        return [c for c in sorted(self.nodes) if self.identity(c) < self.n]

    def connected(self, a: int, b: int) -> bool:
        """Whether copies ``a`` and ``b`` are in the same partition (clients reach everyone)."""
        p = self.partition
        if p is None or a not in p or b not in p:
            return True
        return p[a] == p[b]

    def _apply(self, src: int, ready: Ready) -> None:
        # the base records persists, commits and votes, and sends nothing (a black hole for a
        # moment); the copies' messages are routed here under the identity they speak as
        saved, self.black_holes = self.black_holes, self.black_holes | {src}
        try:
            super()._apply(src, ready)
        finally:
            self.black_holes = saved
        if src in self.black_holes or src in self.crashed:
            return
        ident = self.identity(src)
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
        """Fire the view timer of every replica copy below ``view`` up to it: each enters
        ``view`` and sends its NEW-VIEW (with its uncovered vote) to the view's leader."""
        for copy in self.replica_copies():
            r = self.nodes[copy]
            if r.view < view:
                r.pacemaker.view = view - 1  # the NEW-VIEWs of the views skipped are lost
                r._ready = Ready()
                r.handle_timeout(r.node_id, Timeout("view"))
                self._apply(copy, r._ready)

    def set_timeouts(self, base_us: int, max_us: int) -> None:
        """Every replica copy's view timeout (the pacemakers keep their own copies)."""
        for copy in self.replica_copies():
            pm = self.nodes[copy].pacemaker
            pm.base_timeout_us, pm.max_timeout_us = base_us, max_us
            pm.backoff = 0
            # timers armed under the old timeout fire as if armed under the new one
            if pm.deadline is not None:
                pm.deadline = min(pm.deadline, self.now + base_us)


@dataclass(frozen=True)
class Scenario:
    """Which replicas are twinned and, per round, (leader, partition index)."""

    n: int
    twins: tuple[int, ...]
    rounds: tuple[tuple[int, int], ...]

    def __str__(self) -> str:
        return f"hotstuff twins n={self.n} {self.twins} rounds={self.rounds}"


def twin_sets(n: int, beyond_f: bool = False) -> list[tuple[int, ...]]:
    """Which replicas are twinned: each one alone, or (``beyond_f``, the non-vacuity check)
    f + 1 = 2 of them, the pairs {0, 1} and {0, 2} (every pair up to a rotation of the ids)."""
    if n != 4:
        raise ValueError(f"HotStuff Twins are enumerated at n = 4, not {n}")
    if beyond_f:
        return [(0, 1), (0, 2)]
    return [(t,) for t in range(n)]


def partitions(n: int, twins: tuple[int, ...]) -> list[Partition]:
    """Everyone connected, then every two-group placement with each twin's copies apart."""
    honest = [r for r in range(n) if r not in twins]
    out: list[Partition] = [None]
    for orient in product((0, 1), repeat=len(twins) - 1):
        base = {twins[0]: 0, TWIN + twins[0]: 1}
        for t, o in zip(twins[1:], orient, strict=True):
            base[t], base[TWIN + t] = o, 1 - o
        for side in product((0, 1), repeat=len(honest)):
            p = dict(base)
            p.update(zip(honest, side, strict=True))
            out.append(p)
    return out


def count(n: int = 4, rounds: int = ROUNDS, beyond_f: bool = False) -> int:
    """How many scenarios the bound holds."""
    return sum((len(partitions(n, t)) * n) ** rounds for t in twin_sets(n, beyond_f))


def scenarios(n: int = 4, rounds: int = ROUNDS, beyond_f: bool = False) -> Iterator[Scenario]:
    """Every scenario of the bound, in a fixed order."""
    for twins in twin_sets(n, beyond_f):
        per_round = list(product(range(n), range(len(partitions(n, twins)))))
        for combo in product(per_round, repeat=rounds):
            yield Scenario(n, twins, tuple(combo))


def scenario_at(index: int, n: int = 4, rounds: int = ROUNDS) -> Scenario:
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


def subset(stride: int, offset: int = 0, beyond_f: bool = False, n: int = 4) -> list[Scenario]:
    """Every ``stride``-th scenario from ``offset``: a deterministic sample of the bound."""
    every = scenarios(n, beyond_f=beyond_f)
    return [s for i, s in enumerate(every) if i % stride == offset % stride]


def _check_safety(net: TwinsNetwork, honest: list[int], context: str) -> None:
    raise_if(safety_violations(net, honest), SafetyViolation, context)


def run_scenario(sc: Scenario, seed: int = 1) -> TwinsNetwork:
    """Play the rounds of ``sc``, heal, and judge the run (raises a verdict on a violation)."""
    n = sc.n
    net = TwinsNetwork(
        n, sc.twins, clients=2, seed=seed, tick_us=5_000, latency_us=(200, 3_000),
        max_batch_size=2, max_batch_delay_us=0, view_timeout_us=TIMEOUT_US,
        max_view_timeout_us=MAX_TIMEOUT_US, sync_timeout_us=30_000, client_timeout_us=80_000,
    )  # fmt: skip
    net.set_timeouts(*ROUND_TIMEOUT_US)
    honest = [r for r in range(n) if r not in sc.twins]
    ops: Counter[tuple[int, bytes]] = Counter()

    def submit(c: int, op: bytes) -> None:
        ops[(c, op)] += 1
        net.submit(c, op)

    parts = partitions(n, sc.twins)
    for k, (leader, p) in enumerate(sc.rounds):
        view = max(net.nodes[c].view for c in net.replica_copies()) + 1
        while view % n != leader:
            view += 1
        net.partition = parts[p]
        net.force_view(view)
        for c in net.client_ids:
            submit(c, b"%s r%d c%d" % (str(sc).encode(), k, c))
        net.run(ROUND_US)
        _check_safety(net, honest, f"{sc}: in round {k}")
    net.partition = None
    net.set_timeouts(TIMEOUT_US, MAX_TIMEOUT_US)
    done = net.run_until_idle(limit_us=20_000_000, step_us=20_000)
    _check_safety(net, honest, f"{sc}: healed")
    rs = net.replicas(honest)
    if not done:
        raise LivenessViolation(
            f"{sc}: {len(net.completed)}/{net.submitted} requests completed once healed; views "
            f"{[r.view for r in rs]} heights {[r.tree.height for r in rs]}"
        )
    for turn in range(12):  # a little more traffic: every honest replica reaches the same tip
        net.run(200_000)
        if len({(r.tree.height, r.state_digest) for r in rs}) == 1:
            break
        c = net.client_ids[turn % len(net.client_ids)]
        submit(c, b"%s more%d" % (str(sc).encode(), turn))
        net.run_until_idle(limit_us=10_000_000, step_us=20_000)
    _check_safety(net, honest, f"{sc}: at the end")
    problems = []
    if len({(r.tree.height, r.state_digest) for r in rs}) != 1:
        problems.append(f"heights {[r.tree.height for r in rs]} or state digests differ")
    if len(net.completed) != net.submitted:
        problems.append(f"{len(net.completed)}/{net.submitted} requests completed")
    for r in rs:
        if Counter(executed_ops(r)) != ops:
            problems.append(f"replica {r.node_id} did not execute each request exactly once")
    raise_if(problems, AgreementViolation, str(sc))
    return net


def verdict_of(sc: Scenario) -> str | None:
    """The kind of verdict ``sc`` ends in (``None``: the run is correct)."""
    try:
        run_scenario(sc)
    except VerdictFailure as exc:
        return exc.kind
    return None
