"""View changes: faulty primaries, timer backoff, and no committed request lost or reordered."""

from __future__ import annotations

import pytest
from pbft_harness import Network, safety_violations

from medbench import faults
from medbench.consensus.pbft import Replica
from medbench.consensus.pbft.messages import NULL_DIGEST, NewView, ViewChange


def _notes(net: Network, kind: str) -> list:
    return [(i, n.detail) for i, n in net.notes if n.kind == kind]


def test_silent_primary_is_replaced() -> None:
    net = Network(n=4, clients=2, seed=11, view_change_timeout_us=100_000)
    net.nodes[0] = faults.SilentPrimary(net.nodes[0])
    for k in range(3):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(10_000_000)
    assert {r.view for r in net.replicas()} == {1}
    assert safety_violations(net, [1, 2, 3]) == []
    assert len(net.completed) == 6


def test_view_change_keeps_prepared_batches_at_their_sequence() -> None:
    """Batches prepared in view 0 but not committed are re-issued in view 1 unchanged."""
    net = Network(n=4, clients=1, seed=12, view_change_timeout_us=100_000)
    net.submit(4, b"first")
    assert net.run_until_idle(2_000_000)
    # second request: every COMMIT is lost, so it prepares everywhere but commits nowhere
    net.submit(4, b"second")
    # drop commits by swallowing them at the sender
    for i in range(4):
        net.nodes[i] = _DropCommits(net.nodes[i])
    net.run(50_000)
    prepared = {r.log.get(2).proof is not None for r in net.replicas()}
    assert prepared == {True}
    assert all(r.last_executed == 1 for r in net.replicas())
    digest = net.replicas()[1].log.get(2).digest
    for i in range(4):
        net.nodes[i] = net.nodes[i].inner
    net.nodes[0] = faults.SilentPrimary(net.nodes[0])
    assert net.run_until_idle(10_000_000)
    for i in (1, 2, 3):
        assert net.committed[i][2].batch_digest == digest
        assert net.committed[i][2].requests[0].operation == b"second"
    assert safety_violations(net, [1, 2, 3]) == []


class _DropCommits(faults.Byzantine):
    def outgoing(self, send):  # type: ignore[no-untyped-def]
        return [] if send.msg.kind == "commit" else [send]


def test_null_requests_fill_gaps() -> None:
    """A sequence no honest replica prepared becomes a null request in the new view."""
    net = Network(n=4, clients=3, seed=13, view_change_timeout_us=100_000)
    net.nodes[0] = _SkipSequence(net.nodes[0])
    for c, op in zip(net.client_ids, (b"x", b"y", b"z"), strict=True):
        net.submit(c, op)
        net.run(5_000)  # one request per batch: sequences 1, 2, 3
    assert net.run_until_idle(10_000_000)
    for i in (1, 2, 3):
        log = net.committed[i]
        nulls = [s for s, b in log.items() if b.batch_digest == NULL_DIGEST]
        assert nulls, "the gap was filled with a null request"
        assert all(log[s].items == () for s in nulls)
    assert safety_violations(net, [1, 2, 3]) == []


class _SkipSequence(faults.Byzantine):
    """A primary that proposes sequence 2 only to replica 1 (which alone cannot prepare it)."""

    def outgoing(self, send):  # type: ignore[no-untyped-def]
        m = send.msg
        if m.kind == "pre-prepare" and m.sequence == 2 and m.view == 0:
            return [type(send)((1,), m)]
        return [send]


def test_equivocating_primary_cannot_split_honest_replicas() -> None:
    net = Network(n=4, clients=2, seed=14, view_change_timeout_us=100_000)
    net.nodes[0] = faults.EquivocatingPrimary(net.nodes[0])
    for k in range(4):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(10_000_000)
    assert safety_violations(net, [1, 2, 3]) == []


def test_altering_primary_is_detected_and_replaced() -> None:
    net = Network(n=4, clients=1, seed=15, view_change_timeout_us=100_000)
    net.nodes[0] = faults.AlteringPrimary(net.nodes[0])
    net.submit(4, b"record")
    assert net.run_until_idle(10_000_000)
    backups = net.replicas([1, 2, 3])
    assert sum(r.rejections["request not authentic"] for r in backups) >= 2
    for r in backups:
        assert r.view >= 1
        ops = [q.operation for b in net.committed[r.node_id].values() for q in b.requests]
        assert ops == [b"record"]


def test_dropping_primary_triggers_a_view_change() -> None:
    net = Network(n=4, clients=2, seed=16, view_change_timeout_us=100_000)
    net.nodes[0] = faults.DroppingPrimary(net.nodes[0], victims=[4])
    net.submit(4, b"victim")
    net.submit(5, b"other")
    assert net.run_until_idle(10_000_000)
    assert {r.view for r in net.replicas([1, 2, 3])} == {1}
    assert len(net.completed) == 2


def test_timeouts_back_off_exponentially() -> None:
    """Two faulty primaries in a row (n=7, f=2): the second view change waits twice as long."""
    net = Network(n=7, clients=1, seed=17, view_change_timeout_us=100_000)
    net.nodes[0] = faults.SilentPrimary(net.nodes[0])
    net.nodes[1] = faults.SilentPrimary(net.nodes[1])
    net.submit(7, b"x")
    assert net.run_until_idle(20_000_000)
    assert {r.view for r in net.replicas(range(2, 7))} == {2}
    r3: Replica = net.replicas([3])[0]
    # view 1's primary is silent too: replica 3 changed view twice, the second time after
    # waiting for a doubled timeout (backoff 1 -> timer 2T), then progress reset the backoff
    changes = [n.detail for i, n in net.notes if i == 3 and n.kind == "view-change"]
    assert changes == [1, 2]
    assert r3._timeout() == net.config.view_change_timeout_us
    assert r3.vc_backoff == 0  # progress resets the backoff


def test_backoff_doubles_the_view_change_timer() -> None:
    net = Network(n=4, clients=1, seed=18, view_change_timeout_us=100_000)
    r: Replica = net.nodes[1]
    base = net.config.view_change_timeout_us
    assert r._timeout() == base
    r.vc_backoff = 1
    assert r._timeout() == 2 * base
    r.vc_backoff = 3
    assert r._timeout() == 8 * base
    r.vc_backoff = 100
    assert r._timeout() == net.config.max_view_change_timeout_us


def test_forged_view_change_and_new_view_are_rejected(net4: Network) -> None:
    r: Replica = net4.nodes[2]
    vc = ViewChange(1, 0, (), (), 1)
    r.step(1, vc)  # no authenticator
    assert r.rejections["not authentic"] == 1
    nv = NewView(1, (), (), 1)
    object.__setattr__(nv, "auth", net4.keyrings[1].sign(nv.body()))
    r.step(1, nv)
    assert r.rejections["too few view changes"] == 1
    assert r.view == 0 and r.active


@pytest.mark.parametrize("field", ["view", "sequence", "digest"])
def test_malformed_votes_of_a_backup_are_discarded(field: str) -> None:
    """PAPER.md §1.7 step 6: mismatching v, n or digest -> discarded, no view change."""
    net = Network(n=4, clients=2, seed=19)
    net.nodes[2] = faults.BadVoter(net.nodes[2], field)
    for k in range(4):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(5_000_000)
    assert {r.view for r in net.replicas()} == {0}
    assert not [n for _, n in net.notes if n.kind == "view-change"]
    assert safety_violations(net, [0, 1, 3]) == []
    assert len(net.completed) == 8
    # each slot's certificate holds only matching prepares: never one of the bad voter's
    for r in net.replicas([0, 1, 3]):
        for slot in r.log:
            if slot.proof is not None:
                assert 2 not in {p.replica for p in slot.proof.prepares}


def test_a_backup_dropping_everything_changes_nothing() -> None:
    net = Network(n=4, clients=2, seed=20)
    net.black_holes.add(3)
    for k in range(4):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(5_000_000)
    assert {r.view for r in net.replicas()} == {0}
    assert len(net.completed) == 8
