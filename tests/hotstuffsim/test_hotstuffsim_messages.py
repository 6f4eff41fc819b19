"""Faithfulness: fault-free simulated HotStuff sends exactly the messages and bytes of the formula.

The formulas are the ones the HotStuff unit tests check against their in-process network
(``hotstuff_harness.expected_messages`` / ``expected_bytes``): ``clients`` requests submitted at
once, ``batch`` per block, ``m = ceil(clients / batch)`` blocks in consecutive views plus three
empty blocks that grow the three-chain committing the last one; per block (n - 1) PROPOSALs and
(n - 1) VOTEs — the 2(n - 1) per decision of the steady state —, per request n REQUESTs (the
client broadcasts) and n REPLYs. Here they are checked through the simulator and the
``hotstuff`` protocol factory (its adapter, cost model and network), not the unit harness.
"""

from __future__ import annotations

import pytest
from hotstuff_harness import expected_bytes, expected_messages

from medbench import experiments, metrics


def run_fault_free(n: int, clients: int, batch: int) -> metrics.RunRecord:
    """Every client submits one request at 10 ms (7-byte operations, as the harness's
    ``op-<client>``); blocks leave only when full; run to completion, then 100 ms more (the votes
    on the last block reach the next leader; no view timer fires in that time)."""
    params = {
        "protocol": "hotstuff",
        "n": n,
        "clients": clients,
        "requests": clients,
        "batch": batch,
        "batch_delay_us": 60_000_000,
        "tick_us": 10_000,
        "start_us": 10_000,
        "rate_tps": 0,
        "payload_bytes": 7,
    }
    sim, _dep = experiments.build_simulator(params, seed=n * 1000 + clients)
    record = sim.run(60_000_000, stop_when_complete=True)
    assert len(record.completed) == clients
    return sim.run(sim.now + 100_000)


@pytest.mark.parametrize(
    ("n", "clients", "batch"), [(4, 8, 1), (4, 8, 4), (7, 10, 5), (7, 6, 1), (16, 16, 4)]
)
def test_messages_and_bytes_match_the_formula(n: int, clients: int, batch: int) -> None:
    record = run_fault_free(n, clients, batch)
    sent = {str(kind): count for kind, count in record.sent_msgs.items() if count}
    assert sent == expected_messages(n, clients, batch)
    sent_bytes = {str(kind): b for kind, b in record.sent_bytes.items() if b}
    assert sent_bytes == expected_bytes(n, clients, batch)
    row = metrics.summarize(record)
    assert row["safety"] and row["liveness"] and row["completed"] == clients
    # the steady state: 2(n - 1) protocol messages per block decision
    blocks = clients // batch + 3
    assert sent["proposal"] + sent["vote"] == blocks * 2 * (n - 1)


def test_messages_per_decision_closed_form() -> None:
    """Per request: 2n (request broadcast, replies) + 2(n - 1)(m + 3) / clients."""
    n, clients, batch = 7, 10, 5
    record = run_fault_free(n, clients, batch)
    m = clients // batch
    closed = 2 * n + 2 * (n - 1) * (m + 3) / clients
    assert sum(record.sent_msgs.values()) / len(record.completed) == pytest.approx(closed)
