"""Faithfulness: fault-free simulated PBFT sends exactly the messages the protocol prescribes.

The formula is the one the PBFT unit tests check against their in-process network
(``pbft_harness.expected_messages``): per batch (n-1) PRE-PREPAREs, (n-1)^2 PREPAREs and n(n-1)
COMMITs; per request one REQUEST and n REPLYs; per checkpoint n(n-1) CHECKPOINTs.
"""

from __future__ import annotations

import pytest
from pbft_harness import expected_messages

from medbench import experiments, metrics

K = 4  # checkpoint interval


def run_fault_free(n: int, batch: int, batches: int) -> metrics.RunRecord:
    """``batches`` full batches of ``batch`` requests (one per client and round), then drain."""
    params = {
        "protocol": "pbft",
        "n": n,
        "clients": batch,
        "requests": batch * batches,
        "batch": batch,
        "batch_delay_us": 60_000_000,  # batches leave only when full
        "checkpoint_interval": K,
        "log_window": 4 * K,
        "tick_us": 10_000,
    }
    sim, _dep = experiments.build_simulator(params, seed=n * 1000 + batch)
    record = sim.run(60_000_000, stop_when_complete=True)
    assert len(record.completed) == batch * batches
    # Let the replicas that were not among the first f+1 finish their commits and replies.
    return sim.run(sim.now + 2_000_000)


@pytest.mark.parametrize(
    ("n", "batch", "batches"),
    [(4, 1, 8), (4, 10, 8), (7, 1, 8), (7, 10, 8), (16, 1, 4), (16, 10, 4)],
)
def test_messages_per_request_match_formula(n: int, batch: int, batches: int) -> None:
    """Messages by kind equal the formula exactly, so msgs per request do too."""
    record = run_fault_free(n, batch, batches)
    expected = expected_messages(n, batch, batches, K)
    sent = {kind: count for kind, count in record.sent_msgs.items() if count}
    assert sent == expected
    row = metrics.summarize(record)
    requests = batch * batches
    assert row["completed"] == requests
    for kind, count in expected.items():
        assert row[f"msgs_per_tx.{kind}"] == pytest.approx(count / requests, abs=0)
    assert row["safety"] and row["liveness"]


def test_per_request_formula_closed_form() -> None:
    """The per-request figure is 1 + n + [(n-1) + (n-1)^2 + n(n-1)] / b + n(n-1) / (k b)."""
    n, b, batches = 7, 10, 8
    total = sum(expected_messages(n, b, batches, K).values()) / (b * batches)
    closed = 1 + n + ((n - 1) + (n - 1) ** 2 + n * (n - 1)) / b + n * (n - 1) / (K * b)
    assert total == pytest.approx(closed)
    record = run_fault_free(n, b, batches)
    assert sum(record.sent_msgs.values()) / len(record.completed) == pytest.approx(closed)
