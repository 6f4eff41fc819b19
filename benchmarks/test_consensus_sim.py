"""Simulated messages per wall-clock second at n = 64: PBFT, chained HotStuff and Raft, one run.

Each case builds its protocol's deployment of :mod:`medbench.experiments` (modeled
authentication, the default cost profile, the complete topology) and runs it to completion;
``extra_info["messages_per_second"]`` is delivered messages / wall seconds of the simulation
(building excluded), the median of three rounds (``messages_per_second_best`` the best); two of
the rounds run the three protocols in turn (a module fixture), so that load drifting on a shared
machine reaches the three alike, and the median keeps one quiet moment from deciding a ratio.
The workloads are each protocol's steady state at n = 64:

* PBFT: batch 1, 16 closed-loop clients, 40 requests (as ``test_pbft_sim.py``): per decision
  ``(n-1) + (n-1)^2 + n(n-1) = 8,064`` PRE-PREPARE, PREPARE and COMMIT messages;
* HotStuff: batches of up to 16, 64 closed-loop clients, 512 requests: per block
  ``2(n - 1) = 126`` PROPOSAL and VOTE messages, per request ``n`` REQUESTs and ``n`` REPLYs;
* Raft: 64 closed-loop clients, 1,024 requests: per entry ``2(n - 1) = 126`` APPEND-ENTRIES and
  responses (the election and the no-op before the workload are in the run too).

After the timed run, each case checks its protocol's exact count per decision against the
formula (``msgs_per_decision`` beside ``msgs_per_decision_formula``; the gate compares them with
``benchmarks/floors.json``). The gate's ratios are HotStuff / PBFT and Raft / PBFT messages per
second, measured in the same run on the same machine (issue 16 item 6: at least 100,000
messages per second for HotStuff and Raft at n = 64 on a 2-core machine; ``goal_met`` says
whether this case met it).

Run: ``PYTHONPATH=. python -m pytest -q benchmarks/test_consensus_sim.py --benchmark-only``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from medbench import experiments

N = 64
GOAL = 100_000
"""Simulated messages per wall-clock second HotStuff and Raft should reach at n = 64."""

PARAMS: dict[str, dict[str, Any]] = {
    "pbft": {"requests": 40, "clients": 16, "batch": 1, "payload_bytes": 64},
    "hotstuff": {"requests": 512, "clients": 64, "batch": 16, "payload_bytes": 64},
    "raft": {"requests": 1024, "clients": 64, "batch": 16, "payload_bytes": 64},
}
ROUNDS = 3


def params(protocol: str) -> dict[str, Any]:
    """The case's simulator parameters."""
    return {
        "protocol": protocol,
        "n": N,
        "rate_tps": 0,  # every request at once: each client works through its queue
        **({"auth": "modeled"} if protocol != "raft" else {}),
        "tick_us": 10_000,
        "duration_ms": 600_000,
        **PARAMS[protocol],
    }


def formula(protocol: str) -> int:
    """Protocol messages of one fault-free decision at n = 64 (see the module docstring)."""
    if protocol == "pbft":
        return (N - 1) + (N - 1) ** 2 + N * (N - 1)
    return 2 * (N - 1)


def per_decision(protocol: str, sim: Any, record: Any) -> tuple[int, float]:
    """Decisions (at replica 1, a backup in every protocol's first view or term) and the
    protocol's messages per decision, from the settled run."""
    sent = record.sent_msgs
    if protocol == "pbft":
        decisions = len(record.commits.get(0, []))
        voted = sum(sent.get(k, 0) for k in ("pre-prepare", "prepare", "commit"))
        return decisions, voted / max(1, decisions)
    if protocol == "hotstuff":
        # every block (committed or the empty tail that committed the last ones) costs 2(n-1)
        blocks = len(sim.nodes[1].replica.tree.ledger) - 1 + 3
        voted = sum(sent.get(k, 0) for k in ("proposal", "vote"))
        return blocks, voted / max(1, blocks)
    # Raft: one AppendEntries round per entry (requests and the leader's no-op), and the
    # heartbeats of the idle time before the workload
    entries = sim.nodes[1].replica.log.last_index
    voted = sum(sent.get(k, 0) for k in ("append-entries", "append-entries-response"))
    return entries, voted / max(1, entries)


def simulate(protocol: str) -> dict[str, Any]:
    """Build and run one deployment: the timed figures, then the settled counts."""
    t0 = time.perf_counter()
    sim, _dep = experiments.build_simulator(params(protocol), seed=1)
    t1 = time.perf_counter()
    record = sim.run(600_000_000, stop_when_complete=True)
    t2 = time.perf_counter()
    delivered, completed = record.delivered, len(record.completed)
    settled = sim.run(sim.now + 100_000)  # the last votes and acknowledgements arrive
    decisions, per = per_decision(protocol, sim, settled)
    return {
        "delivered": delivered,
        "completed": completed,
        "decisions": decisions,
        "msgs_per_decision": per,
        "build_s": t1 - t0,
        "run_s": t2 - t1,
        "rate": delivered / (t2 - t1),
    }


@pytest.fixture(scope="module")
def interleaved() -> dict[str, list[float]]:
    """Rates of ``ROUNDS - 1`` rounds of the three protocols, one after the other in turn, so
    that a change in the machine's load reaches all three alike (the ratios compare them)."""
    rates: dict[str, list[float]] = {p: [] for p in PARAMS}
    for _ in range(ROUNDS - 1):
        for p in PARAMS:
            rates[p].append(simulate(p)["rate"])
    return rates


@pytest.mark.parametrize("protocol", ["pbft", "hotstuff", "raft"])
def test_consensus_sim_messages_per_second(
    benchmark: Any, protocol: str, interleaved: dict[str, list[float]]
) -> None:
    """Messages per second at n = 64 (median of three rounds, two of them interleaved with the
    other protocols' rounds) and the exact count per decision."""
    rates = interleaved[protocol]

    def once() -> dict[str, Any]:
        out = simulate(protocol)
        rates.append(out["rate"])
        return out

    out = benchmark.pedantic(once, rounds=1, iterations=1)
    assert out["completed"] == PARAMS[protocol]["requests"]
    info = benchmark.extra_info
    info["n"] = N
    info["requests"] = PARAMS[protocol]["requests"]
    info["decisions"] = out["decisions"]
    info["delivered"] = out["delivered"]
    info["msgs_per_decision_formula"] = formula(protocol)
    info["messages_per_second"] = round(statistics.median(rates))
    info["messages_per_second_best"] = round(max(rates))
    info["build_s"] = round(out["build_s"], 3)
    info["run_s"] = round(out["run_s"], 3)
    info["goal_met"] = protocol == "pbft" or statistics.median(rates) >= GOAL
    if protocol == "raft":
        # the heartbeats before the workload add whole rounds: at least the formula, exact
        # per request-carrying entry (tests/raftsim checks the exact window)
        info["msgs_per_decision"] = round(out["msgs_per_decision"], 3)
        assert out["msgs_per_decision"] >= formula(protocol)
    else:
        info["msgs_per_decision"] = int(out["msgs_per_decision"])
        assert out["msgs_per_decision"] == formula(protocol), (out, formula(protocol))
