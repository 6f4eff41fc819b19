"""Crashes, recovery, partitions and lagging replicas: the pacemaker and block sync at work."""

from __future__ import annotations

import pytest
from hotstuff_harness import Network, executed_ops, safety_violations

from medbench.consensus.hotstuff import Block, Proposal, Replica, SyncResponse, Vote


def _submit(net: Network, rounds: int, tag: bytes = b"") -> None:
    for k in range(rounds):
        for c in net.client_ids:
            net.submit(c, b"%s%d-%d" % (tag, c, k))


def _converged(net: Network, ids: list[int]) -> bool:
    rs = net.replicas(ids)
    return len({(r.tree.height, r.state_digest) for r in rs}) == 1


@pytest.mark.parametrize(("n", "dead"), [(4, [1]), (4, [0]), (7, [1, 2]), (7, [0, 4])])
def test_crashed_leaders_do_not_stop_the_group(n: int, dead: list[int]) -> None:
    net = Network(n=n, clients=2, seed=11, view_timeout_us=50_000, client_timeout_us=300_000)
    for d in dead:
        net.crash(d)
    _submit(net, 5)
    assert net.run_until_idle(20_000_000)
    alive = [i for i in range(n) if i not in dead]
    assert safety_violations(net, alive) == []
    assert len(net.completed) == 10
    assert any(note.kind == "view-change" for _, note in net.notes)
    ops = {tuple(executed_ops(r)) for r in net.replicas(alive)}
    assert len(ops) == 1 and len(next(iter(ops))) == 10


def test_without_carried_votes_a_crashed_leader_stalls_n4(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why NEW-VIEW carries the last vote: with the paper's NEW-VIEW (highest QC only) every
    fourth leader of a round-robin n = 4 is the crashed replica, which swallows the votes on the
    third block of every chain; nothing ever commits (see ``medbench.consensus.hotstuff.
    pacemaker``)."""
    monkeypatch.setattr(Replica, "_carried_vote", lambda self: None)
    net = Network(n=4, clients=1, seed=5, view_timeout_us=50_000, client_timeout_us=300_000)
    net.crash(0)
    net.submit(4, b"x")
    assert not net.run_until_idle(5_000_000)
    assert all(r.tree.height == 0 for r in net.replicas([1, 2, 3]))
    assert safety_violations(net, [1, 2, 3]) == []


def test_a_view_change_costs_n_minus_2_new_views_with_one_replica_down() -> None:
    """Linear view change: on a timeout each live replica sends one NEW-VIEW to the next leader
    (whose own stays local), so (n - 2) messages per timed-out view with one replica down."""
    n = 7
    net = Network(n=n, clients=1, seed=3, view_timeout_us=50_000, client_timeout_us=500_000)
    net.crash(1)
    net.submit(n, b"x")
    assert net.run_until_idle(5_000_000)
    net.run(20_000)
    views = {note.detail for _, note in net.notes if note.kind == "view-change"}
    assert len(views) >= 1
    notes = sum(1 for _, note in net.notes if note.kind == "view-change")
    assert notes == (n - 1) * len(views)  # every live replica timed out once per such view
    assert net.stats.messages["new-view"] == (n - 2) * len(views)


@pytest.mark.parametrize("roundtrip", [False, True])
def test_crash_and_recover_from_persisted_records(roundtrip: bool) -> None:
    net = Network(n=4, clients=2, seed=21, view_timeout_us=60_000, disk_roundtrip=roundtrip)
    _submit(net, 3, b"a")
    assert net.run_until_idle(5_000_000)
    before = net.replicas([2])[0]
    height, digest = before.tree.height, before.state_digest
    net.crash(2)
    _submit(net, 3, b"b")  # committed while replica 2 is down
    assert net.run_until_idle(5_000_000)
    net.restart(2)
    back = net.replicas([2])[0]
    assert back is not before
    assert back.tree.height >= height and back.execution.last_timestamp  # replayed its ledger
    assert back.safety.last_voted_view == before.safety.last_voted_view
    assert back.safety.locked == before.safety.locked
    _submit(net, 2, b"c")
    assert net.run_until_idle(5_000_000)
    net.run(300_000)
    assert safety_violations(net, range(4)) == []
    assert _converged(net, [0, 1, 2, 3])
    assert executed_ops(back) == executed_ops(net.replicas([0])[0])
    assert digest != back.state_digest


def _equivocate(net: Network, p: Proposal) -> Proposal:
    """The leader of ``p``'s view signs a different block for the same view (it is faulty)."""
    b = p.block
    other = Block(b.view, b.height, b.parent, b.justify, b.timestamp + 1, (), b.proposer)
    forged = Proposal(other, p.timeout_cert, p.replica)
    return forged.with_auth(net.keyrings[p.replica].sign(forged.body()))


def _vote_then_crash(lose_votes: bool) -> tuple[Network, Proposal, list[str]]:
    """Replica 3 votes for the leader's block, crashes and restarts (possibly without its vote
    records); then the (faulty) leader offers it a conflicting block for the same view."""
    net = Network(n=4, clients=1, seed=4, latency_us=(1_000, 1_000), view_timeout_us=500_000)
    net.submit(4, b"x")
    while not any(v == 1 for (i, v) in net.votes_sent if i == 3):
        net.run(1_000)
    first = next(m for m in net.recent if isinstance(m, Proposal) and m.view == 1)
    net.crash(3)
    records = net.persisted[3]
    if lose_votes:
        records = [r for r in records if not isinstance(r, Vote)]
    net.restart(3, records)
    net.deliver_now(1, 3, _equivocate(net, first))
    return net, first, safety_violations(net, [0, 2, 3])


def test_a_restart_never_votes_twice_in_a_view() -> None:
    net, first, problems = _vote_then_crash(lose_votes=False)
    assert problems == []
    r = net.replicas([3])[0]
    assert r.rejections["no vote: already voted in this view or a later one"] == 1
    net.crash(3)
    net.restart(3)
    r = net.replicas([3])[0]
    again = net.deliver_now(1, 3, first)  # a repeat of the block it voted for: the same vote
    (send,) = again.messages
    assert send.msg == r.safety.last_vote and send.msg.block_hash == first.block.hash
    assert send.dsts == (2,) and again.persist == []  # nothing new to persist


def test_a_restart_that_lost_its_vote_record_would_vote_twice() -> None:
    """Not vacuous: the vote record is what prevents the double vote above."""
    _, _, problems = _vote_then_crash(lose_votes=True)
    assert problems == ["replica 3 voted for 2 different blocks in view 1"]


def test_a_restarted_leader_does_not_propose_twice_in_a_view() -> None:
    net = Network(n=4, clients=1, seed=9, latency_us=(1_000, 1_000))
    net.submit(4, b"x")
    while not net.stats.messages["proposal"]:
        net.run(500)
    leader = 1
    assert net.replicas([leader])[0].last_proposed_view == 1
    net.crash(leader)
    net.restart(leader)
    r = net.replicas([leader])[0]
    assert r.last_proposed_view == 1 and r.view >= 1
    r.pacemaker.certificates[1] = ()  # even if it believed it may propose in view 1 again
    r._maybe_propose()
    assert r.last_proposed_view == 1
    assert not any(isinstance(s.msg, Proposal) for s in r._ready.messages)


def test_every_replica_crashes_and_the_group_recovers() -> None:
    net = Network(n=4, clients=2, seed=13, view_timeout_us=50_000, client_timeout_us=200_000)
    _submit(net, 3, b"a")
    assert net.run_until_idle(5_000_000)
    heights = [r.tree.height for r in net.replicas()]
    for i in range(4):
        net.crash(i)
    for i in range(4):
        net.restart(i)
    assert [r.tree.height for r in net.replicas()] == heights
    _submit(net, 3, b"b")
    assert net.run_until_idle(10_000_000)
    net.run(300_000)
    assert safety_violations(net, range(4)) == []
    assert _converged(net, [0, 1, 2, 3])
    assert len(executed_ops(net.replicas()[0])) == 12


def test_a_split_without_a_quorum_stalls_then_heals() -> None:
    net = Network(n=4, clients=2, seed=17, view_timeout_us=30_000, client_timeout_us=100_000)
    net.partition([0, 1], [2, 3])
    _submit(net, 2)
    net.run(1_000_000)
    assert all(r.tree.height == 0 for r in net.replicas())  # neither half has a quorum
    assert safety_violations(net, range(4)) == []
    net.heal()
    assert net.run_until_idle(20_000_000)
    net.run(300_000)
    assert safety_violations(net, range(4)) == []
    assert len(net.completed) == 4


def test_a_minority_partition_catches_up_by_block_sync() -> None:
    """Replica 3 is cut off while many blocks commit; after the heal it fetches them in chunks
    of ``max_sync_blocks`` and ends with the same ledger."""
    net = Network(n=4, clients=2, seed=23, view_timeout_us=40_000, max_sync_blocks=4)
    net.isolated.add(3)
    _submit(net, 6)
    assert net.run_until_idle(20_000_000)
    lagging = net.replicas([3])[0]
    assert lagging.tree.height == 0
    ahead = net.replicas([0])[0].tree.height
    assert ahead > 8
    net.heal()
    _submit(net, 1, b"after")
    assert net.run_until_idle(10_000_000)
    net.run(500_000)
    assert safety_violations(net, range(4)) == []
    assert _converged(net, [0, 1, 2, 3])
    assert executed_ops(lagging) == executed_ops(net.replicas([0])[0])
    assert net.stats.messages["sync-response"] >= 3  # more than one chunk was needed
    assert any(note.kind == "sync" for i, note in net.notes if i == 3)


def test_a_fetched_chain_must_hash_down_from_a_wanted_block() -> None:
    net = Network(n=4, clients=1, seed=2, view_timeout_us=50_000)
    net.isolated.add(3)  # replica 3 knows no block
    for k in range(3):
        net.submit(4, b"x%d" % k)
    assert net.run_until_idle(5_000_000)
    donor = net.replicas([0])[0]
    blocks = tuple(reversed(donor.tree.ledger[1:])) + tuple(reversed(donor.tree.ledger[:1]))
    r: Replica = net.nodes[3]
    resp = SyncResponse(None, blocks, 0)
    r.step(0, resp.with_auth(net.keyrings[0].sign(resp.body())))
    assert r.rejections["unsolicited block"] == 1
    broken = SyncResponse(None, (blocks[0], blocks[2]), 0)
    r.fetcher.want(blocks[0].hash, r.now)
    r.step(0, broken.with_auth(net.keyrings[0].sign(broken.body())))
    assert r.rejections["broken chain: a block is not its successor's parent"] == 1
    assert r.tree.height == 0 and not r.tree.pending and not r.fetcher.staged
    r.step(0, resp.with_auth(net.keyrings[0].sign(resp.body())))  # the real chain, now wanted
    # the ledger's own three-chains commit all but its last blocks (their QCs are in later ones)
    assert r.tree.ledger == donor.tree.ledger[: len(r.tree.ledger)]
    assert r.tree.height >= donor.tree.height - 3
