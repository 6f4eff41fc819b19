"""Blocks: the rotating blocker of docs/medical-chain.md §1.5, integrated mode, and the pluggable
format."""

from __future__ import annotations

import pytest
from pbft_harness import Network, safety_violations

from medbench import merkle
from medbench.consensus.pbft import BlockMode, Chain, DefaultBlockFormat, Replica, blocker_for
from medbench.consensus.pbft.blocker import ZERO_ID, BlockFormat, SimpleBlock
from medbench.consensus.pbft.messages import Block
from medbench.hashing import sha256


def test_worked_example_of_the_paper() -> None:
    # docs/medical-chain.md §1.5: L = 1, N = 4 -> B = 1 -> VA_1 builds the next block
    assert blocker_for(1, 0, 4) == 1
    assert [blocker_for(length, 0, 4) for length in range(1, 7)] == [1, 2, 3, 1, 2, 3]


@pytest.mark.parametrize("n", [2, 4, 7, 16])
def test_the_primary_never_blocks_and_every_backup_takes_turns(n: int) -> None:
    for view in range(2 * n):
        primary = view % n
        turns = {blocker_for(length, view, n) for length in range(1, n)}
        assert primary not in turns
        assert turns == set(range(n)) - {primary}


def test_default_format_builds_the_paper_header() -> None:
    fmt = DefaultBlockFormat()
    assert isinstance(fmt, BlockFormat)
    txs = (sha256(b"tx1"), sha256(b"tx2"))
    block = fmt.build(1, ZERO_ID, 1, txs, 123)
    assert block.header.merkle_root == merkle.root(list(txs))
    assert fmt.block_id(block) == sha256(block.header.encode())
    assert fmt.validate(block) is None
    tampered = SimpleBlock(block.header, (sha256(b"evil"), txs[1]), block.id)
    assert fmt.validate(tampered) == "merkle root does not match the transaction IDs"


def test_chain_checks_a_block_message() -> None:
    chain = Chain(4, BlockMode.BLOCKER)
    t1, t2 = sha256(b"1"), sha256(b"2")
    chain.accept(t1)
    chain.accept(t2)
    ok = Block(0, 1, chain.head_id, 1, (t1, t2), 5)
    assert chain.check(ok) is None
    assert chain.check(Block(0, 1, chain.head_id, 2, (t1,), 5)) == "not the expected blocker"
    assert chain.check(Block(0, 2, chain.head_id, 2, (t1,), 5)) == "wrong height"
    assert chain.check(Block(0, 1, ZERO_ID, 1, (t1,), 5)) == "wrong previous block"
    assert (
        chain.check(Block(0, 1, chain.head_id, 1, (sha256(b"x"),), 5))
        == "transaction not accepted or already in a block"
    )
    assert chain.check(Block(0, 1, chain.head_id, 1, (t1, t1), 5)) == "duplicate transaction ID"
    chain.append(1, (t1, t2), 5)
    assert chain.length == 2
    assert chain.check(Block(0, 2, chain.head_id, 2, (t1,), 6)) == (
        "transaction not accepted or already in a block"
    )


def test_blocker_mode_end_to_end() -> None:
    net = Network(
        n=4,
        clients=2,
        seed=31,
        block_mode=BlockMode.BLOCKER,
        block_size=3,
        block_interval_us=100_000,
    )
    for k in range(7):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(10_000_000)
    net.run(1_000_000)  # let the last (partial) block go out after block_interval_us
    r: Replica = net.nodes[0]
    blocks = r.chain.blocks[1:]
    assert len(blocks) >= 5
    for height, block in enumerate(blocks, start=1):
        assert block.header.height == height
        assert block.header.blocker == blocker_for(height, 0, 4)
        assert block.header.prev_id == r.chain.ids[height - 1]
    in_blocks = [tx for b in blocks for tx in b.tx_ids]
    executed = [q.digest() for b in net.committed[0].values() for q in b.requests]
    assert sorted(in_blocks) == sorted(executed)  # every accepted transaction, exactly once
    assert not r.chain.unblocked
    assert safety_violations(net, range(4)) == []
    assert net.stats.messages["block"] >= len(blocks)


def test_integrated_mode_makes_one_block_per_batch() -> None:
    net = Network(n=4, clients=2, seed=32, block_mode=BlockMode.INTEGRATED)
    for k in range(3):
        net.submit(4, b"a%d" % k)
    assert net.run_until_idle(2_000_000)
    r: Replica = net.nodes[1]
    batches = [b for b in net.committed[1].values() if b.requests]
    assert r.chain.length == 1 + len(batches)
    for b in batches:
        (block,) = b.blocks
        assert block.tx_ids == tuple(q.digest() for q in b.requests)
        assert block.header.blocker == -1
        assert block.header.timestamp == b.timestamp
    assert net.stats.messages["block"] == 0


def test_block_from_the_wrong_blocker_is_refused() -> None:
    net = Network(n=4, clients=1, seed=33, block_mode=BlockMode.BLOCKER)
    net.submit(4, b"x")
    assert net.run_until_idle(2_000_000)
    primary: Replica = net.nodes[0]
    txs = tuple(primary.chain.unblocked)
    wrong = Block(0, 1, primary.chain.head_id, 2, txs, 1)
    object.__setattr__(wrong, "auth", net.keyrings[2].sign(wrong.body()))
    primary.step(2, wrong)
    assert primary.rejections["block not from the expected blocker"] == 1
    forged = Block(0, 1, primary.chain.head_id, 1, txs, 1, net.keyrings[2].sign(b"x"))
    primary.step(1, forged)
    assert primary.rejections["block not authentic"] == 1


def test_a_faulty_blocker_causes_a_view_change_and_a_new_blocker() -> None:
    net = Network(
        n=4,
        clients=2,
        seed=34,
        block_mode=BlockMode.BLOCKER,
        block_size=2,
        block_interval_us=50_000,
        view_change_timeout_us=100_000,
    )
    net.black_holes.add(1)  # VA_1 is the blocker of height 1 in view 0 (L = 1, N = 4)
    for k in range(3):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(10_000_000)
    net.run(2_000_000)
    honest = net.replicas([0, 2, 3])
    assert any(n.kind == "block-stalled" for _, n in net.notes)
    assert all(r.view >= 1 for r in honest)
    r = honest[0]
    assert r.chain.length >= 2 and not r.chain.unblocked
    first = r.chain.blocks[1]
    assert first.header.blocker != 1
    assert safety_violations(net, [0, 2, 3]) == []


def test_a_committed_block_that_cannot_be_appended_is_reported() -> None:
    """Two BLOCKs for one height both get ordered: the second is skipped at every replica with
    a note and a counted reason, never silently."""
    net = Network(n=4, clients=1, seed=35, block_mode=BlockMode.BLOCKER)
    net.submit(4, b"x")
    assert net.run_until_idle(2_000_000)
    primary: Replica = net.nodes[0]
    txs = tuple(primary.chain.unblocked)
    assert txs and primary.chain.length == 1
    for ts in (1, 2):  # the blocker of height 1 (replica 1) sends twice; both are queued
        block = Block(0, 1, primary.chain.head_id, 1, txs, ts)
        net.deliver_now(1, 0, block.with_auth(net.keyrings[1].sign(block.body())))
    net.run(200_000)
    skipped = [(i, note.detail) for i, note in net.notes if note.kind == "block-skipped"]
    assert sorted(i for i, _ in skipped) == [0, 1, 2, 3]
    assert {d[2] for _, d in skipped} == {"wrong height"}
    for r in net.replicas():
        assert r.chain.length == 2
        assert r.skipped_blocks["wrong height"] == 1
        assert r.counters()["blocks_skipped"] == 1
    assert safety_violations(net, range(4)) == []
