"""Central relay (docs/medical-chain.md §2): relays blocks, halts when the centre crashes, trusts a
liar."""

from __future__ import annotations

from dataclasses import replace

import pytest

from baselines.harness import Harness
from medbench import experiments
from medbench.consensus.baselines import MembershipError
from medbench.consensus.baselines.central import (
    CentralServer,
    NodeServer,
    RelayBlock,
    Rewrite,
    Sync,
    relay_block,
    verify_linkage,
)
from medbench.experiments.baselines import make_nodes
from medbench.hashing import sha256


def tx(i: int) -> bytes:
    return sha256(b"rec%d" % i)


def run(n: int = 4, txs: int = 30, until: int = 20_000_000) -> tuple[Harness, list]:
    nodes = make_nodes("central", n, {}, seed=0)
    h = Harness(nodes, 20_000)
    for i in range(txs):
        h.submit(1 + i % (n - 1), tx(i), 300, 100_000 + i * 300_000)
    h.run(until)
    return h, nodes


def test_nodes_register_and_every_block_reaches_every_node() -> None:
    h, nodes = run()
    centre: CentralServer = nodes[0]
    assert centre.registered == [1, 2, 3]
    assert verify_linkage(centre.chain)
    for node in nodes[1:]:
        assert node.chain == centre.chain
        assert node.stats()["committed_txs"] == 30
    assert h.record.notes["rejected"] == 0
    assert len(h.committed_ids(1)) == len(centre.chain) - 1
    with pytest.raises(MembershipError):
        make_nodes("central", 1, {}, seed=0)


def test_racing_blocks_are_refused_and_retried() -> None:
    nodes = make_nodes("central", 3, {"block_interval_us": 0}, seed=0)
    h = Harness(nodes, lambda s, d: 10_000 if 2 in (s, d) else 30_000)
    h.submit(1, tx(1), 10, 1_000_000)
    h.submit(2, tx(2), 10, 1_000_000)  # both build index 1; node 2's block arrives first
    rec = h.run(3_000_000)
    assert rec.notes["rejected"] == 1  # the centre refused node 1's stale block
    assert nodes[0].counters.rejections == {"does_not_link": 1}
    assert [b.producer for b in nodes[0].chain[1:]] == [2, 1]  # node 1 retried on the new tip
    assert nodes[1].chain == nodes[2].chain == nodes[0].chain


def test_a_central_crash_halts_progress() -> None:
    nodes = make_nodes("central", 4, {}, seed=0)
    h = Harness(nodes, 20_000)
    for i in range(10):
        h.submit(1 + i % 3, tx(i), 100, 100_000 + i * 200_000)
    h.run(5_000_000)
    before = [len(n.chain) for n in nodes[1:]]
    assert before == [len(nodes[0].chain)] * 3 and before[0] > 1
    h.crash(0)
    for i in range(10, 40):
        h.submit(1 + i % 3, tx(i), 100, 6_000_000 + i * 200_000)
    h.run(60_000_000)
    assert [len(n.chain) for n in nodes[1:]] == before  # nothing more is ever committed
    assert all(n.inflight is not None for n in nodes[1:])  # blocks stuck at the dead centre


def test_byzantine_centre_rewrites_history_and_nodes_accept_it() -> None:
    h, nodes = run(txs=12, until=6_000_000)
    node: NodeServer = nodes[1]
    original = list(node.chain)
    victim = original[2].txs[0][0]
    h.deliver(0, 0, Rewrite(2, victim), 7_000_000)
    rec = h.run(8_000_000)
    assert rec.notes["byzantine_rewrite"] == 1 and rec.notes["history_replaced"] == 3
    assert rec.notes["rejected"] == 0  # no node could object
    for n in nodes[1:]:
        assert n.chain == nodes[0].chain
        assert victim not in {t[0] for b in n.chain for t in b.txs}  # the record is gone
    # Linkage checks alone cannot tell the two histories apart: both verify.
    assert verify_linkage(original) and verify_linkage(node.chain)
    assert original[2].hash != node.chain[2].hash and original[-1].hash != node.chain[-1].hash
    # The changed heights were committed again with different blocks.
    last = {c.sequence: c.payload.block_id for _, c in rec.committed[1]}
    assert last[2] == node.chain[2].hash


def test_only_the_centre_is_trusted_and_linkage_is_checked() -> None:
    _, nodes = run(txs=3, until=3_000_000)
    node: NodeServer = nodes[1]
    tip = node.chain[-1]
    fake = relay_block(tip.index + 1, tip.timestamp, tip.hash, 2, ())
    assert node.step(2, fake).notes[0].detail[0] == "not_from_center"
    bad_hash = replace(fake, hash=sha256(b"x"))
    assert node.step(0, bad_hash).notes[0].detail[0] == "bad_hash"
    unlinked = relay_block(tip.index + 1, tip.timestamp, sha256(b"y"), 2, ())
    assert node.step(0, unlinked).notes[0].detail[0] == "does_not_link"
    broken = Sync((node.chain[0], unlinked))
    assert node.step(0, broken).notes[0].detail[0] == "bad_linkage"
    assert node.step(0, RelayBlock(*fake.fields())).notes == []  # the centre's word is law


@pytest.mark.parametrize("clients", [1, 50])
def test_closed_loop_without_periodic_ticks_commits_every_transaction(clients: int) -> None:
    # Table 1's runs drive baselines by their deadlines only (tick_us=0); a closed loop's
    # submissions all arrive before the centre's chain does, so only a message wakes the node
    row = experiments.run(
        {
            "protocol": "central",
            "n": 4,
            "tick_us": 0,
            "requests": 50,
            "clients": clients,
            "load": "closed",
            "duration_ms": 600_000,
        },
        1,
    )
    assert row["completed"] == 50
    assert row["liveness"]
