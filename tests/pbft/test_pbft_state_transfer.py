"""State transfer and recovery: catching up from peers, verified before use."""

from __future__ import annotations

import contextlib

from pbft_harness import Network, safety_violations

from medbench.consensus.pbft import Replica, Request
from medbench.consensus.pbft.messages import (
    Fetch,
    PrePrepare,
    State,
    StateBatch,
    compute_batch_digest,
)


def _behind_network() -> Network:
    net = Network(n=4, clients=2, seed=21, checkpoint_interval=4, log_window=8, max_batch_size=1)
    net.isolated.add(3)
    for k in range(8):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(10_000_000)
    return net


def test_lagging_replica_catches_up_by_state_transfer() -> None:
    net = _behind_network()
    r3: Replica = net.nodes[3]
    assert r3.last_executed == 0
    net.heal()
    for k in range(8, 12):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(10_000_000)
    net.run(500_000)
    notes = [n.kind for i, n in net.notes if i == 3]
    assert "state-transfer" in notes and "state-transferred" in notes
    assert r3.last_executed == net.nodes[0].last_executed
    assert r3.state_digest == net.nodes[0].state_digest
    assert r3.chain.ids == net.nodes[0].chain.ids
    assert safety_violations(net, range(4)) == []


def test_state_answers_are_verified_before_use() -> None:
    net = _behind_network()
    good: Replica = net.nodes[0]
    r3: Replica = net.nodes[3]
    stable = good.checkpoints.stable
    assert stable >= 4
    batches = tuple(
        StateBatch(s, good.history[s].timestamp, good.history[s].items)
        for s in range(1, stable + 1)
    )
    keys = net.keyrings[0]

    def sealed(msg):  # type: ignore[no-untyped-def]
        object.__setattr__(msg, "auth", keys.sign(msg.body()))
        return msg

    # a tampered batch: one request replaced
    forged_req = Request(4, 99, b"evil")
    bad = list(batches)
    bad[0] = StateBatch(1, batches[0].timestamp, (forged_req,))
    r3.step(0, sealed(State(1, stable, tuple(bad), good.checkpoints.stable_proof, 0)))
    assert r3.rejections["state does not match its proof"] == 1
    # a proof with too few checkpoints
    r3.step(0, sealed(State(1, stable, batches, good.checkpoints.stable_proof[:1], 0)))
    assert r3.rejections["bad checkpoint proof"] == 1
    # a forged sender
    r3.step(1, sealed(State(1, stable, batches, good.checkpoints.stable_proof, 0)))
    assert r3.rejections["forged sender"] == 1
    assert r3.last_executed == 0
    # the genuine answer is applied
    r3.step(0, sealed(State(1, stable, batches, good.checkpoints.stable_proof, 0)))
    assert r3.last_executed == stable
    assert r3.state_digest == good.history[stable].state_digest


def test_fetch_is_answered_only_from_a_stable_checkpoint(net4: Network) -> None:
    r: Replica = net4.nodes[0]
    f = Fetch(1, 2)
    object.__setattr__(f, "auth", net4.keyrings[2].sign(f.body()))
    ready = r.step(2, f)
    assert ready.messages == []
    assert r.rejections["nothing to transfer"] == 1


def test_crashed_replica_recovers_from_persisted_records() -> None:
    net = Network(n=4, clients=2, seed=22, checkpoint_interval=4, log_window=8, max_batch_size=1)
    for k in range(5):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    net.run(8_000)
    net.crash(2)
    assert net.run_until_idle(10_000_000)
    before = dict(net.committed[2])
    net.restart(2)
    r2: Replica = net.nodes[2]
    assert r2.last_executed == max(before, default=0)  # replayed from its own records
    for k in range(5, 10):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(10_000_000)
    net.run(500_000)
    assert r2.last_executed == net.nodes[0].last_executed
    assert r2.chain.ids == net.nodes[0].chain.ids
    assert safety_violations(net, range(4)) == []
    executed = [q.digest() for b in net.committed[2].values() for q in b.requests]
    assert len(executed) == len(set(executed))


def test_recovered_replica_does_not_vote_twice() -> None:
    net = Network(n=4, clients=1, seed=23)
    net.nodes[0] = _Withhold(net.nodes[0])  # commits never leave the primary: nothing commits
    net.submit(4, b"x")
    net.run(20_000)
    r1: Replica = net.nodes[1]
    pp = r1.log.get(1).pre_prepare
    assert pp is not None
    net.crash(1)
    net.restart(1)
    r1 = net.nodes[1]
    assert r1.log.get(1).digest == pp.batch_digest
    # the primary now equivocates: another batch for (view 0, sequence 1)
    keys = net.keyrings[0]
    other = PrePrepare(0, 1, compute_batch_digest(5, ()), 5, (), 0)
    object.__setattr__(other, "auth", keys.sign(other.body()))
    ready = r1.step(0, other)
    assert ready.messages == []
    assert r1.rejections["conflicting pre-prepare"] == 1


class _Withhold:
    def __init__(self, inner: Replica) -> None:
        self.inner = inner
        self.node_id = inner.node_id

    def step(self, src, msg):  # type: ignore[no-untyped-def]
        return self._filter(self.inner.step(src, msg))

    def tick(self, now):  # type: ignore[no-untyped-def]
        return self._filter(self.inner.tick(now))

    def _filter(self, ready):  # type: ignore[no-untyped-def]
        ready.messages = [s for s in ready.messages if s.msg.kind != "commit"]
        return ready


def test_crashable_wrapper_recovers_from_its_own_records() -> None:
    from medbench.faults import Crashable

    net = Network(n=4, clients=2, seed=24, checkpoint_interval=4, log_window=8, max_batch_size=1)
    node = Crashable(net.nodes[1])
    net.nodes[1] = node
    for k in range(4):
        net.submit(4, b"a%d" % k)
    assert net.run_until_idle(5_000_000)
    executed = node.inner.last_executed
    assert executed == 4 and node.records
    node.crash()
    assert not node.step(0, object()) and not node.tick(net.now)
    for k in range(4, 10):
        net.submit(4, b"a%d" % k)
    assert net.run_until_idle(5_000_000)
    net._apply(1, node.recover(net.now))
    assert node.inner.last_executed == executed  # replayed, nothing lost, nothing new yet
    for k in range(10, 14):
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(5_000_000)
    net.run(500_000)
    assert node.inner.last_executed == net.nodes[0].last_executed
    assert node.inner.state_digest == net.nodes[0].state_digest


def test_persisted_records_roundtrip_through_bytes_and_recover() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from medbench.consensus.pbft import MessageError
    from medbench.consensus.pbft.persist import decode_record, encode_record

    net = Network(n=4, clients=2, seed=25, checkpoint_interval=4, log_window=8, max_batch_size=1)
    for k in range(6):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(5_000_000)
    records = net.persisted[1]
    blobs = [encode_record(r) for r in records]
    kinds = {type(r).__name__ for r in records}
    assert {"ExecutedBatch", "StableRecord", "PreparedProof", "Prepare", "Commit"} <= kinds
    decoded = [decode_record(b) for b in blobs]
    assert [encode_record(r) for r in decoded] == blobs
    r1: Replica = net.nodes[1]
    again, _ = Replica.recover(1, net.config, net.keyrings[1], decoded)
    assert again.last_executed == r1.last_executed
    assert again.state_digest == r1.state_digest
    assert again.chain.ids == r1.chain.ids
    assert again.checkpoints.stable == r1.checkpoints.stable

    @settings(max_examples=200, deadline=None)
    @given(st.sampled_from(blobs), st.data())
    def corrupted(blob: bytes, data: st.DataObject) -> None:
        raw = bytearray(blob)
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
        with contextlib.suppress(MessageError):  # anything else escaping fails the test
            decode_record(bytes(raw))

    corrupted()
