"""PoA (Clique, MedRec 2.0): in-turn rotation, recent-signer limit, only authorities sign."""

from __future__ import annotations

from dataclasses import replace

from baselines.harness import Harness
from medbench import codec
from medbench.consensus.baselines.poa import PoaBlock, PoaNode, PoaParams
from medbench.consensus.baselines.signing import make_signers
from medbench.experiments.baselines import make_nodes
from medbench.experiments.streams import node_rng
from medbench.hashing import sha256
from medbench.merkle import root


def signers_on_main(node: PoaNode) -> list[int]:
    return [node.tree.entries[b].block.signer for b in node.tree.main[1:]]


def test_in_turn_rotation_with_15_s_blocks() -> None:
    nodes = make_nodes("poa", 5, {}, seed=1)
    h = Harness(nodes, 5_000)
    for i in range(20):
        h.submit(i % 5, sha256(b"t%d" % i), 150, 1_000_000 + i * 3_000_000)
    rec = h.run(300_000_000)
    node = nodes[0]
    signers = signers_on_main(node)
    assert len(signers) == 20  # one block per 15 s period
    assert signers == [(k + 1) % 5 for k in range(20)]  # authorities[number % N]
    blocks = [node.tree.entries[b].block for b in node.tree.main[1:]]
    assert [b.timestamp for b in blocks] == [15_000_000 * (k + 1) for k in range(20)]
    assert all(b.difficulty == 2 for b in blocks)
    assert node.stats()["committed_txs"] == 20
    assert node.stats()["rewards_paid"] == 0 == node.stats()["fees_paid"]
    assert rec.notes["rejected"] == 0


def test_out_of_turn_signers_keep_the_chain_live_and_respect_the_recent_limit() -> None:
    nodes = make_nodes("poa", 5, {}, seed=2)
    h = Harness(nodes, 5_000)
    h.crash(2)
    h.run(600_000_000)
    node = nodes[0]
    signers = signers_on_main(node)
    assert len(signers) >= 35  # about one block per period plus wiggle
    assert 2 not in signers
    limit = 5 // 2 + 1
    for i in range(len(signers) - limit + 1):
        window = signers[i : i + limit]
        assert len(set(window)) == limit, window  # at most one of every N//2+1 blocks
    diffs = [node.tree.entries[b].block.difficulty for b in node.tree.main[1:]]
    assert 1 in diffs  # out-of-turn blocks were sealed


def make_pair() -> tuple[list, PoaNode]:
    """Authorities 0..4, full nodes 5 and 6; the receiver is full node 6, its clock at 100 s."""
    n = 7
    params = PoaParams(authorities=5)
    signers = make_signers(n, 9, b"medbench-poa", False)
    keys = tuple(s.public_key for s in signers)
    node = PoaNode(6, n, params, signers[6], keys, node_rng(9, 6))
    node.tick(100_000_000)
    return signers, node


def sealed(signers: list, parent: bytes, number: int, ts: int, diff: int, who: int) -> PoaBlock:
    b = PoaBlock(parent, number, ts, diff, who, root([]), (), b"")
    return replace(b, seal=signers[who].sign(codec.encode(b.header())))


def bid(b: PoaBlock) -> bytes:
    return sha256(codec.encode([*b.header(), b.seal]))


def test_recent_signer_block_is_rejected() -> None:
    signers, node = make_pair()
    b1 = sealed(signers, node.genesis_id, 1, 15_000_000, 2, 1)
    assert not node.step(1, b1).notes
    # Signer 1 again at number 2 (out of turn): signed one of the last N//2 blocks.
    b2 = sealed(signers, bid(b1), 2, 30_000_000, 1, 1)
    r = node.step(1, b2)
    assert r.notes[0].detail[0] == "recently_signed"
    # Signer 3 out of turn at number 2 is fine; in-turn signer 2 with difficulty 1 is not.
    assert not node.step(3, sealed(signers, bid(b1), 2, 30_000_000, 1, 3)).notes
    r = node.step(2, sealed(signers, bid(b1), 2, 30_000_000, 1, 2))
    assert r.notes[0].detail[0] == "bad_difficulty"
    r = node.step(4, sealed(signers, bid(b1), 2, 20_000_000, 1, 4))
    assert r.notes[0].detail[0] == "too_early"
    # A block stamped more than one period ahead of the receiver's clock (100 s).
    r = node.step(4, sealed(signers, bid(b1), 2, 116_000_000, 1, 4))
    assert r.notes[0].detail[0] == "future_block"


def test_block_signed_by_a_non_authority_is_rejected() -> None:
    signers, node = make_pair()
    outsider = sealed(signers, node.genesis_id, 1, 15_000_000, 1, 5)
    r = node.step(5, outsider)
    assert r.notes[0].detail[0] == "unauthorized_signer"
    assert node.tree.head.height == 0
    # A forged seal: authority 1's name on a header signed by node 5's key.
    b = PoaBlock(node.genesis_id, 1, 15_000_000, 2, 1, root([]), (), b"")
    forged = replace(b, seal=signers[5].sign(codec.encode(b.header())))
    r = node.step(5, forged)
    assert r.notes[0].detail[0] == "bad_seal"
    assert node.counters.rejections == {"unauthorized_signer": 1, "bad_seal": 1}


def test_full_nodes_never_seal() -> None:
    nodes = make_nodes("poa", 4, {"authorities": 2, "period_us": 1_000_000}, seed=3)
    Harness(nodes, 1_000).run(20_000_000)
    assert set(signers_on_main(nodes[3])) == {0, 1}
    assert nodes[2].counters.blocks_produced == nodes[3].counters.blocks_produced == 0
