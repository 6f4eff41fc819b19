"""The replica counts its own SHA-256 evaluations (``counters()["hash_*"]``), view change and
state transfer included, so a simulator can charge them exactly (medbench.hashwork)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pbft_harness import Network

from medbench.consensus.pbft import BlockMode, Config, Replica, make_keyrings
from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft.messages import (
    Prepare,
    PreparedProof,
    PrePrepare,
    Request,
    ViewChange,
    compute_batch_digest,
)

KEYS = make_keyrings("modeled", 4, range(5))


def _seal(msg: Any, signer: int) -> Any:
    return msg.with_auth(KEYS[signer].sign(msg.body()))


def test_fault_free_counts_match_the_per_batch_rule() -> None:
    """Normal case, integrated mode: per executed batch one batch digest (built by the primary,
    recomputed by each backup), one state digest, one ID per item, and a one-ID block built and
    checked (Merkle root 1 + block ID 1, twice)."""
    net = Network(n=4, clients=1, seed=3)
    for k in range(3):
        net.submit(4, b"op%d" % k)
    assert net.run_until_idle(2_000_000)
    for r in net.replicas():
        c = r.counters()
        assert (c["hash_digest"], c["hash_tx_id"], c["hash_merkle"], c["hash_block_id"]) == (
            6, 3, 6, 6,
        ), r.node_id  # fmt: skip


def test_blocker_mode_counts_the_block_messages_merkle_work() -> None:
    net = Network(n=4, clients=1, seed=4, block_mode=BlockMode.BLOCKER, block_size=2,
                  block_interval_us=20_000)  # fmt: skip
    for k in range(2):
        net.submit(4, b"op%d" % k)
    assert net.run_until_idle(2_000_000)
    net.run(200_000)
    r = net.replicas([2])[0]
    blocks = [b for s in sorted(r.history) for b in r.history[s].blocks]
    assert blocks  # the blocker's block, ordered as an item
    k = sum(len(b.tx_ids) for b in blocks)
    c = r.counters()
    assert c["hash_merkle"] == sum(2 * (2 * len(b.tx_ids) - 1) for b in blocks) and k == 2
    assert c["hash_block_id"] == 2 * len(blocks)
    assert c["hash_tx_id"] == sum(len(r.history[s].items) for s in r.history)


def test_a_view_change_certificate_costs_one_batch_digest_each() -> None:
    """Hashing the execution-derived rule misses: each certificate of a VIEW-CHANGE checked."""
    r = Replica(3, Config(n=4), KEYS[3])
    req = _seal(Request(4, 1, b"op"), 4)
    d = compute_batch_digest(7, (req,))
    pp = _seal(PrePrepare(0, 1, d, 7, (req,), 0), 0)
    prepares = tuple(_seal(Prepare(0, 1, d, i), i) for i in (1, 2))
    vc = _seal(ViewChange(1, 0, (), (PreparedProof(pp, prepares),), 1), 1)
    before = r.counters()["hash_digest"]
    r.step(1, vc)
    assert r.rejections == {} and 1 in r.view_changes[1]
    assert r.counters()["hash_digest"] == before + 1
    short = _seal(ViewChange(1, 0, (), (PreparedProof(pp, prepares[:1]),), 2), 2)
    r.step(2, short)  # the digest is recomputed, then the prepares are found too few
    assert r.rejections["certificate without a quorum of prepares"] == 1
    assert r.counters()["hash_digest"] == before + 2
    late = _seal(PrePrepare(1, 1, d, 7, (req,), 1), 1)
    early = _seal(ViewChange(1, 0, (), (PreparedProof(late, prepares),), 0), 0)
    r.step(0, early)  # refused on its view, before any digest
    assert r.rejections["certificate from a view not before the new one"] == 1
    assert r.counters()["hash_digest"] == before + 2


def test_state_transfer_is_counted() -> None:
    """A replica that fetched ``m`` batches recomputed each batch digest and chained state
    digest to check the STATE (2m), then executed them (m more state digests)."""
    net = Network(n=4, clients=1, seed=9, checkpoint_interval=2, log_window=8)
    delivered = Counter()

    class Spy(faults.Byzantine):  # counts the pre-prepares replica 3 is handed
        def incoming(self, src: int, msg: Any) -> Any:
            delivered[type(msg).__name__] += 1
            return msg

    net.nodes[3] = Spy(net.nodes[3])
    net.isolated.add(3)
    for k in range(6):
        net.submit(4, b"op%d" % k)
    assert net.run_until_idle(3_000_000)
    net.isolated.clear()
    for k in range(6, 8):
        net.submit(4, b"op%d" % k)
    assert net.run_until_idle(3_000_000)
    net.run(500_000)
    r3, r0 = net.replicas([3, 0])
    assert r3.last_executed == r0.last_executed == 8
    notes = [n.detail for i, n in net.notes if i == 3 and n.kind == "state-transferred"]
    fetched = sum(b - a + 1 for a, b in notes)
    assert fetched >= 2
    normal = r3.last_executed - fetched  # executed after a pre-prepare, not fetched
    # every pre-prepare it was handed was checked (+1), every fetched batch checked twice and
    # executed (+3), every other batch executed (+1)
    pps = delivered["PrePrepare"]
    assert pps >= normal
    assert r3.counters()["hash_digest"] == pps + 3 * fetched + normal
    assert r0.counters()["hash_digest"] == 2 * r0.last_executed
