"""Raft tolerates no Byzantine node: one well-formed lie breaks State Machine Safety.

A faulty node sends a follower an AppendEntries in its own name with a higher term, replacing an
entry the real leader already committed (the follower stored it but had not yet heard that it
committed). Nothing in Raft can tell the lie from a real new leader (there is no authenticator,
and a higher term is exactly what a new leader has): the follower believes it, overwrites the
entry and commits the lie at that index, while the leader committed the original. The safety
checker reports it — it is not vacuous — whereas HotStuff with one faulty replica of four
survives the same kind of lie (``tests/hotstuff/test_hotstuff_byzantine.py``).
"""

from __future__ import annotations

from raft_harness import Network, safety_violations

from medbench.consensus.raft import AppendEntries, Entry, Request, Role


def _committed_but_unknown_to(follower_of: int) -> tuple[Network, int, int, int]:
    """A leader commits entry ``k`` with one follower's acknowledgement while the other
    follower ``a`` stored it but never learns that it committed."""
    net = Network(n=3, clients=1, seed=follower_of, latency_us=(1_000, 1_000), tick_us=1_000)
    leader = net.run_until_leader()
    net.run(100_000)
    a, liar = (leader + 1) % 3, (leader + 2) % 3
    net.nodes[3].leader = leader
    first = net.replicas([leader])[0].log.last_index
    net.submit(3, b"pay 10 to Alice")
    k = first + 1
    while net.replicas([leader])[0].commit_index < k:
        net.run(100)
    net.cut_link(leader, a)  # a never hears the commit index move to k
    net.run(300_000)
    assert net.replicas([a])[0].log.last_index == k and net.replicas([a])[0].commit_index < k
    return net, leader, a, liar


def test_a_forged_append_entries_makes_two_nodes_commit_different_entries() -> None:
    net, leader, a, liar = _committed_but_unknown_to(0)
    follower = net.replicas([a])[0]
    k = follower.log.last_index
    prev_term = follower.log.term_at(k - 1)
    assert prev_term is not None
    lie = AppendEntries(
        follower.term + 5,  # a "new leader" has a higher term
        liar,
        k - 1,
        prev_term,
        (Entry(follower.term + 5, k, Request(3, 1, b"pay 10 to Mallory")),),
        k,
    )
    net.deliver_now(liar, a, lie)  # well-formed: believed
    assert follower.leader == liar and follower.role is Role.FOLLOWER
    assert net.committed[a][k].request.operation == b"pay 10 to Mallory"
    assert net.committed[leader][k].request.operation == b"pay 10 to Alice"
    problems = safety_violations(net, [leader, a])
    assert problems and f"index {k}: nodes {leader} and {a} committed different entries" in problems
    assert follower.rejections.total() == 0  # nothing looked wrong to it


def test_the_same_lie_against_a_node_that_already_committed_is_noted() -> None:
    """Had the follower applied the entry, the lie still rewrites its log (noted), though what
    it applied stays: Raft has no defence, only the note."""
    net, leader, a, liar = _committed_but_unknown_to(1)
    net.heal()
    net.run(200_000)
    follower = net.replicas([a])[0]
    k = follower.commit_index
    prev_term = follower.log.term_at(k - 1)
    assert prev_term is not None
    lie = AppendEntries(
        follower.term + 5, liar, k - 1, prev_term, (Entry(follower.term + 5, k, None),), k
    )
    ready = net.deliver_now(liar, a, lie)
    assert any(n.kind == "committed-entry-overwritten" for n in ready.notes)
    assert follower.log.entry(k).request is None
    assert safety_violations(net, [leader, a]) == []  # what it applied is unchanged
