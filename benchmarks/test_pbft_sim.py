"""Simulated PBFT messages per wall-clock second (modeled crypto, default cost profile).

Each case builds the ``pbft`` deployment of :mod:`medbench.experiments` (batch size 1, 16
closed-loop clients, so every request is one decision of about 3n^2 messages) and runs it to
completion; ``extra_info["messages_per_second"]`` is delivered messages / wall seconds of the
simulation (building the deployment excluded, reported as ``build_s``). The goal is at least
110,000 messages per second at n = 64 and n = 100 (the JavaScript BFT-Simulator's PBFT runs about
54,000: n = 64, 100 decisions of ~13,500 messages in 25.2 s).

Run: ``PYTHONPATH=. python -m pytest -q benchmarks/test_pbft_sim.py`` (small cases, < 60 s) and
``-m full`` for n = 64 and n = 100 with 1,000 requests each (several minutes).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from medbench import experiments

GOAL = 110_000


def params(n: int, requests: int) -> dict[str, Any]:
    """Batch-1 PBFT with modeled authentication."""
    return {
        "protocol": "pbft",
        "n": n,
        "requests": requests,
        "clients": 16,
        "batch": 1,
        "auth": "modeled",
        "tick_us": 10_000,
        "duration_ms": 600_000,
    }


def simulate(n: int, requests: int) -> dict[str, Any]:
    """Build and run one deployment; the figures of the run."""
    t0 = time.perf_counter()
    sim, _dep = experiments.build_simulator(params(n, requests), seed=1)
    t1 = time.perf_counter()
    record = sim.run(600_000_000, stop_when_complete=True)
    t2 = time.perf_counter()
    return {
        "delivered": record.delivered,
        "completed": len(record.completed),
        "build_s": t1 - t0,
        "run_s": t2 - t1,
    }


def report(benchmark: Any, n: int, requests: int, rounds: int) -> None:
    """Benchmark one size and record messages per second in ``extra_info``."""
    out = benchmark.pedantic(simulate, args=(n, requests), rounds=rounds, iterations=1)
    assert out["completed"] == requests
    rate = out["delivered"] / out["run_s"]
    benchmark.extra_info["n"] = n
    benchmark.extra_info["requests"] = requests
    benchmark.extra_info["delivered"] = out["delivered"]
    benchmark.extra_info["msgs_per_request"] = round(out["delivered"] / requests, 1)
    benchmark.extra_info["messages_per_second"] = round(rate)
    benchmark.extra_info["build_s"] = round(out["build_s"], 3)
    benchmark.extra_info["run_s"] = round(out["run_s"], 3)
    benchmark.extra_info["goal_met"] = rate >= GOAL


@pytest.mark.parametrize(("n", "requests"), [(4, 2000), (16, 300), (64, 40)])
def test_pbft_sim_messages_per_second(benchmark: Any, n: int, requests: int) -> None:
    """Small cases (a few seconds each)."""
    report(benchmark, n, requests, rounds=2)


@pytest.mark.full
@pytest.mark.parametrize("n", [64, 100])
def test_pbft_sim_thousand_requests(benchmark: Any, n: int) -> None:
    """The goal's cases: 1,000 requests at n = 64 and n = 100, one round."""
    report(benchmark, n, 1000, rounds=1)
