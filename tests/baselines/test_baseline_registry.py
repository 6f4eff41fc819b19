"""The registry: uniform factories, minimal configurations that start and stay live, rules text."""

from __future__ import annotations

import pytest

from baselines.harness import Harness
from medbench.consensus.baselines import REGISTRY
from medbench.consensus.baselines.common import CommittedBlock, TxCompleted
from medbench.experiments.baselines import make_nodes
from medbench.hashing import sha256
from medbench.node import Node

# Small timing overrides so a minimal configuration commits within a short simulated run.
FAST = {
    "pow": {"hashrate": 1000.0, "difficulty": 1000, "confirmations": 2},
    "poi": {"hashrate": 1000.0, "difficulty": 1000, "confirmations": 2},
    "poa": {"period_us": 1_000_000},
    "dpos": {"slot_us": 1_000_000, "modeled_signatures": True},
    "central": {},
}


def test_registry_names_and_columns() -> None:
    assert sorted(REGISTRY) == ["central", "dpos", "poa", "poi", "pow"]
    assert [REGISTRY[k].pays_rewards for k in ("pow", "poi", "poa", "dpos", "central")] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert REGISTRY["dpos"].minimal.n == 121 and REGISTRY["dpos"].vote_weights
    for spec in REGISTRY.values():
        text = spec.describe()
        assert "Theory of operation" in text and len(text) > 500
    with pytest.raises(ValueError, match="unknown baseline"):
        make_nodes("pbft?", 4, {}, 0)
    with pytest.raises(ValueError, match="unknown"):
        make_nodes("pow", 4, {"hash_rate": 1}, 0)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_minimal_configuration_starts_stays_live_and_completes_transactions(name: str) -> None:
    spec = REGISTRY[name]
    n = spec.minimal.n
    nodes = make_nodes(name, n, {**spec.minimal.params, **FAST[name]}, seed=4)
    assert all(isinstance(x, Node) for x in nodes) and [x.node_id for x in nodes] == list(range(n))
    h = Harness(nodes, 2_000)
    client = n - 1  # a node server / member that is not the central server
    for i in range(5):
        h.submit(client, sha256(b"min%d" % i), 64, 200_000 + i * 1_000_000)
    rec = h.run(12_000_000)
    done = [c for _, c in rec.completed.get(client, [])]
    assert len(done) == 5 and all(isinstance(c, TxCompleted) for c in done)
    commits = rec.committed[client]
    assert all(isinstance(c.payload, CommittedBlock) for _, c in commits)
    seqs = [c.sequence for _, c in commits]
    assert seqs == sorted(seqs) and seqs[0] == 1
    st = nodes[client].stats()
    for key in (
        "hash_block",
        "sign_ops",
        "verify_ops",
        "rewards_paid",
        "fees_paid",
        "committed_txs",
        "rejections",
    ):
        assert key in st
    assert st["committed_txs"] == 5
    assert (st["rewards_paid"] + st["fees_paid"] > 0) == spec.pays_rewards
