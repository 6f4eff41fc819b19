"""The simulator adapter of Raft: client signatures, notes, crashes, and the lie that breaks it."""

from __future__ import annotations

import random
from typing import Any

import pytest

from medbench import experiments, metrics
from medbench.consensus.raft import Role
from medbench.consensus.raft.persist import encode_record
from medbench.experiments.raft import build

BASE: dict[str, Any] = {"protocol": "raft", "n": 5, "requests": 40, "clients": 4}


def run(seed: int = 1, **kw: Any) -> tuple[dict[str, Any], Any, Any]:
    params = {**BASE, **kw}
    sim, dep = experiments.build_simulator(params, seed)
    record = sim.run(60_000_000, stop_when_complete=True)
    return metrics.summarize(record, dep.checkers), sim, dep


def leader_of(sim: Any, n: int) -> int:
    return next(r for r in range(n) if sim.alive(r) and sim.nodes[r].replica.role is Role.LEADER)


def test_fault_free_run_elects_then_serves() -> None:
    assert "raft" in experiments.protocols()
    row, sim, _dep = run()
    assert row["completed"] == 40 and row["safety"] and row["liveness"]
    assert row["notes.view_change"] >= 1 and row["notes.new_view"] == 1  # one election won
    assert row["view_changes"] == 1 and "notes.election" not in row
    assert min(sim.record.submitted.values()) == 600_000  # after 2 x the election timeout


def test_client_signatures_are_charged_as_for_every_system() -> None:
    """A client signs each new request once; each node verifies each request it appends."""
    row, sim, _dep = run(seed=2)
    counts = sim.snapshot().op_counts
    assert sum(counts[c].get("sign", 0) for c in range(5, 9)) == 40
    for r in range(5):
        assert counts[r]["verify"] == 40  # every node stored every request once
        assert sim.nodes[r].stats()["client_sig_verifies"] == 40
    unsigned, sim2, _ = run(seed=2, client_signatures=0)
    assert all("verify" not in c and "sign" not in c for c in sim2.snapshot().op_counts.values())
    assert unsigned["cpu_s_total"] < row["cpu_s_total"]


def test_storage_is_the_log_and_the_executed_requests() -> None:
    _row, sim, _dep = run(seed=3)
    node = sim.nodes[0]
    storage = node.storage_bytes()
    assert storage["blocks"] == 0 and storage["txs"] > 0
    assert storage["log"] == sum(len(encode_record(r)) for r in node._persisted)
    assert node.verify_chain() == (node.replica.last_applied, None)


def test_the_leader_crashes_a_new_one_is_elected_and_the_old_one_rejoins() -> None:
    params = {**BASE, "rate_tps": 200.0, "requests": 80}
    sim, dep = experiments.build_simulator(params, 4)
    sim.run(700_000)
    old = leader_of(sim, 5)
    sim.crash(old)
    sim.run(1_500_000)
    sim.recover(old)
    record = sim.run(60_000_000, stop_when_complete=True)
    row = metrics.summarize(record, dep.checkers)
    assert row["safety"] and row["liveness"] and row["completed"] == 80
    assert row["notes.new_view"] == 2  # the first leader, then its successor
    assert leader_of(sim, 5) != old
    sim.drain(range(5))
    assert sim.nodes[old].replica.last_applied == sim.nodes[leader_of(sim, 5)].replica.last_applied


@pytest.mark.parametrize(("n", "liar"), [(5, "4"), (3, "2")])
def test_a_lying_node_breaks_raft(n: int, liar: str) -> None:
    """Non-vacuous: one well-formed lie (as the leader, or impersonating one) makes two honest
    nodes commit different entries at one index; Raft notices nothing."""
    row, sim, dep = run(n=n, byzantine="lying-leader", byzantine_ids=liar, rate_tps=500.0)
    assert not row["safety"], row
    assert "committed" in row["safety_reason"]
    assert sim.nodes[int(liar)].inner.lies
    assert int(liar) not in dep.replicas


def test_parameters_are_checked() -> None:
    rng = random.Random(0)
    with pytest.raises(experiments.ExperimentError):
        build({**BASE, "byzantine": "equivocating-leader"}, rng)
    with pytest.raises(experiments.ExperimentError):
        build({**BASE, "election_timeout_us": 0}, rng)
    with pytest.raises(experiments.ExperimentError):
        build({**BASE, "n": 0}, rng)
