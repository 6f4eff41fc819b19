"""Faithfulness: fault-free simulated Raft sends exactly the messages and bytes of the formula.

The formula is the one the Raft unit tests check against their in-process network
(``raft_harness.expected_messages`` / ``expected_bytes``): with a known leader, per request one
REQUEST (client to leader), (n - 1) APPEND-ENTRIES, (n - 1) responses and one REPLY — the 2(n - 1)
per entry of §5.3. Here it is checked through the simulator and the ``raft`` protocol factory:
the election and the leader's no-op happen first, then, right after a heartbeat round was
answered, every client (pointed at the leader, as the harness does) submits its requests; the
window lasts less than a heartbeat interval, so it holds only the requests' messages.
"""

from __future__ import annotations

import pytest
from raft_harness import expected_bytes, expected_messages

from medbench import experiments
from medbench.consensus.raft import Role, Submit


def window(n: int, clients: int, rounds: int) -> tuple[dict[str, int], dict[str, int], int]:
    """Messages and bytes by kind sent while ``clients`` x ``rounds`` requests complete, and the
    leader's term."""
    params = {
        "protocol": "raft",
        "n": n,
        "clients": clients,
        "requests": 0,
        "heartbeat_interval_us": 200_000,
        "election_timeout_us": 600_000,
    }
    sim, _dep = experiments.build_simulator(params, seed=n)
    while True:
        sim.run(sim.now + 1_000)
        leaders = [r for r in range(n) if sim.nodes[r].replica.role is Role.LEADER]
        if not leaders:
            continue
        lead = sim.nodes[leaders[0]].replica
        settled = all(sim.nodes[r].replica.commit_index >= 1 for r in range(n))
        if settled and lead.now > 0 and all(lead.last_sent[f] == lead.now for f in lead.others):
            break  # the leader just sent a heartbeat round
    sim.run(sim.now + 10_000)  # ... and it was answered
    for c in range(n, n + clients):
        sim.nodes[c].replica.leader = leaders[0]
    msgs0, bytes0 = dict(sim.record.sent_msgs), dict(sim.record.sent_bytes)
    for r in range(rounds):
        for c in range(n, n + clients):
            sim.submit(sim.now + 1, c, Submit(bytes(7)), (c, r + 1))
    start = sim.now
    record = sim.run(sim.now + 10_000_000, stop_when_complete=True)
    assert len(record.completed) == clients * rounds
    assert sim.now - start < 200_000  # shorter than a heartbeat interval
    msgs = {str(k): v - msgs0.get(k, 0) for k, v in record.sent_msgs.items()}
    sent_bytes = {str(k): v - bytes0.get(k, 0) for k, v in record.sent_bytes.items()}
    return (
        {k: v for k, v in msgs.items() if v},
        {k: v for k, v in sent_bytes.items() if v},
        sim.nodes[leaders[0]].replica.term,
    )


@pytest.mark.parametrize(("n", "clients", "rounds"), [(3, 2, 3), (4, 3, 2), (7, 4, 3), (16, 4, 2)])
def test_messages_and_bytes_match_the_formula(n: int, clients: int, rounds: int) -> None:
    msgs, sent_bytes, term = window(n, clients, rounds)
    requests = clients * rounds
    assert msgs == expected_messages(n, requests)
    assert sent_bytes == expected_bytes(n, requests, term)
    # 2(n - 1) per entry, plus the client's request and the leader's reply
    assert sum(msgs.values()) == requests * (2 * (n - 1) + 2)
