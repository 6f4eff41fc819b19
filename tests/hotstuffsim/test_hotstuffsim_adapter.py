"""The simulator adapter of HotStuff: costs, storage, notes, faults, Byzantine replicas, blocks."""

from __future__ import annotations

import random
from typing import Any

import pytest

from medbench import experiments, metrics
from medbench.consensus.hotstuff import Block, Proposal
from medbench.consensus.hotstuff.blocks import BlockCommand, Chain
from medbench.consensus.hotstuff.persist import encode_record
from medbench.experiments.hotstuff import SimNode, build, record_size
from medbench.quorum import strong_quorum

BASE: dict[str, Any] = {"protocol": "hotstuff", "n": 4, "requests": 40, "clients": 4}


def run(seed: int = 1, **kw: Any) -> tuple[dict[str, Any], Any, Any]:
    params = {**BASE, **kw}
    sim, dep = experiments.build_simulator(params, seed)
    record = sim.run(int(params.get("duration_ms", 60_000)) * 1000, stop_when_complete=True)
    return metrics.summarize(record, dep.checkers), sim, dep


def test_fault_free_run_is_safe_live_and_registered() -> None:
    assert "hotstuff" in experiments.protocols()
    row, sim, _dep = run()
    assert row["completed"] == 40 and row["safety"] and row["chain"] and row["liveness"]
    heights = {len(sim.nodes[r].replica.executed) for r in range(4)}
    assert len(heights) == 1  # every replica executed the same blocks (the run drained)


def test_costs_charge_every_verification_the_memo_saved() -> None:
    """The shared VerdictMemo saves wall time only: without it the charged operations and
    every deterministic column are the same."""
    with_memo, sim1, _ = run(seed=3)
    params = {**BASE}
    sim2, dep2 = experiments.build_simulator(params, 3)
    for r in range(4):
        rep = sim2.nodes[r].replica
        rep.memo = None
        rep.collector.memo = None
    without = metrics.summarize(sim2.run(60_000_000, stop_when_complete=True), dep2.checkers)
    assert sim1.snapshot().op_counts == sim2.snapshot().op_counts
    assert with_memo["trace_digest"] == without["trace_digest"]
    assert with_memo["cpu_s_total"] == without["cpu_s_total"]


def test_a_replica_is_charged_a_quorum_of_verifications_per_qc() -> None:
    """A backup checks each proposal's signature, its QC's strong_quorum(n) votes (the modeled
    threshold signature) and each new request's client signature once."""
    _row, sim, _dep = run(seed=2, n=7, requests=21, clients=7)
    rep = sim.nodes[3].replica
    counts = sim.snapshot().op_counts[3]
    blocks = [e.block for e in rep.executed if e.block.height > 0]
    qcs = sum(1 for b in blocks if b.justify.view > 0 and b.proposer != 3)
    assert counts["verify"] >= qcs * strong_quorum(7)
    assert counts["sign"] >= len(blocks)  # a vote (at least) per block, replies besides


def test_storage_categories_and_record_sizes() -> None:
    _row, sim, _dep = run(seed=4)
    node: SimNode = sim.nodes[1]
    storage = node.storage_bytes()
    assert set(storage) == {"blocks", "txs", "log"} and all(v > 0 for v in storage.values())
    executed = node.replica.executed
    blocks = sum(
        len(e.block.body()) - sum(len(q.encode()) for q in e.block.batch) + 32 * len(e.block.batch)
        for e in executed
        if e.block.height > 0
    )
    assert storage["blocks"] == blocks
    assert storage["txs"] == sum(len(q.encode()) for e in executed for q in e.requests)
    cache: dict[int, Any] = {}
    assert storage["log"] == sum(len(encode_record(r)) for r in node._persisted)
    assert all(record_size(r, cache) == len(encode_record(r)) for r in node._persisted)


def test_a_silent_leader_costs_view_changes_named_for_the_metrics() -> None:
    row, _sim, _dep = run(byzantine="silent-leader", view_timeout_us=50_000, rate_tps=500.0)
    assert row["safety"] and row["liveness"] and row["completed"] == 40
    assert row["view_changes"] > 0 and row["notes.view_change"] > 0 and row["notes.new_view"] > 0
    assert row["view_change_ms_mean"] > 0
    assert "notes.view-change" not in row


@pytest.mark.parametrize(
    ("behaviour", "n", "count"),
    [
        ("silent-leader", 4, 1),
        ("equivocating-leader", 4, 1),
        ("double-voter", 4, 1),
        ("equivocating-leader", 7, 2),
        ("double-voter", 7, 2),
    ],
)
def test_byzantine_replicas_up_to_f_leave_hotstuff_safe_and_live(
    behaviour: str, n: int, count: int
) -> None:
    row, sim, dep = run(
        n=n,
        byzantine=behaviour,
        byzantine_count=count,
        view_timeout_us=50_000,
        rate_tps=1000.0,
    )
    assert row["safety"] and row["chain"] and row["liveness"], row["safety_reason"]
    assert dep.replicas == tuple(range(count, n))
    altered = sum(sim.nodes[r].inner.altered for r in range(count))
    assert altered > 0  # the behaviour did act
    if behaviour == "double-voter":
        assert row["notes.equivocation"] > 0


def test_crash_and_recover_through_the_deployment() -> None:
    row, sim, _dep = run(
        faults="crash:2@15ms;recover:2@300ms", rate_tps=200.0, view_timeout_us=100_000
    )
    assert row["safety"] and row["chain"] and row["liveness"]
    assert row["notes.crash"] == 1 and row["notes.recover"] == 1
    sim.drain(range(4))
    heights = [sim.nodes[r].replica.tree.height for r in range(4)]
    assert heights[2] == max(heights)  # the recovered replica caught up by block sync
    assert sim.nodes[2].replica.state_digest == sim.nodes[0].replica.state_digest


def test_blocker_mode_builds_one_agreed_chain_of_every_transaction() -> None:
    params = {
        "block_mode": "blocker",
        "block_size": 10,
        "block_interval_us": 50_000,
        "blocker_turn_us": 50_000,
        "requests": 60,
        "clients": 6,
    }
    row, sim, _dep = run(seed=5, **params)
    from medbench.study.measure import wait_for_blocks

    left, _waited = wait_for_blocks(sim, range(4))
    assert left == 0 and row["safety"] and row["liveness"]
    chains = [sim.nodes[r].replica.service.chain for r in range(4)]
    assert len({tuple(c.ids) for c in chains}) == 1
    chain = chains[0]
    assert chain.verify() == (len(chain.blocks) - 1, None)
    listed = [tx for b in chain.blocks[1:] for tx in b.tx_ids]
    assert len(listed) == len(set(listed)) == 60
    # the paper's rotation in turn 0: VA_1, VA_2, VA_3, VA_1, ... (never VA_0)
    assert [b.header.blocker for b in chain.blocks[1:4]] == [1, 2, 3]
    for r in range(4):
        assert sim.nodes[r].verify_chain()[1] is None
        assert sim.nodes[r].stats()["blocks_stored"] == len(chain.blocks) - 1
        assert sim.nodes[r].storage_bytes()["blocks"] > 0


def test_a_crashed_blocker_passes_its_turn_on() -> None:
    params = {
        "block_mode": "blocker",
        "block_size": 5,
        "block_interval_us": 20_000,
        "blocker_turn_us": 40_000,
        "requests": 30,
        "clients": 3,
        "n": 7,
        "faults": "crash:1@1ms",
        "view_timeout_us": 50_000,
    }
    row, sim, _dep = run(seed=6, **params)
    from medbench.study.measure import wait_for_blocks

    left, _ = wait_for_blocks(sim, [r for r in range(7) if r != 1])
    assert left == 0 and row["safety"]
    blockers = [b.header.blocker for b in sim.nodes[0].replica.service.chain.blocks[1:]]
    assert 1 not in blockers and blockers[0] == 2  # turn 1 of height 1 names VA_2


def test_chain_check_refuses_what_the_rule_forbids() -> None:
    chain = Chain(4, block_size=3, interval_us=100, turn_us=50)
    tx = [bytes([i]) * 32 for i in range(4)]
    for t in tx[:2]:
        chain.accept(t, 10)
    good = BlockCommand(1, chain.head_id, 1, 0, (tx[0],))
    assert chain.check(good, 1, 10) is None
    assert chain.check(good, 2, 10) == "not sent by the blocker it names"
    assert chain.check(BlockCommand(2, chain.head_id, 1, 0, (tx[0],)), 1, 10) == "wrong height"
    assert chain.check(BlockCommand(1, bytes(32), 1, 0, (tx[0],)), 1, 10) == (
        "wrong previous block"
    )
    late = BlockCommand(1, chain.head_id, 2, 1, (tx[0],))  # turn 1 names VA_2
    assert chain.check(late, 2, 120) == "turn has not come"  # due at 100, turn 1 from 150
    assert chain.check(late, 2, 150) is None
    assert chain.check(BlockCommand(1, chain.head_id, 3, 1, (tx[0],)), 3, 150) == (
        "not the expected blocker"
    )
    assert chain.check(BlockCommand(1, chain.head_id, 1, 0, (tx[3],)), 1, 10) == (
        "transaction not accepted or already in a block"
    )
    block = chain.append(good, 10)
    assert chain.ids[-1] == block.id and chain.unblocked == {tx[1]: None}
    assert BlockCommand.parse(good.encode()) == good
    assert BlockCommand.parse(b"\x93\x01\x02\x03") is None


def test_parameters_are_checked() -> None:
    rng = random.Random(0)
    with pytest.raises(experiments.ExperimentError):
        build({**BASE, "byzantine": "nonsense"}, rng)
    with pytest.raises(experiments.ExperimentError):
        build({**BASE, "block_mode": "nonsense"}, rng)
    with pytest.raises(experiments.ExperimentError):
        build({**BASE, "auth": "nonsense"}, rng)
    with pytest.raises(experiments.ExperimentError):
        build({**BASE, "batch": 0}, rng)


def test_proposals_are_what_the_trace_counts() -> None:
    """Sanity of the wiring: a proposal is a Proposal of a Block, sized by its encoding."""
    _row, sim, _dep = run(seed=7, requests=4)
    sent = [r for r in sim.nodes[1]._persisted if type(r) is Proposal]
    assert sent and all(type(p.block) is Block for p in sent)
