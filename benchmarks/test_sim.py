"""Driver speed: messages delivered per wall-clock second with a trivial node (no protocol work).

Every node broadcasts one small message to all others on each tick and does nothing on receipt,
so the figure is the simulator's own cost per delivery (heap, routing, CPU queues, trace digest).
Run: ``PYTHONPATH=. python -m pytest -q benchmarks/test_sim.py``; with ``--benchmark-disable``
each case runs once as a smoke test (rates then come from that one round).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from medbench.node import Ready, Send
from medbench.sim import CostProfile, Simulator

_EMPTY = Ready()


class Ping:
    """A 16-byte message."""

    __slots__ = ()
    kind = "ping"

    def encode(self) -> bytes:
        """Fixed bytes."""
        return b"0123456789abcdef"


class Chatter:
    """Broadcasts one :class:`Ping` per tick; ignores what it receives."""

    def __init__(self, node_id: int, n: int) -> None:
        self.node_id = node_id
        self.send = Send(tuple(i for i in range(n) if i != node_id), Ping())

    def step(self, src: int, msg: Any) -> Ready:
        """Nothing to do."""
        return _EMPTY

    def tick(self, now: int) -> Ready:
        """One broadcast."""
        return Ready(messages=[self.send])


def best_round(
    benchmark: Any, run: Callable[[], tuple[int, float]], rounds: int
) -> tuple[int, float]:
    """Deliveries and the best wall seconds of ``rounds`` runs of ``run`` under ``benchmark``.

    ``run`` times itself (the simulation only, not building it), so the rate needs no
    ``benchmark.stats``, which pytest-benchmark leaves unset under ``--benchmark-disable``
    (then ``pedantic`` runs once).
    """
    walls: list[float] = []

    def once() -> int:
        delivered, wall = run()
        walls.append(wall)
        return delivered

    delivered: int = benchmark.pedantic(once, rounds=rounds, iterations=1)
    return delivered, min(walls)


def run_chatter(n: int, ticks: int, profile: CostProfile | None) -> tuple[int, float]:
    """Deliveries and wall seconds of ``ticks`` rounds of all-to-all broadcasts among ``n``."""
    sim = Simulator([Chatter(i, n) for i in range(n)], tick_us=10_000, profile=profile)
    t0 = time.perf_counter()
    record = sim.run(ticks * 10_000 - 1)
    return record.delivered, time.perf_counter() - t0


@pytest.mark.parametrize("n", [4, 16, 64, 100])
@pytest.mark.parametrize("cpu", ["none", "profile"])
def test_driver_messages_per_second(benchmark: Any, n: int, cpu: str) -> None:
    """Messages per wall second of the driver alone."""
    ticks = max(2, 40_000 // (n * (n - 1)))
    profile = CostProfile.default() if cpu == "profile" else None
    delivered, wall = best_round(benchmark, lambda: run_chatter(n, ticks, profile), rounds=3)
    assert delivered == ticks * n * (n - 1)
    rate = delivered / wall
    benchmark.extra_info["messages_per_second"] = round(rate)
    benchmark.extra_info["us_per_delivery"] = round(1e6 / rate, 3)


@pytest.mark.parametrize("n", [4, 16, 64])
def test_toy_quorum_messages_per_second(benchmark: Any, n: int) -> None:
    """Simulated messages per wall second with the toy-quorum protocol and the default profile.

    The toy replica allocates a Ready, counts operations and encodes each Send, so this is the
    driver plus a light protocol, a lower bound of what a leaner replica pays per message.
    """
    from medbench import experiments
    from medbench.experiments import toy

    txs = max(5, 60_000 // toy.messages_per_tx(n))
    params = {
        "protocol": "toy-quorum",
        "n": n,
        "requests": txs,
        "rate_tps": 500.0,
        "payload_bytes": 100,
    }

    def once() -> tuple[int, float]:
        sim, _dep = experiments.build_simulator(params, seed=1)
        t0 = time.perf_counter()
        record = sim.run(10**9, stop_when_complete=True)
        return record.delivered, time.perf_counter() - t0

    delivered, wall = best_round(benchmark, once, rounds=3)
    assert delivered >= txs * (toy.messages_per_tx(n) - n)
    rate = delivered / wall
    benchmark.extra_info["messages_per_second"] = round(rate)
