"""Hash work per committed transaction: one rule (medbench.hashwork) for PBFT and baselines."""

from __future__ import annotations

from dataclasses import replace

import pytest

from medbench import experiments as ex
from medbench import hashwork
from medbench.experiments.baselines import SimBaseline
from medbench.experiments.pbft import SimNode
from medbench.sim.costs import CostProfile
from medbench.study import table1


def test_merkle_hashes_and_tally() -> None:
    assert [hashwork.merkle_hashes(k) for k in (0, 1, 2, 5)] == [1, 1, 3, 9]
    with pytest.raises(ValueError):
        hashwork.merkle_hashes(-1)
    t = hashwork.HashTally()
    t.add_all({"tx_id": 3, "mining": 100, "merkle": 5})
    assert t.charged() == 8
    assert t.as_stats()["hash.mining"] == 100
    with pytest.raises(KeyError):
        t.add("sha3")


@pytest.mark.parametrize("batch", [1, 4])
def test_pbft_counts_ids_digests_merkle_and_block_ids(batch: int) -> None:
    """Integrated blocks, fault-free: per executed batch of b requests, each replica hashes
    b IDs + batch digest + state digest + (Merkle root + block ID) built and re-validated."""
    params = {"protocol": "pbft", "n": 4, "requests": 24, "clients": 4, "batch": batch}
    sim, _dep = ex.build_simulator(params, seed=5)
    record = sim.run(60_000_000, stop_when_complete=True)
    assert len(record.completed) == 24
    for i in range(4):
        node = sim.nodes[i]
        assert isinstance(node, SimNode)
        st = node.stats()
        batches = len(record.commits[i])
        items = st["hash.tx_id"]
        assert items == 24  # every request executed once, one ID hash each
        want = items + 2 * batches + 2 * (2 * items - batches) + 2 * batches
        got = st["hash.tx_id"] + st["hash.digest"] + st["hash.merkle"] + st["hash.block_id"]
        assert got == want
        assert st["hash.digest"] == 2 * batches
        # Everything counted is charged to the replica's CPU as "hash" (modeled auth: no MACs).
        assert record.op_counts[i]["hash"] == got
        assert st["blocks_stored"] == batches
    # Clients execute nothing.
    assert sim.nodes[4].stats()["hash.tx_id"] == 0


def test_pbft_macs_add_their_hashes() -> None:
    params = {"protocol": "pbft", "n": 4, "requests": 8, "auth": "macs"}
    sim, _dep = ex.build_simulator(params, seed=1)
    record = sim.run(60_000_000, stop_when_complete=True)
    st = sim.nodes[1].stats()
    assert st["hash.mac"] > 0
    assert record.op_counts[1]["hash"] == sum(
        v for k, v in st.items() if k.startswith("hash.") and k != "hash.mining"
    )


@pytest.mark.parametrize(
    ("protocol", "extra"),
    [("pow", {}), ("poa", {}), ("dpos", {"delegates": 3, "auditors": 2}), ("central", {})],
)
def test_baselines_count_ids_merkle_and_block_ids(protocol: str, extra: dict[str, int]) -> None:
    n = 5
    params = {"protocol": protocol, "n": n, "tick_us": 0, "txs": 8, **extra}
    sim, _dep = ex.build_simulator(params, seed=2)
    record = sim.run(900_000_000, stop_when_complete=True)
    assert len(record.completed) == 8
    for i in range(n):
        node = sim.nodes[i]
        assert isinstance(node, SimBaseline)
        st = node.stats()
        committed = {t[0] for b, final in node.node.stored_blocks() if final for t in b.txs}
        if i in record.commits:  # (the relay's centre stores blocks but commits none)
            assert st["hash.tx_id"] == len(node.tx_ids) == len(committed)
        charged = st["hash.tx_id"] + st["hash.merkle"] + st["hash.block_id"]
        assert record.op_counts[i].get("hash", 0) == charged
        if protocol != "central":  # the relay hashes whole blocks; it has no Merkle tree
            assert st["hash.merkle"] > 0


def test_table1_hashes_per_tx_include_pbft_block_work() -> None:
    system = next(s for s in table1.SYSTEMS if s.key == "medicalchain")
    t = table1.measure(system, 4, {}, table1.Settings.quick())
    # At least one ID, two digests and a Merkle root + ID (twice) per transaction per replica.
    assert t.row["hashes_per_tx"] >= 4 * (1 + 2 / 16 + 2 * 2 / 16)
    assert t.row["hash_per_tx.tx_id"] == pytest.approx(4.0)


def test_poi_learning_is_charged_as_cpu() -> None:
    """ModelChain's compute = hashing + learning: the FLOPs land on the node's CPU."""
    params = {"protocol": "poi", "n": 2, "tick_us": 0, "txs": 4}
    sim, _dep = ex.build_simulator(params, seed=4)
    record = sim.run(900_000_000, stop_when_complete=True)
    assert len(record.completed) == 4
    prof = CostProfile.default()
    for i in range(2):
        st = sim.nodes[i].stats()
        flops = st["train_flops"] + st["validate_flops"]
        assert flops > 0
        assert record.op_counts[i]["flop"] == flops
        assert record.cpu_ns[i]["flop"] == int(flops * prof.flop_ns)


def test_compute_demand_includes_learning() -> None:
    """With mining made negligible, only an expensive learning step makes PoI 'large'."""
    system = next(s for s in table1.SYSTEMS if s.key == "modelchain")
    opts = {"hashrate": 1.0}  # ~15 hashes per block: no mining work to speak of
    s = table1.Settings.quick()
    cheap = table1.measure(system, 2, opts, s)
    dear_profile = replace(CostProfile.default(), flop_ns=1e6)
    dear = table1.measure(system, 2, opts, s, profile=dear_profile)
    assert cheap.live and dear.live
    assert cheap.row["learn_ms_per_tx"] > 0
    assert dear.row["learn_ms_per_tx"] > 1e5 * cheap.row["learn_ms_per_tx"]
    assert dear.row["cpu_ms_per_tx"] >= dear.row["learn_ms_per_tx"]
    assert table1.compute_demand(cheap.row["cpu_ms_per_tx"], s.cost_profile()) == "small"
    assert table1.compute_demand(dear.row["cpu_ms_per_tx"], dear_profile) == "large"
