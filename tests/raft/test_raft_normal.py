"""The normal case: elections, replication, exactly-once, clients, exact message and byte counts."""

from __future__ import annotations

from typing import Any

import pytest
from raft_harness import (
    Network,
    executed_ops,
    expected_bytes,
    expected_messages,
    measure,
    message_sizes,
    safety_violations,
)

from medbench.consensus.raft import (
    AppendEntriesResponse,
    Entry,
    HardState,
    Replica,
    Request,
    RequestVoteResponse,
    Role,
    Submit,
    Timeout,
)
from medbench.consensus.raft.election import election_timeout
from medbench.node import Ready


@pytest.mark.parametrize("n", [3, 4, 5, 7])
def test_requests_commit_everywhere_in_the_same_order(n: int) -> None:
    net = Network(n=n, clients=3, seed=n)
    for k in range(6):
        for c in net.client_ids:
            net.submit(c, b"%d-%d" % (c, k))
    assert net.run_until_idle(10_000_000)
    net.run(100_000)  # a heartbeat carries the last commit index to the followers
    assert len(net.completed) == 18
    assert safety_violations(net, range(n)) == []
    ops = [executed_ops(r, net) for r in net.replicas()]
    assert all(o == ops[0] for o in ops) and len(ops[0]) == 18
    for c in net.client_ids:  # each client's operations execute in its submission order
        assert [o for cc, o in ops[0] if cc == c] == [b"%d-%d" % (c, k) for k in range(6)]
    assert len({(r.last_applied, r.state_digest) for r in net.replicas()}) == 1
    leaders = [r for r in net.replicas() if r.role is Role.LEADER]
    assert len(leaders) == 1 and all(r.leader == leaders[0].node_id for r in net.replicas())


def test_exactly_once_and_the_reply_cache(net3: Network) -> None:
    net3.submit(3, b"once")
    assert net3.run_until_idle(5_000_000)
    leader = next(r for r in net3.replicas() if r.role is Role.LEADER)
    req = Request(3, 1, b"once")
    last = leader.log.last_index
    ready = leader.step(3, req)  # the client retransmits the executed request
    (send,) = ready.messages
    assert send.dsts == (3,) and send.msg.ok and send.msg.result == req.digest()
    assert leader.log.last_index == last  # not appended again
    leader.step(3, Request(3, 0, b"older"))
    assert leader.rejections["old request"] == 1
    net3.run(200_000)
    assert all(r.machine.applied == 1 for r in net3.replicas())


def test_a_request_waiting_for_commit_is_not_appended_twice(net3: Network) -> None:
    leader_id = net3.run_until_leader()
    leader = net3.replicas([leader_id])[0]
    net3.run(50_000)
    req = Request(3, 1, b"x")
    leader.step(3, req)
    last = leader.log.last_index
    leader.step(3, req)  # before it commits
    assert leader.log.last_index == last


def test_followers_forward_to_the_leader_and_redirect_without_one() -> None:
    net = Network(n=3, clients=1, seed=3)
    nobody = net.replicas([0])[0].step(3, Request(3, 1, b"x"))  # no leader elected yet
    (send,) = nobody.messages
    assert send.dsts == (3,) and not send.msg.ok and send.msg.leader == -1
    leader = net.run_until_leader()
    net.run(50_000)
    follower = (leader + 1) % 3
    net.nodes[3].leader = follower  # the client believes the follower leads
    net.submit(3, b"via a follower")
    assert net.run_until_idle(2_000_000)
    (done,) = net.completed
    assert done.retransmissions == 0  # forwarded, answered by the leader at once
    assert net.nodes[3].leader == leader  # and the client learnt who leads
    # a request forwarded to a node that is not the leader is redirected to its client
    fwd = net.replicas([follower])[0].step(leader, Request(3, 9, b"x"))
    (send,) = fwd.messages
    assert send.dsts == (3,) and not send.msg.ok and send.msg.leader == leader


def test_an_idle_leader_sends_one_heartbeat_round_per_interval() -> None:
    net = Network(n=5, clients=1, seed=5, heartbeat_interval_us=50_000, tick_us=1_000)
    net.run_until_leader()
    net.submit(5, b"x")
    assert net.run_until_idle(2_000_000)
    net.run(200_000)
    before = dict(net.stats.messages)
    net.run(1_000_000)  # 20 heartbeat intervals, nothing else to send
    after = dict(net.stats.messages)
    grew = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert grew == {"append-entries": 4 * 20, "append-entries-response": 4 * 20}
    sizes = message_sizes(5, net.replicas()[0].term, net.replicas()[0].last_applied)
    assert all(r.last_applied == net.replicas()[0].last_applied for r in net.replicas())
    assert sizes["heartbeat"] < sizes["append-entries"]


def test_the_first_election_costs_2_n_minus_1_messages_and_a_no_op_round() -> None:
    n = 5
    net = Network(n=n, clients=1, seed=11)
    leader = net.run_until_leader()
    net.run(5_000)
    assert net.stats.messages["request-vote"] == n - 1
    assert net.stats.messages["request-vote-response"] == n - 1
    r = net.replicas([leader])[0]
    assert r.term == 1 and r.log.last_index == 1 and r.log.entry(1).request is None  # the no-op
    assert net.stats.messages["append-entries"] == n - 1
    assert [note.detail for i, note in net.notes if note.kind == "election"] == [1]


def test_election_timeouts_come_from_the_seed() -> None:
    base = 300_000
    values = {election_timeout(b"s", node, term, base) for node in range(5) for term in range(5)}
    assert all(base <= v < 2 * base for v in values) and len(values) == 25
    assert election_timeout(b"s", 1, 2, base) == election_timeout(b"s", 1, 2, base)
    assert election_timeout(b"s", 1, 2, base) != election_timeout(b"t", 1, 2, base)
    leaders = {Network(n=5, clients=0, seed=s).run_until_leader() for s in range(12)}
    assert len(leaders) > 1  # different seeds, different first candidates


def test_local_kinds_and_junk_from_the_network(net3: Network) -> None:
    r: Replica = net3.nodes[1]
    term = r.term
    for msg in (Timeout("election"), Timeout("heartbeat"), Submit(b"x")):
        r.step(2, msg)
    assert r.rejections["local kind from the network"] == 3 and r.term == term
    for msg in (object(), None, 5, Entry(1, 1, None)):
        r.step(2, msg)
    assert r.rejections["unknown message type"] == 4
    r.step(r.node_id, Timeout("no-such-timer"))
    assert r.rejections["unknown timer"] == 1
    client = net3.nodes[3]
    client.step(0, Submit(b"x"))
    assert client.rejections["local kind from the network"] == 1


def test_persist_precedes_the_answers_it_justifies(net3: Network) -> None:
    """A granted vote leaves with the HardState recording it; a successful AppendEntries answer
    with the entries it acknowledges already in a persist list (Figure 2)."""
    seen: list[tuple[int, list[Any], list[Any]]] = []
    original = net3._apply

    def spy(src: int, ready: Ready) -> None:
        seen.append((src, list(ready.persist), [s.msg for s in ready.messages]))
        original(src, ready)

    net3._apply = spy  # type: ignore[method-assign]
    for k in range(3):
        net3.submit(3, b"%d" % k)
    assert net3.run_until_idle(5_000_000)
    stored: dict[int, set[int]] = {i: set() for i in range(3)}
    checked = 0
    for src, persist, sent in seen:
        if src >= 3:
            continue
        stored[src] |= {e.index for e in persist if isinstance(e, Entry)}
        for m in sent:
            if isinstance(m, RequestVoteResponse) and m.granted:
                assert any(isinstance(h, HardState) and h.voted_for >= 0 for h in persist)
                checked += 1
            if isinstance(m, AppendEntriesResponse) and m.success and m.index:
                assert m.index in stored[src]
                checked += 1
    assert checked >= 6


# --- exact message and byte counts ------------------------------------------------------------


@pytest.mark.parametrize(("n", "clients", "rounds"), [(3, 1, 10), (5, 3, 5), (7, 2, 4), (5, 8, 3)])
def test_exact_message_and_byte_counts_match_the_formula(n: int, clients: int, rounds: int) -> None:
    net, window, window_bytes = measure(n, clients, rounds)
    requests = clients * rounds
    assert window == expected_messages(n, requests)
    assert window["append-entries"] + window["append-entries-response"] == 2 * (n - 1) * requests
    assert len(net.completed) == requests
    # every field a one-byte integer here: each kind has one size, bytes = count x size
    assert window_bytes == expected_bytes(n, requests, net.replicas()[0].term)
    before = dict(net.stats.messages)
    net.run(net.config.heartbeat_interval_us + 10_000)  # one heartbeat round commits the tail
    grew = {k: net.stats.messages[k] - before.get(k, 0) for k in net.stats.messages}
    assert {k: v for k, v in grew.items() if v} == {
        "append-entries": n - 1,
        "append-entries-response": n - 1,
    }
    assert safety_violations(net, range(n)) == []
    assert len({r.last_applied for r in net.replicas()}) == 1


@pytest.mark.slow
def test_exact_message_counts_at_n64() -> None:
    _, window, _ = measure(64, 8, 4)
    assert window == expected_messages(64, 32)


def test_hash_counters() -> None:
    net, _, _ = measure(3, 2, 3)
    net.run(100_000)
    for r in net.replicas():
        c = r.counters()
        assert c["hash_tx_id"] == 6  # one request ID per applied request
        assert c["hash_digest"] >= r.last_applied  # the state digest, plus election jitter
        assert c["hash_merkle"] == c["hash_block_id"] == 0
        assert c["rejected"] == 0
