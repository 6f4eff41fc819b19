"""State transfer and recovery: catching up from peers, verified before use."""

from __future__ import annotations

import contextlib

from pbft_harness import Network, safety_violations

from medbench.consensus.pbft import Replica, Request
from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft.messages import (
    Fetch,
    NewView,
    Prepare,
    PrePrepare,
    State,
    StateBatch,
    ViewChange,
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


class _DropCommits(faults.Byzantine):
    def outgoing(self, send):  # type: ignore[no-untyped-def]
        return [] if send.msg.kind == "commit" else [send]


def _backup_in_view_1_with_a_reissued_batch() -> tuple[Network, bytes]:
    """Sequence 1 prepares in view 0 but commits nowhere; primary 0 falls silent, view 1
    re-issues it through the NEW-VIEW. Returns the network and the re-issued digest."""
    net = Network(n=4, clients=1, seed=12, view_change_timeout_us=100_000)
    for i in range(4):
        net.nodes[i] = _DropCommits(net.nodes[i])
    net.submit(4, b"second")
    net.run(50_000)
    net.nodes[0] = _DropCommits(faults.SilentPrimary(net.nodes[0].inner))
    for _ in range(500):
        net.run(5_000)
        r2 = net.replicas([2])[0]
        if r2.view == 1 and r2.active:
            slot = r2.log.get(1)
            assert slot is not None and slot.pre_prepare is not None
            assert slot.pre_prepare.view == 1 and not slot.committed
            return net, slot.pre_prepare.batch_digest
    raise AssertionError("view 1 was not installed in time")


def _conflicting_pre_prepare(net: Network) -> PrePrepare:
    """Primary 1 (now faulty) proposes another batch for (view 1, sequence 1)."""
    other = PrePrepare(1, 1, compute_batch_digest(5, ()), 5, (), 1)
    return other.with_auth(net.keyrings[1].sign(other.body()))


def _own_votes(net: Network, i: int, sends: list) -> set[tuple[int, int, bytes]]:
    """Every (view, sequence, digest) replica ``i`` prepared, from its records and ``sends``."""
    msgs = [r for r in net.persisted[i] if isinstance(r, Prepare)]
    msgs += [s.msg for s in sends if isinstance(s.msg, Prepare)]
    return {(m.view, m.sequence, m.batch_digest) for m in msgs if m.replica == i}


def test_restarted_backup_keeps_the_pre_prepares_of_its_new_view() -> None:
    """BUG-2: the NEW-VIEW a backup persisted is replayed on restart, so it refuses a second
    batch for a (view, sequence) it already prepared."""
    net, digest = _backup_in_view_1_with_a_reissued_batch()
    net.crash(2)
    net.restart(2)
    r2: Replica = net.nodes[2]
    assert (r2.view, r2.active) == (1, True)
    slot = r2.log.get(1)
    assert slot is not None and slot.pre_prepare is not None
    assert (slot.pre_prepare.view, slot.digest) == (1, digest)
    assert r2.last_new_view is not None and r2.last_new_view.view == 1
    ready = r2.step(1, _conflicting_pre_prepare(net))
    assert [s for s in ready.messages if isinstance(s.msg, Prepare)] == []
    assert r2.rejections["conflicting pre-prepare"] == 1
    votes = _own_votes(net, 2, ready.messages)
    assert len({d for v, s, d in votes if (v, s) == (1, 1)}) == 1


def test_restarted_backup_never_prepares_against_its_own_prepare() -> None:
    """Even with the pre-prepare record gone, the PREPARE it persisted forbids a second vote."""
    net, digest = _backup_in_view_1_with_a_reissued_batch()
    net.crash(2)
    net.persisted[2] = [r for r in net.persisted[2] if not isinstance(r, NewView)]
    net.restart(2)
    r2: Replica = net.nodes[2]
    ready = r2.step(1, _conflicting_pre_prepare(net))
    assert [s for s in ready.messages if isinstance(s.msg, Prepare)] == []
    assert r2.rejections["contradicts own prepare"] == 1
    assert (1, 1, digest) in _own_votes(net, 2, [])


def test_restarted_primary_remembers_its_new_view() -> None:
    """A new primary that restarts keeps its NEW-VIEW (to relay) and never builds another."""
    net, digest = _backup_in_view_1_with_a_reissued_batch()
    net.crash(1)
    net.restart(1)
    r1 = net.replicas([1])[0]
    assert (r1.view, r1.active) == (1, True)
    assert 1 in r1.new_view_sent
    assert r1.last_new_view is not None and r1.last_new_view.replica == 1
    assert r1.next_sequence >= 1 and r1.log.get(1).digest == digest  # type: ignore[union-attr]


def test_replica_restarted_while_entering_a_view_resends_its_view_change() -> None:
    net = Network(n=4, clients=1, seed=26, view_change_timeout_us=50_000)
    net.nodes[0] = faults.SilentPrimary(net.nodes[0])
    net.black_holes.add(1)  # the next primary is silent too: view 1 is never installed
    net.submit(4, b"x")
    for _ in range(200):
        net.run(5_000)
        if net.replicas([2])[0].view >= 1:
            break
    r2 = net.replicas([2])[0]
    assert not r2.active
    view, own = r2.view, r2.own_view_changes[r2.view]
    net.crash(2)
    net.restart(2)
    r2 = net.nodes[2]
    assert (r2.view, r2.active) == (view, False)
    ready = r2.tick(net.now + 1)
    assert [s.msg for s in ready.messages if isinstance(s.msg, ViewChange)] == [own]


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
    from medbench.consensus.pbft.byzantine import Crashable

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
