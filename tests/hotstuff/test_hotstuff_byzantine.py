"""Byzantine replicas: with at most f of them HotStuff stays safe and live; the quorum rule is
what keeps it so (a smaller quorum splits the group, and the checker sees it)."""

from __future__ import annotations

import pytest
from hotstuff_byzantine import Byzantine
from hotstuff_harness import Network, executed_ops, safety_violations

from medbench.consensus.hotstuff import Vote


def _split_views(net: Network, honest: list[int]) -> set[int]:
    """Views in which two honest replicas voted for different blocks (the lie took effect)."""
    by_view: dict[int, set[bytes]] = {}
    for (i, v), hashes in net.votes_sent.items():
        if i in honest:
            by_view.setdefault(v, set()).update(hashes)
    return {v for v, hashes in by_view.items() if len(hashes) > 1}


@pytest.mark.parametrize(("n", "liars"), [(4, [1]), (4, [0]), (7, [1, 2]), (7, [0, 4])])
def test_equivocating_leaders_are_survived(n: int, liars: list[int]) -> None:
    net = Network(n=n, clients=2, seed=41, view_timeout_us=50_000, client_timeout_us=200_000)
    for r in liars:
        net.nodes[r] = Byzantine(net.nodes[r], "equivocating")
    honest = [i for i in range(n) if i not in liars]
    for k in range(6):
        for c in net.client_ids:
            net.submit(c, b"%d-%d" % (c, k))
    assert net.run_until_idle(20_000_000)
    net.run(300_000)
    assert _split_views(net, honest)  # the leaders did split the honest replicas' votes
    assert safety_violations(net, honest) == []
    ops = {tuple(executed_ops(r)) for r in net.replicas(honest)}
    assert len(ops) == 1 and len(next(iter(ops))) == 12


@pytest.mark.parametrize(("n", "liars"), [(4, [2]), (7, [3, 5])])
def test_double_voters_are_survived_and_reported(n: int, liars: list[int]) -> None:
    net = Network(n=n, clients=2, seed=43, view_timeout_us=50_000)
    for r in liars:
        net.nodes[r] = Byzantine(net.nodes[r], "double-voting")
    honest = [i for i in range(n) if i not in liars]
    for k in range(4):
        for c in net.client_ids:
            net.submit(c, b"%d-%d" % (c, k))
    assert net.run_until_idle(10_000_000)
    net.run(300_000)
    assert safety_violations(net, honest) == []
    evidence = [note.detail for i, note in net.notes if note.kind == "equivocation" and i in honest]
    assert evidence and all(
        isinstance(a, Vote)
        and isinstance(b, Vote)
        and a.replica == b.replica in liars
        and a.view == b.view
        and a.block_hash != b.block_hash
        for a, b in evidence
    )
    assert len({tuple(executed_ops(r)) for r in net.replicas(honest)}) == 1


@pytest.mark.parametrize("kind", ["bad-qc", "stale-new-view", "replaying", "silent"])
def test_other_lies_are_survived(kind: str) -> None:
    net = Network(n=4, clients=2, seed=47, view_timeout_us=50_000, client_timeout_us=200_000)
    net.nodes[2] = Byzantine(net.nodes[2], kind)
    honest = [0, 1, 3]
    for k in range(4):
        for c in net.client_ids:
            net.submit(c, b"%d-%d" % (c, k))
    assert net.run_until_idle(20_000_000)
    net.run(300_000)
    assert safety_violations(net, honest) == []
    assert len(net.completed) == 8


def test_a_2f_plus_1_quorum_lets_a_partition_split_n6() -> None:
    """At n = 6 (f = 1) the textbook 2f + 1 = 3 is too small: the two halves of a partition
    each form quorums and commit different blocks — no faulty replica needed. strong_quorum(6)
    = 4 keeps the same run safe (nothing commits until the partition heals); the checker
    reports the split, so it is not vacuous."""

    def run(textbook: bool) -> list[str]:
        n = 6
        net = Network(
            n=n,
            clients=2,
            seed=n,
            view_timeout_us=20_000,
            max_view_timeout_us=100_000,
            client_timeout_us=50_000,
        )
        if textbook:
            for r in net.replicas():
                r.quorum = r.pacemaker.quorum = r.collector.quorum = 3
        net.partition([0, 1, 2, 6], [3, 4, 5, 7])  # a client on each side
        net.submit(6, b"left")
        net.submit(7, b"right")
        net.run(5_000_000)
        return safety_violations(net, range(n))

    assert run(textbook=False) == []
    problems = run(textbook=True)
    assert any("committed different blocks" in p for p in problems), problems
