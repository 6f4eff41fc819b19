"""Twins-style scenarios against Raft: one twinned node breaks it (no Byzantine tolerance).

The HotStuff and PBFT Twins harnesses (``tests/hotstuff/hotstuff_twins.py``, Bano et al., Twins,
2020) model a Byzantine replica as two honest copies of it with one identity, placed in different
partitions. Raft assumes crash faults only: a node that says different things to different peers
is outside its model. Here, at n = 3, node ``t`` has two copies, one in each half of a partition;
each half then holds two of the three identities — a majority — so each half can elect a leader
and commit its own entries, and the honest nodes end with different entries at one index. The
test shows the Raft safety checker (``raft_harness.safety_violations``) flags it in most of the
few scenarios, so its silence in the crash-fault schedules (``test_raft_random.py``) means
something; ``test_raft_byzantine.py`` shows the same with a hand-written lie.
"""

from __future__ import annotations

import heapq
from itertools import product
from typing import Any

from raft_harness import Network, safety_violations

from medbench.consensus.raft import Replica
from medbench.node import Ready

TWIN = 1000


class TwinsNetwork(Network):
    """The Raft harness network with the two copies of node ``twin`` in different partitions."""

    def __init__(self, twin: int, partition: dict[int, int], **kw: Any) -> None:
        super().__init__(**kw)
        self.twin = twin
        self.nodes[TWIN + twin] = Replica(twin, self.config)  # same identity
        self.committed[TWIN + twin] = {}
        self.persisted[TWIN + twin] = []
        self.groups = partition  # copy -> group; clients reach every copy

    def _apply(self, src: int, ready: Ready) -> None:
        # the base records (a crashed node for a moment: it sends nothing); routed here
        was_crashed = src in self.crashed
        self.crashed.add(src)
        try:
            super()._apply(src, ready)
        finally:
            if not was_crashed:
                self.crashed.discard(src)
        if was_crashed:
            return
        ident = src - TWIN if src >= TWIN else src
        for send in ready.messages:
            for dst in send.dsts:
                if dst == ident:
                    continue
                for copy in (dst, TWIN + dst) if dst == self.twin else (dst,):
                    g = self.groups
                    if src in g and copy in g and g[src] != g[copy]:
                        continue
                    lo, hi = self.latency_us
                    t = max(self.now + self.rng.randint(lo, hi),
                            self._link_time.get((src, copy), 0))  # fmt: skip
                    self._link_time[(src, copy)] = t
                    self._seq += 1
                    heapq.heappush(self._heap, (t, self._seq, ident, copy, send.msg))


def scenarios() -> list[tuple[int, dict[int, int]]]:
    """Twin ``t`` in 0..2; its copies apart; the two honest nodes on either side (4 ways)."""
    out = []
    for t in range(3):
        honest = [r for r in range(3) if r != t]
        for side in product((0, 1), repeat=2):
            p = {t: 0, TWIN + t: 1}
            p.update(zip(honest, side, strict=True))
            out.append((t, p))
    return out


def run(t: int, partition: dict[int, int]) -> list[str]:
    """Clients submit while the twins run apart; the safety problems among the honest nodes."""
    net = TwinsNetwork(t, partition, n=3, clients=2, seed=11 + t, latency_us=(500, 2_000))
    for k in range(6):
        for c in net.client_ids:
            net.submit(c, b"op %d-%d" % (c, k))
        net.run(300_000)
    return safety_violations(net, [r for r in range(3) if r != t])


def test_one_twinned_node_breaks_raft() -> None:
    """Non-vacuity: the honest nodes of some scenarios commit different entries at one index."""
    results = [run(t, p) for t, p in scenarios()]
    broken = sum(bool(r) for r in results)
    print(f"raft twins: {broken}/{len(results)} scenarios violate State Machine Safety")
    assert broken >= 1
    assert any("committed different entries" in p for r in results for p in r)
