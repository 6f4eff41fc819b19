"""Crashes, recovery, partitions and lagging followers: elections and snapshots at work."""

from __future__ import annotations

import pytest
from raft_harness import Network, executed_ops, safety_violations

from medbench.consensus.raft import HardState, RequestVote, Role


def _submit(net: Network, rounds: int, tag: bytes = b"") -> None:
    for k in range(rounds):
        for c in net.client_ids:
            net.submit(c, b"%s%d-%d" % (tag, c, k))


def _converged(net: Network, ids: list[int]) -> bool:
    return len({(r.last_applied, r.state_digest) for r in net.replicas(ids)}) == 1


@pytest.mark.parametrize("n", [3, 5, 7])
def test_a_crashed_leader_is_replaced(n: int) -> None:
    net = Network(n=n, clients=2, seed=13, election_timeout_us=50_000, client_timeout_us=150_000)
    first = net.run_until_leader()
    _submit(net, 2, b"a")
    assert net.run_until_idle(5_000_000)
    net.crash(first)
    _submit(net, 3, b"b")
    assert net.run_until_idle(10_000_000)
    alive = [i for i in range(n) if i != first]
    second = net.run_until_leader()
    assert second != first and net.replicas([second])[0].term > 1
    net.run(200_000)
    assert safety_violations(net, range(n)) == []
    assert _converged(net, alive)
    assert len(executed_ops(net.replicas([second])[0], net)) == 10


@pytest.mark.parametrize("roundtrip", [False, True])
def test_crash_and_recover_from_persisted_records(roundtrip: bool) -> None:
    net = Network(n=3, clients=2, seed=17, election_timeout_us=50_000, disk_roundtrip=roundtrip)
    _submit(net, 3, b"a")
    assert net.run_until_idle(5_000_000)
    net.run(100_000)
    follower = next(r for r in net.replicas() if r.role is Role.FOLLOWER)
    before = (follower.term, follower.voted_for, follower.last_applied, follower.state_digest)
    net.crash(follower.node_id)
    _submit(net, 3, b"b")
    assert net.run_until_idle(5_000_000)
    net.restart(follower.node_id)
    back = net.replicas([follower.node_id])[0]
    assert (back.term, back.voted_for, back.last_applied, back.state_digest) == before
    _submit(net, 1, b"c")
    assert net.run_until_idle(5_000_000)
    net.run(200_000)
    assert safety_violations(net, range(3)) == []
    assert _converged(net, [0, 1, 2])
    assert back.machine.applied == 14


def _vote_then_crash(lose_hard_state: bool) -> Network:
    """Node 2 votes for candidate 0 in term 1 (which wins), crashes at once and restarts
    (possibly without its term-and-vote records); then candidate 1 asks it for a vote in the
    same term. Messages are delivered by hand, in this order."""
    net = Network(n=3, clients=0, seed=1, election_timeout_us=10_000_000)

    def campaign(i: int) -> RequestVote:
        r = net.replicas([i])[0]
        ready = r.tick(r.election_deadline)
        net._apply(i, ready)  # records the persist list and notes (nothing is run)
        assert r.term == 1
        return next(s.msg for s in ready.messages if isinstance(s.msg, RequestVote))

    vote = net.deliver_now(0, 2, campaign(0)).messages[0].msg
    net.deliver_now(2, 0, vote)
    assert net.leaders[1] == {0}
    net.crash(2)
    records = net.persisted[2]
    if lose_hard_state:
        records = [r for r in records if not isinstance(r, HardState)]
    net.restart(2, records)
    answer = net.deliver_now(1, 2, campaign(1)).messages[0].msg
    net.deliver_now(2, 1, answer)
    return net


def test_a_restart_never_votes_twice_in_a_term() -> None:
    net = _vote_then_crash(lose_hard_state=False)
    assert net.leaders.get(1, set()) == {0}
    assert safety_violations(net, range(3)) == []


def test_a_restart_that_lost_its_vote_would_elect_two_leaders() -> None:
    """Not vacuous: the persisted vote is what keeps Election Safety across a restart."""
    net = _vote_then_crash(lose_hard_state=True)
    assert net.leaders[1] == {0, 1}
    assert safety_violations(net, range(3)) == ["term 1 has 2 leaders: [0, 1]"]


def test_a_leader_cut_off_in_a_minority_is_replaced_and_its_tail_discarded() -> None:
    net = Network(n=5, clients=2, seed=19, election_timeout_us=50_000, client_timeout_us=100_000)
    old = net.run_until_leader()
    _submit(net, 1, b"a")
    assert net.run_until_idle(5_000_000)
    net.run(100_000)
    minority = [old, (old + 1) % 5]
    majority = [i for i in range(5) if i not in minority]
    net.partition([*minority, 5], [*majority, 6])  # client 5 talks to the old leader only
    net.nodes[5].leader = old
    net.nodes[6].leader = majority[0]
    net.submit(5, b"lost?")  # appended by the old leader, never committed
    net.submit(6, b"kept")
    net.run(1_000_000)
    old_r = net.replicas([old])[0]
    assert old_r.role is Role.LEADER and old_r.log.last_index > old_r.commit_index
    new = max(majority, key=lambda i: net.replicas([i])[0].role is Role.LEADER)
    assert net.replicas([new])[0].role is Role.LEADER
    assert net.replicas([new])[0].term > old_r.term
    net.heal()
    assert net.run_until_idle(10_000_000)  # client 5 retries elsewhere and completes
    net.run(300_000)
    assert net.replicas([old])[0].role is Role.FOLLOWER
    assert safety_violations(net, range(5)) == []
    assert _converged(net, list(range(5)))
    ops = executed_ops(net.replicas([new])[0], net)
    assert ops.count((5, b"lost?")) == 1 and ops.count((6, b"kept")) == 1


def test_a_lagging_follower_catches_up_by_snapshot() -> None:
    net = Network(n=3, clients=2, seed=23, election_timeout_us=50_000, snapshot_interval=4)
    leader = net.run_until_leader()
    lagging = (leader + 1) % 3
    net.isolated.add(lagging)
    for c in net.client_ids:
        net.nodes[c].leader = leader
    _submit(net, 8, b"a")
    assert net.run_until_idle(10_000_000)
    ahead = net.replicas([leader])[0]
    assert ahead.log.snapshot_index >= 8  # compacted: the follower's next entries are gone
    net.heal()
    net.run(300_000)
    assert any(note.kind == "snapshot-installed" for i, note in net.notes if i == lagging)
    assert safety_violations(net, range(3)) == []
    assert _converged(net, [0, 1, 2])
    behind = net.replicas([lagging])[0]
    assert behind.machine.last == ahead.machine.last  # the exactly-once table came along
    _submit(net, 1, b"b")  # and it keeps replicating normally afterwards
    assert net.run_until_idle(5_000_000)
    net.run(200_000)
    assert _converged(net, [0, 1, 2])


def test_a_restart_with_snapshots_recovers_state_and_log() -> None:
    net = Network(n=3, clients=1, seed=29, election_timeout_us=50_000, snapshot_interval=3)
    _submit(net, 10)
    assert net.run_until_idle(10_000_000)
    net.run(100_000)
    for i in range(3):
        net.crash(i)
    for i in range(3):
        net.restart(i)
    assert all(r.machine.applied == 10 for r in net.replicas())
    assert all(r.log.snapshot_index >= 3 for r in net.replicas())
    _submit(net, 2, b"after")
    assert net.run_until_idle(10_000_000)
    net.run(100_000)
    assert safety_violations(net, range(3)) == []
    assert _converged(net, [0, 1, 2])
    assert all(r.machine.applied == 12 for r in net.replicas())


def test_a_split_without_a_majority_stalls_then_heals() -> None:
    net = Network(n=4, clients=2, seed=31, election_timeout_us=30_000, client_timeout_us=60_000)
    net.partition([0, 1, 4], [2, 3, 5])
    _submit(net, 1)
    net.run(1_000_000)
    assert all(r.commit_index == 0 for r in net.replicas())  # 2 of 4 is no majority
    assert not any(net.leaders.values())
    net.heal()
    assert net.run_until_idle(10_000_000)
    net.run(200_000)
    assert safety_violations(net, range(4)) == []
    assert len(net.completed) == 2
