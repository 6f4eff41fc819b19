"""Storage per node: encoded blocks and transactions, read after the run drained."""

from __future__ import annotations

import pytest

from medbench import codec
from medbench import experiments as ex
from medbench.consensus.baselines.common import TxGossip
from medbench.experiments.baselines import SimBaseline
from medbench.experiments.pbft import SimNode
from medbench.study import table1

QUICK = table1.Settings.quick()
SYSTEMS = {s.key: s for s in table1.SYSTEMS}


@pytest.mark.parametrize(
    ("protocol", "extra"),
    [("pow", {}), ("poi", {}), ("poa", {}), ("dpos", {"delegates": 3, "auditors": 2})],
)
def test_baseline_storage_is_the_encoded_blocks_and_transactions(
    protocol: str, extra: dict[str, int]
) -> None:
    params = {"protocol": protocol, "n": 5, "tick_us": 0, "txs": 6, "tx_bytes": 300, **extra}
    sim, _dep = ex.build_simulator(params, seed=7)
    sim.run(900_000_000, stop_when_complete=True)
    sim.drain(range(5))
    for i in range(5):
        node = sim.nodes[i]
        assert isinstance(node, SimBaseline)
        inner = node.node
        blocks = inner.committed_blocks()
        got = node.storage_bytes()
        assert got["blocks"] == sum(len(b.encode()) for b in blocks)
        txs = inner.distinct_txs(blocks)
        assert len(txs) == 6  # drained: every node holds every transaction
        assert got["txs"] == sum(len(TxGossip(*t).encode()) for t in txs) > 6 * 300


def test_pbft_storage_categories() -> None:
    params = {"protocol": "pbft", "n": 4, "requests": 12, "payload_bytes": 300}
    sim, _dep = ex.build_simulator(params, seed=3)
    record = sim.run(60_000_000, stop_when_complete=True)
    sim.drain(range(4))
    record = sim.snapshot()
    for i in range(4):
        node = sim.nodes[i]
        assert isinstance(node, SimNode)
        cats = record.storage[i]
        assert set(cats) == {"blocks", "txs", "log"}
        assert cats["txs"] > 12 * 300  # every executed request, bodies included
        chain = node.replica.chain
        want = sum(
            len(codec.encode((b.header.encode(), tuple(b.tx_ids)))) for b in chain.blocks[1:]
        )
        assert cats["blocks"] == want
        assert cats["log"] > 0  # pre-prepares, prepares, commits handed to stable storage


def test_table1_storage_holds_at_least_the_bodies() -> None:
    """The audit's symptom: 32.9 KB per node for 40 KB of bodies. Every system now stores
    at least the transaction bodies it committed, per node, after the run drained."""
    s = QUICK
    for key in ("mdsm", "medrec", "modelchain", "medicalchain", "central", "poa"):
        system = SYSTEMS[key]
        t = table1.measure(system, s.common_n, system.options_for(s.common_n), s)
        assert t.live, key
        assert t.row["storage_kb_per_node"] * 1024 >= s.txs * s.tx_bytes, key
        assert t.row["storage_kb.txs"] * 1024 >= s.txs * s.tx_bytes, key
        assert t.row["storage_kb.blocks"] > 0, key
