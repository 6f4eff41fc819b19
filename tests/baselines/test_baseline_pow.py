"""PoW (MedRec 2016): fork choice, orphans vs delay, real hashing vs the model, money, 51%."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.harness import Harness
from medbench.consensus.baselines.attack import (
    PrivateMiner,
    attack_curve,
    rosenfeld,
    simulate_double_spend,
)
from medbench.consensus.baselines.pow import PowBlock, PowNode, PowParams, tx_gas
from medbench.experiments.baselines import make_nodes
from medbench.experiments.streams import NumpyRng, PythonRng, node_rng
from medbench.hashing import sha256
from medbench.merkle import root


def tx(i: int) -> bytes:
    return sha256(b"tx%d" % i)


def block_on(parent: bytes, height: int, miner: int, ts: int, difficulty: int) -> PowBlock:
    """A well-formed modeled-mode block (no work: modeled mode trusts work)."""
    return PowBlock(
        parent,
        height,
        miner,
        ts,
        difficulty,
        root([]),
        sha256(b""),
        miner.to_bytes(8, "big"),
        (),
        b"",
    )


def block_id(b: PowBlock) -> bytes:
    from medbench import codec

    return sha256(codec.encode(b.header()))


def test_heaviest_chain_wins_after_a_fork() -> None:
    params = PowParams(hashrate=1.0, difficulty=100, confirmations=1)
    node = PowNode(0, 3, params, node_rng(0, 0))
    g = node.genesis_id
    a1 = block_on(g, 1, 1, 10, 100)
    a2 = block_on(block_id(a1), 2, 1, 20, 100)
    b1 = block_on(g, 1, 2, 11, 100)
    b2 = block_on(block_id(b1), 2, 2, 21, 100)
    b3 = block_on(block_id(b2), 3, 2, 31, 100)
    for b in (a1, a2):
        assert not node.step(1, b).notes
    assert node.tree.head.block_id == block_id(a2)
    node.step(2, b1)
    r = node.step(2, b2)  # equal weight: the first seen (a2) stays head
    assert node.tree.head.block_id == block_id(a2) and not r.notes
    r = node.step(2, b3)  # heavier: reorganise onto b
    assert node.tree.head.block_id == block_id(b3)
    assert [n.kind for n in r.notes] == ["reorg", "commit_reverted"]
    assert node.tree.main[1:] == [block_id(b1), block_id(b2), block_id(b3)]
    assert node.stats()["orphans"] == 2
    # The depth-1 commits now follow branch b.
    assert node.committer.committed == [block_id(b1), block_id(b2)]


def test_unknown_parent_is_buffered_then_connected() -> None:
    node = PowNode(0, 2, PowParams(hashrate=1.0, difficulty=7, confirmations=0), node_rng(0, 0))
    b1 = block_on(node.genesis_id, 1, 1, 5, 7)
    b2 = block_on(block_id(b1), 2, 1, 6, 7)
    node.step(1, b2)
    assert node.tree.head.height == 0
    node.step(1, b1)
    assert node.tree.head.block_id == block_id(b2)


def orphan_rate(latency_us: int, seed: int) -> float:
    nodes = make_nodes(
        "pow", 6, {"hashrate": 1000.0, "difficulty": 12_000, "confirmations": 3}, seed
    )
    Harness(nodes, latency_us).run(400_000_000)  # ~200 blocks at a 2 s mean interval
    s = nodes[0].stats()
    return s["orphans"] / s["known_blocks"]


def test_orphan_rate_grows_with_propagation_delay() -> None:
    delays = [10_000, 300_000, 1_500_000]
    rates = [np.mean([orphan_rate(d, seed) for seed in range(3)]) for d in delays]
    assert rates[0] < rates[1] < rates[2]
    assert rates[0] < 0.03 and rates[2] > 0.2
    # First-order check for a small delay: P(orphan) ~ 1 - exp(-delay / block_time).
    assert rates[1] == pytest.approx(1 - np.exp(-0.3 / 2.0), abs=0.05)


def test_real_hashing_matches_the_model_expected_hash_count() -> None:
    d = 256
    nodes = make_nodes(
        "pow",
        2,
        {"hashrate": 1000.0, "difficulty": d, "real_hashing": True, "confirmations": 2},
        seed=7,
    )
    rec = Harness(nodes, 1_000).run(160_000_000)  # ~600 blocks
    trials = nodes[0].nonce_trials + nodes[1].nonce_trials
    assert len(trials) > 400
    # Geometric(1/D): mean D, standard error D/sqrt(k) ~ 4.5%.
    assert np.mean(trials) == pytest.approx(d, rel=0.15)
    assert rec.notes["rejected"] == 0  # every real block carried valid work
    s = nodes[0].stats()
    assert s["hash_mining"] == sum(nodes[0].nonce_trials)
    assert s["hash_mining_real"] >= s["hash_mining"]
    # Receivers check the work: a header whose ID is above the target is refused.
    good = nodes[0].tree.entries[nodes[0].tree.main[1]].block
    from dataclasses import replace

    for k in range(64):
        forged = replace(good, nonce=k.to_bytes(8, "big"), timestamp=good.timestamp + 1)
        if int.from_bytes(block_id(forged), "big") >= nodes[1].target:
            break
    r = nodes[1].step(0, forged)
    assert r.notes[0].detail[0] == "insufficient_work"


def test_rewards_and_fees_are_paid_per_committed_transaction() -> None:
    nodes = make_nodes(
        "pow", 4, {"hashrate": 1000.0, "difficulty": 4000, "confirmations": 2}, seed=3
    )
    h = Harness(nodes, 20_000)
    for i in range(40):
        h.submit(i % 4, tx(i), 100, 1_000_000 + i * 500_000)
    rec = h.run(120_000_000)
    s = nodes[1].stats()
    assert s["committed_txs"] == 40
    assert (s["rewards_paid"] + s["fees_paid"]) / s["committed_txs"] > 0
    assert s["fees_paid"] == 40 * tx_gas(100) * 20
    assert s["rewards_paid"] == s["committed_blocks"] * 5_000_000_000
    # Confirmation depth: commits lag the head by exactly `confirmations` blocks.
    assert s["committed_blocks"] == s["height"] - 2
    # Every submitted transaction completed once, at the node it was submitted to.
    done = [c.tx_id for lst in rec.completed.values() for _, c in lst]
    assert sorted(done) == sorted(tx(i) for i in range(40))


def test_same_seed_same_chain() -> None:
    def run(seed: int) -> list[bytes]:
        nodes = make_nodes("pow", 3, {"hashrate": 1000.0, "difficulty": 3000}, seed)
        Harness(nodes, 100_000).run(60_000_000)
        return list(nodes[2].tree.main)

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_python_random_generator_is_accepted_and_deterministic() -> None:
    import random

    def run() -> list[bytes]:
        params = PowParams(hashrate=1000.0, difficulty=2000, confirmations=1)
        nodes = [PowNode(i, 2, params, PythonRng(random.Random(i))) for i in range(2)]
        Harness(nodes, 10_000).run(30_000_000)
        return list(nodes[0].tree.main)

    chain = run()
    assert len(chain) > 5 and chain == run()


def test_double_spend_probability_against_share() -> None:
    rows = attack_curve([0.1, 0.3, 0.45, 0.55, 0.7], 6, 1500, NumpyRng(np.random.default_rng(1)))
    sims = [r["simulated"] for r in rows]
    assert sims == sorted(sims)
    assert sims[-1] == 1.0 and sims[-2] == 1.0  # a majority always overtakes
    for r in rows:
        assert r["simulated"] == pytest.approx(r["exact"], abs=0.05)
    assert rosenfeld(0.1, 6) < 1e-3
    with pytest.raises(ValueError):
        simulate_double_spend(0.3, 0, 10, NumpyRng(np.random.default_rng(0)))


def test_majority_private_miner_overtakes_and_reverts_commits() -> None:
    n = 4
    rates = [1000.0, 1000.0, 1000.0, 7000.0]  # the attacker holds 70%
    params = PowParams(hashrates=tuple(rates), difficulty=20_000, confirmations=3)
    nodes: list[PowNode] = [PowNode(i, n, params, node_rng(11, i)) for i in range(3)]
    attacker = PrivateMiner(3, n, params, node_rng(11, 3), release_depth=4)
    nodes.append(attacker)
    rec = Harness(nodes, 50_000).run(200_000_000)
    assert attacker.releases >= 1
    assert rec.notes["commit_reverted"] >= 1  # honest nodes lost blocks they had committed
    honest = nodes[0]
    miners = [honest.tree.entries[b].block.miner for b in honest.tree.main[1:]]
    assert miners.count(3) > len(miners) / 2  # the attacker's history became the main chain
