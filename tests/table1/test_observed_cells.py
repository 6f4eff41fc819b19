"""Table 1 cells observed from runs (family, vote weights, blockchain), and declared ones."""

from __future__ import annotations

from dataclasses import replace

import pytest

from medbench import experiments as ex
from medbench.consensus.pbft.blocker import BlockHeader
from medbench.study import measure, table1

QUICK = table1.Settings.quick()
SYSTEMS = {s.key: s for s in table1.SYSTEMS}


@pytest.mark.parametrize(
    ("row", "weights", "family"),
    [
        ({"mining_hashes_per_tx": 5.0}, None, "PoX"),
        ({"decisions": 3, "finality_votes_min": 14, "validators": 20}, True, "PoX"),
        ({"decisions": 3, "finality_votes_min": 3, "validators": 4}, None, "BFT"),
        # Half the validators is not a Byzantine quorum: two such sets need not intersect.
        ({"decisions": 3, "finality_votes_min": 2, "validators": 4, "signing_nodes": 2}, None,
         "PoA"),
        ({"decisions": 0, "signing_nodes": 0}, False, "none"),
    ],
)  # fmt: skip
def test_observed_family_rules(row: dict[str, float], weights: bool | None, family: str) -> None:
    got, why = table1.observed_family(row, weights)
    assert got == family and why


def test_pbft_decisions_carry_a_commit_quorum() -> None:
    t = table1.measure(SYSTEMS["medicalchain"], 4, {}, QUICK)
    assert t.row["decisions"] > 0
    assert t.row["validators"] == 4 and t.row["finality_votes_min"] >= 3  # 2f + 1
    assert table1.observed_family(t.row, None)[0] == "BFT"


def test_vote_weights_observed_for_mdsm_declared_elsewhere() -> None:
    used, why = table1.vote_weights(SYSTEMS["mdsm"], QUICK)
    assert used is True and "skewed" in why
    used, why = table1.vote_weights(SYSTEMS["medicalchain"], QUICK)
    assert used is None and "declared" in why


def test_weighted_election_changes_the_producers() -> None:
    """The behaviour behind the MDSM cell: producers follow the weights, not the IDs."""
    n, auditors = 7, 1
    opts = {"delegates": 3, "auditors": auditors}
    heavy = (1, 1, 1, 5, 5, 5, 1)
    t = table1.measure(SYSTEMS["mdsm"], n, {**opts, "weights": heavy}, QUICK)
    assert t.live
    assert {int(p) for p in t.row["producers"].split(",")} <= {3, 4, 5}


def _run(system: str, n: int, opts: dict[str, object]) -> tuple[object, list[int]]:
    params = table1.run_params(SYSTEMS[system], n, opts, QUICK)
    sim, dep = ex.build_simulator(params, QUICK.seed)
    sim.run(QUICK.duration_ms * 1000, stop_when_complete=True)
    replicas = list(dep.replicas or range(n))
    assert table1.wait_for_blocks(sim, replicas)[0] == 0  # blocker mode: every tx in a block
    return sim, replicas


def test_pbft_chain_check_catches_a_rewritten_block() -> None:
    sim, replicas = _run("medicalchain", 4, {})
    node = sim.nodes[1]  # type: ignore[attr-defined]
    count, fault = node.verify_chain()
    assert fault is None and count >= 1
    chain = node.replica.chain
    blk = chain.blocks[1]
    forged = replace(blk, header=BlockHeader(*(
        blk.header.height, blk.header.prev_id, blk.header.blocker, bytes(32),
        blk.header.timestamp)))  # fmt: skip
    chain.blocks[1] = forged
    count, fault = node.verify_chain()
    assert fault is not None and "block 1" in fault
    assert measure._verify_chains(sim, replicas)[1].startswith("node 1")


@pytest.mark.parametrize(("system", "n"), [("medrec", 2), ("central", 3), ("poa", 2)])
def test_baseline_chain_check_catches_a_broken_link(system: str, n: int) -> None:
    sim, _replicas = _run(system, n, {})
    node = sim.nodes[1].node  # type: ignore[attr-defined]
    count, fault = node.verify_chain()
    assert fault is None and count >= 1
    if system == "central":
        node.chain[1] = replace(node.chain[1], prev_hash=bytes(32))
    else:
        bid = node.committer.committed[0]
        entry = node.tree.entries[bid]
        entry.block = replace(entry.block, txs=entry.block.txs[1:])  # drop a transaction
    assert node.verify_chain()[1] is not None


def test_declared_cells_carry_no_mark() -> None:
    rows = table1.measure_table(QUICK, [SYSTEMS["medicalchain"]])
    row = rows[0]
    assert "consensus" in row.declared and "vote_weights" in row.declared
    assert row.cells["family"] == "BFT" and "family" not in row.declared
    cmp = table1.compare(rows)
    assert "consensus" not in cmp.marks["medicalchain"]
    assert cmp.marks["medicalchain"]["family"] is True
    md = table1.markdown(rows, cmp)
    assert "improved PBFT (declared)" in md and "BFT ✓" in md
