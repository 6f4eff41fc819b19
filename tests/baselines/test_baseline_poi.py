"""PoI (ModelChain): blocks carry checked model updates; poisoned updates are rejected."""

from __future__ import annotations

from dataclasses import replace

from baselines.harness import Harness
from medbench import codec
from medbench.consensus.baselines.poi import PoiNode, decode_weights, encode_weights
from medbench.experiments.baselines import make_nodes
from medbench.hashing import sha256

PARAMS = {"hashrate": 1000.0, "difficulty": 3000, "confirmations": 2}


def test_blocks_carry_updates_that_improve_the_model() -> None:
    nodes: list[PoiNode] = make_nodes("poi", 3, PARAMS, seed=1)  # type: ignore[assignment]
    rec = Harness(nodes, 20_000).run(60_000_000)
    node = nodes[0]
    assert node.tree.head.height >= 10
    zero = node.learner.validation_loss((0,) * node.learn.features)
    assert node.head_loss() < zero - 0.05  # the chain learned
    for b in node.tree.main[1:]:  # every main-chain block carries a decodable update
        w = decode_weights(node.tree.entries[b].block.payload, node.learn.features)
        assert len(w) == node.learn.features
    s = node.stats()
    m, d = node.learn.local_samples, node.learn.features
    assert s["train_flops"] == s["blocks_produced"] * (4 * m * d + 5 * m + 2 * d)
    assert s["updates_checked"] == s["validations"] > 0 and s["validate_flops"] > 0
    assert s["hash_mining"] > 0 and s["rewards_paid"] > 0  # compute = hashing + learning
    assert rec.notes["rejected"] == 0


def test_poisoned_updates_are_rejected() -> None:
    nodes: list[PoiNode] = make_nodes(  # type: ignore[assignment]
        "poi", 4, {**PARAMS, "poison": [0]}, seed=2
    )
    rec = Harness(nodes, 20_000).run(80_000_000)
    assert nodes[0].counters.blocks_produced > 0
    rejected = [n.detail[0] for _, _, n in rec.note_log if n.kind == "rejected"]
    assert rejected and set(rejected) <= {"update_degrades_loss", "invalid_ancestor"}
    for honest in nodes[1:]:
        miners = [honest.tree.entries[b].block.miner for b in honest.tree.main[1:]]
        assert 0 not in miners and len(miners) > 5
        refused = honest.counters.rejections
        assert refused["update_degrades_loss"] >= 1
        # Every poisoned block (but one still in flight at most) was refused, directly or as
        # the descendant of a refused one.
        assert refused["update_degrades_loss"] + refused["invalid_ancestor"] >= (
            nodes[0].counters.blocks_produced - 1
        )


def test_malformed_update_is_rejected() -> None:
    nodes: list[PoiNode] = make_nodes("poi", 2, PARAMS, seed=3)  # type: ignore[assignment]
    Harness(nodes, 1_000).run(10_000_000)
    src = nodes[0]
    block = src.tree.entries[src.tree.main[1]].block
    for payload in (b"\xc1", codec.encode([1, 2]), encode_weights((int(1e6 * 2**24),) * 10)):
        bad = replace(block, payload=payload, payload_hash=sha256(payload))
        fresh: PoiNode = make_nodes("poi", 2, PARAMS, seed=3)[1]  # type: ignore[assignment]
        r = fresh.step(0, bad)
        assert r.notes[0].kind == "rejected"
        assert r.notes[0].detail[0] in {"bad_update", "update_degrades_loss"}
