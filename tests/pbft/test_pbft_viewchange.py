"""View changes: faulty primaries, timer backoff, and no committed request lost or reordered."""

from __future__ import annotations

import pytest
from pbft_harness import Network, safety_violations

from medbench.consensus.pbft import Replica, viewchange
from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft.messages import NULL_DIGEST, NewView, PrePrepare, ViewChange


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
    T = 100_000
    net = Network(n=7, clients=1, seed=17, view_change_timeout_us=T)
    net.nodes[0] = faults.SilentPrimary(net.nodes[0])
    net.nodes[1] = faults.SilentPrimary(net.nodes[1])
    net.submit(7, b"x")
    # when replica 3's timers start and fire, to the tick (1 ms)
    timer_started: dict[int, int] = {}
    changed_at: dict[int, int] = {}
    seen = 0
    r3: Replica = net.replicas([3])[0]
    for _ in range(2_000):
        net.run(1_000)
        if r3.pending and 0 not in timer_started:
            timer_started[0] = min(t for t, _ in r3.pending.values())
        if r3.view == 1 and not r3.active and r3.vc_deadline is not None:
            timer_started.setdefault(1, net.now)
        for i, note in net.notes[seen:]:
            if i == 3 and note.kind == "view-change":
                changed_at[note.detail] = net.now
        seen = len(net.notes)
        if r3.view == 2 and r3.active:
            break
    assert sorted(changed_at) == [1, 2]
    first = changed_at[1] - timer_started[0]
    second = changed_at[2] - timer_started[1]
    # observed to the tick (1 ms): the request timer is T, the next view's timer after one
    # unsuccessful change 2T
    assert abs(first - T) <= 2_000
    assert abs(second - 2 * T) <= 2_000
    assert net.run_until_idle(20_000_000)
    assert {r.view for r in net.replicas(range(2, 7))} == {2}
    assert r3._timeout() == T and r3.vc_backoff == 0  # progress resets the backoff


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
    """docs/medical-chain.md §1.7 step 6: mismatching v, n or digest -> discarded, no view
    change."""
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


def _stuck_entering_view_1(scheme: str, net_fault: str) -> Network:
    """Primary 0 is silent; the NEW-VIEW of primary 1 cannot reach replica 2 directly.

    ``net_fault`` is ``"hole"`` (1 says nothing at all) or ``"cut"`` (only the 1-2 link is cut).
    Runs until replica 2 waits in view 1 and replica 3 holds 2f+1 view changes for view 1.
    """
    net = Network(
        n=4, clients=1, seed=1, scheme=scheme, view_change_timeout_us=50_000,
        client_timeout_us=40_000,
    )  # fmt: skip
    net.nodes[0] = faults.SilentPrimary(net.nodes[0])
    if net_fault == "hole":
        net.black_holes.add(1)
    else:
        net.cut_link(1, 2)
    net.submit(4, b"x")
    for _ in range(400):
        net.run(2_000)
        r1, r2, r3 = net.replicas([1, 2, 3])
        if net_fault == "hole":
            ready = len(r3.view_changes.get(1, {})) >= 3
        else:
            ready = r1.last_new_view is not None
        if ready and r2.view == 1 and not r2.active:
            return net
    raise AssertionError("the scenario did not reach view 1 in time")


def _forged_new_view(net: Network, forger: int, claimed: int) -> NewView:
    """A NEW-VIEW for view 1 built by ``forger`` from the view changes it really collected,
    naming ``claimed`` as its primary and authenticated with the forger's own key."""
    vcs = net.replicas([forger])[0].view_changes[1]
    chosen = tuple(vcs[r] for r in sorted(vcs))[:3]
    plan = viewchange.plan_new_view(chosen)
    keys = net.keyrings[forger]
    pps = []
    for s, (ts, batch, d) in sorted(plan.batches.items()):
        pp = PrePrepare(1, s, d, ts, batch, claimed)
        pps.append(pp.with_auth(keys.sign(pp.body())))
    nv = NewView(1, chosen, tuple(pps), claimed)
    return nv.with_auth(keys.sign(nv.body()))


@pytest.mark.parametrize("scheme", ["modeled", "signatures", "macs"])
def test_new_view_forged_by_a_backup_is_rejected(scheme: str) -> None:
    """BUG-1: replica 3 builds a NEW-VIEW in primary 1's name from real view changes."""
    net = _stuck_entering_view_1(scheme, "hole")
    r2 = net.replicas([2])[0]
    before = r2.rejections["not authentic"]
    net.deliver_now(3, 2, _forged_new_view(net, forger=3, claimed=1))
    assert r2.rejections["not authentic"] == before + 1
    assert (r2.view, r2.active) == (1, False)
    # naming itself as primary of view 1 does not help either
    net.deliver_now(3, 2, _forged_new_view(net, forger=3, claimed=3))
    assert r2.rejections["new-view not from the new primary"] == 1
    assert (r2.view, r2.active) == (1, False)
    assert r2.last_new_view is None


@pytest.mark.parametrize("scheme", ["modeled", "signatures", "macs"])
def test_genuine_new_view_relayed_by_another_replica_is_accepted(scheme: str) -> None:
    """The NEW-VIEW is checked against its primary, so a relay by any replica installs it.

    With MACs this works too: the primary's authenticator has an entry for every replica, so the
    relayed copy still carries replica 2's entry under the 1-2 session key.
    """
    net = _stuck_entering_view_1(scheme, "cut")
    nv = net.replicas([1])[0].last_new_view
    assert nv is not None and nv.view == 1
    r2 = net.replicas([2])[0]
    rejected = sum(r2.rejections.values())
    net.deliver_now(3, 2, nv)
    assert (r2.view, r2.active) == (1, True)
    assert sum(r2.rejections.values()) == rejected
    assert r2.last_new_view == nv
    # the tampered copy of a relayed NEW-VIEW is refused
    net2 = _stuck_entering_view_1(scheme, "cut")
    nv2 = net2.replicas([1])[0].last_new_view
    assert nv2 is not None
    bad = NewView(nv2.view, nv2.view_changes[1:], nv2.pre_prepares, nv2.replica, nv2.auth)
    r2 = net2.replicas([2])[0]
    net2.deliver_now(3, 2, bad)
    assert r2.rejections["not authentic"] == 1
    assert (r2.view, r2.active) == (1, False)


def test_relayed_new_view_brings_a_cut_off_replica_into_the_view() -> None:
    """End to end: replica 2 never hears primary 1; its re-sent VIEW-CHANGE is answered with
    the NEW-VIEW by a replica already in view 1, and replica 2 installs it."""
    net = _stuck_entering_view_1("signatures", "cut")
    net.run(100_000)  # one view-change resend period and a round trip
    assert (2, 1) in _notes(net, "new-view")
    r2 = net.replicas([2])[0]
    assert r2.rejections["not authentic"] == 0
    assert safety_violations(net, [1, 2, 3]) == []


def test_early_message_buffer_is_per_sender(net4: Network) -> None:
    """A Byzantine replica flooding early votes of the coming view fills only its own share:
    an honest replica's early PREPARE of that view is still kept and replayed."""
    from medbench.consensus.pbft.messages import Prepare
    from medbench.consensus.pbft.replica import FUTURE_LIMIT

    r: Replica = net4.nodes[2]
    r.start_view_change(1)
    assert (r.view, r.active) == (1, False)
    keys = net4.keyrings

    def prepare(sender: int, s: int) -> Prepare:
        p = Prepare(1, s, bytes([s % 256]) * 32, sender)
        return p.with_auth(keys[sender].sign(p.body()))

    for k in range(FUTURE_LIMIT * r.n):  # as much as the whole buffer used to hold
        r.step(3, prepare(3, 1 + k))
    assert [src for src, _ in r.future[1]] == [3] * FUTURE_LIMIT
    assert r.rejections["early-message buffer full"] == FUTURE_LIMIT * (r.n - 1)
    honest = prepare(0, 1)
    r.step(0, honest)
    assert (0, honest) in r.future[1]
    assert r.rejections["wrong view"] == 0
    # once the NEW-VIEW is in, the kept messages are replayed and the buffer is empty
    r.install_view(1, viewchange.plan_new_view([r.own_view_changes[1]]), ())
    assert r.future == {} and sum(r.future_count.values()) == 0
