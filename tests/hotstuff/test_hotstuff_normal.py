"""The normal case: ordering, exactly-once, batching, exact message and byte counts."""

from __future__ import annotations

from typing import Any

import pytest
from hotstuff_harness import (
    Network,
    executed_ops,
    expected_bytes,
    expected_messages,
    measure,
    safety_violations,
)

from medbench.consensus.hotstuff import (
    Proposal,
    Replica,
    Reply,
    Request,
    Submit,
    Timeout,
    Vote,
)
from medbench.node import Ready, Send


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("scheme", ["modeled", "macs", "signatures"])
def test_requests_commit_everywhere_in_the_same_order(n: int, scheme: str) -> None:
    net = Network(n=n, clients=3, seed=n, scheme=scheme)
    for k in range(6):
        for c in net.client_ids:
            net.submit(c, b"%d-%d" % (c, k))
    assert net.run_until_idle(5_000_000)
    assert len(net.completed) == 18
    assert safety_violations(net, range(n)) == []
    ops = [executed_ops(r) for r in net.replicas()]
    assert all(o == ops[0] for o in ops)
    assert sorted(ops[0]) == sorted(
        (c, b"%d-%d" % (c, k)) for c in net.client_ids for k in range(6)
    )
    for c in net.client_ids:  # each client's operations execute in its submission order
        assert [o for cc, o in ops[0] if cc == c] == [b"%d-%d" % (c, k) for k in range(6)]
    assert len({r.state_digest for r in net.replicas()}) == 1
    counters = net.replicas()[1].counters()
    assert counters["signs"] > 0 and counters["verifies"] > 0 and counters["rejected"] == 0


def test_many_requests_at_n7_with_batches() -> None:
    net = Network(n=7, clients=10, seed=3, max_batch_size=4, max_batch_delay_us=2_000)
    for k in range(10):
        for c in net.client_ids:
            net.submit(c, b"%d-%d" % (c, k))
    assert net.run_until_idle(20_000_000)
    assert len(net.completed) == 100
    assert safety_violations(net, range(7)) == []
    first = executed_ops(net.replicas()[0])
    assert len(first) == len(set(first)) == 100
    assert all(executed_ops(r) == first for r in net.replicas())


def test_exactly_once_and_reply_cache(net4: Network) -> None:
    net4.submit(4, b"once")
    assert net4.run_until_idle(2_000_000)
    r: Replica = net4.nodes[2]
    req = next(q for e in r.executed for q in e.requests)
    height = r.tree.height
    ready = r.step(4, req)  # the client retransmits the executed request
    assert [s.msg for s in ready.messages] == [r.last_reply[4]]
    assert ready.messages[0].dsts == (4,)
    net4.run(500_000)
    assert r.tree.height == height and not r.mempool
    assert sum(len(e.requests) for e in r.executed) == 1
    relayed = r.step(1, req)  # not from its client: not answered
    assert not relayed.messages and r.rejections["old request"] == 1


def test_a_request_is_proposed_once_even_if_it_arrives_again() -> None:
    """A retransmission while the request sits in an uncommitted block is not proposed again."""
    net = Network(n=4, clients=1, seed=2)
    net.submit(4, b"dup")
    net.run(2_000)
    req = net.nodes[4].outstanding
    assert req is not None
    for r in range(4):
        net.deliver_now(4, r, req)
    assert net.run_until_idle(2_000_000)
    net.run(200_000)
    blocks = [e.block for e in net.replicas()[0].executed]
    assert sum(len(b.batch) for b in blocks) == 1
    assert executed_ops(net.replicas()[3]) == [(4, b"dup")]


def test_batching_by_size() -> None:
    net = Network(n=4, clients=4, seed=3, max_batch_size=4, max_batch_delay_us=10_000_000)
    for c in net.client_ids[:3]:
        net.submit(c, b"x")
    net.run(100_000)
    assert net.stats.messages["proposal"] == 0  # 3 < 4 and the delay has not passed
    net.submit(net.client_ids[3], b"y")
    assert net.run_until_idle(1_000_000)
    first = net.replicas()[0].executed[0]
    assert len(first.block.batch) == 4


def test_batching_by_time() -> None:
    net = Network(n=4, clients=2, seed=3, max_batch_size=10, max_batch_delay_us=20_000)
    net.submit(4, b"x")
    while not net.stats.messages["proposal"]:
        net.run(1_000)
    # the first proposal leaves on the first tick after the request waited 20 ms
    assert 20_000 <= net.now <= 22_000
    assert net.stats.messages["proposal"] == 3  # the leader of view 1 to three replicas


def test_an_idle_group_goes_quiet_after_one_round_of_new_views(net4: Network) -> None:
    """After its last proposal every voter times out once (its NEW-VIEW carries its vote, see the
    pacemaker), idle: nobody has work, so no leader proposes; then nothing more is sent."""
    net4.submit(4, b"x")
    assert net4.run_until_idle(2_000_000)
    net4.run(200_000)
    sent = dict(net4.stats.messages)
    net4.run(30_000_000)  # far beyond every timeout
    new_views = net4.stats.messages["new-view"] - sent.get("new-view", 0)
    assert new_views == 3  # three voters time out once; the fourth is the next leader
    assert net4.stats.total_messages == sum(sent.values()) + new_views
    assert all(r.pacemaker.deadline is None for r in net4.replicas())
    assert all(not r.awake for r in net4.replicas())


def test_local_kinds_from_the_network_are_rejected(net4: Network) -> None:
    r: Replica = net4.nodes[1]
    view = r.view
    r.step(2, Timeout("view"))
    assert r.rejections["local kind from the network"] == 1 and r.view == view
    client = net4.nodes[4]
    client.step(0, Submit(b"x"))
    assert client.rejections["local kind from the network"] == 1
    r.step(2, object())
    r.step(2, None)
    assert r.rejections["unknown message type"] == 2
    r.step(r.node_id, Timeout("no-such-timer"))
    assert r.rejections["unknown timer"] == 1


def test_persist_precedes_the_votes_and_proposals_it_justifies(net4: Network) -> None:
    """Every vote and proposal a replica sends is in the same Ready's persist list."""
    seen: list[tuple[list[Any], list[Any]]] = []
    original = net4._apply

    def spy(src: int, ready: Ready) -> None:
        seen.append((list(ready.persist), [s.msg for s in ready.messages]))
        original(src, ready)

    net4._apply = spy  # type: ignore[method-assign]
    for k in range(3):
        net4.submit(4, b"%d" % k)
    assert net4.run_until_idle(2_000_000)
    checked = 0
    for persist, sent in seen:
        for m in sent:
            if isinstance(m, (Vote, Proposal)):
                checked += 1
                assert m in persist
                if isinstance(m, Proposal):
                    assert m.block in persist or m in persist
    assert checked > 10


class _LyingReplier:
    """A faulty replica that answers every client with a wrong result (signed by itself)."""

    def __init__(self, inner: Replica) -> None:
        self.inner = inner
        self.node_id = inner.node_id

    def _lie(self, ready: Ready) -> Ready:
        out = []
        for send in ready.messages:
            m = send.msg
            if isinstance(m, Reply):
                lie = Reply(m.view, m.timestamp, m.client, m.replica, b"lie")
                m = lie.with_auth(self.inner.keyring.sign(lie.body(), m.client))
            out.append(Send(send.dsts, m))
        ready.messages = out
        return ready

    def step(self, src: int, msg: Any) -> Ready:
        return self._lie(self.inner.step(src, msg))

    def tick(self, now: int) -> Ready:
        return self._lie(self.inner.tick(now))


def test_completion_needs_f_plus_one_matching_replies() -> None:
    net = Network(n=4, clients=1, seed=1, client_timeout_us=100_000)
    net.nodes[3] = _LyingReplier(net.nodes[3])
    net.cut |= {(1, 4), (2, 4)}  # the client hears replica 0 (truth) and replica 3 (a lie)
    net.submit(4, b"op")
    net.run(1_000_000)
    assert all(r.tree.height >= 1 for r in net.replicas())
    replied = {src: m.result for src, m in net.nodes[4].replies.items()}
    assert replied[3] == b"lie" and replied[0] == net.nodes[4].outstanding.digest()
    assert net.completed == []  # one true reply is only f
    net.cut -= {(1, 4)}
    assert net.run_until_idle(2_000_000)
    (done,) = net.completed
    assert done.result == done.request_id  # the default service answers the request's digest


def test_the_client_refuses_forged_and_foreign_replies(net4: Network) -> None:
    client = net4.nodes[4]
    net4.submit(4, b"op")
    req: Request = client.outstanding
    fake = Reply(1, req.timestamp, 4, 2, b"r")
    client.step(1, fake)  # sent by 1, claims 2
    assert client.rejections["forged sender"] == 1
    client.step(2, fake)  # no authenticator
    assert client.rejections["not authentic"] == 1
    other = Reply(1, 1, 5, 2, b"r")
    client.step(2, other.with_auth(net4.keyrings[2].sign(other.body(), 5)))
    assert client.rejections["reply for another client"] == 1
    client.step(2, Vote(1, bytes(32), 2))
    assert client.rejections["unexpected message"] == 1


# --- exact message and byte counts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "clients", "batch"), [(4, 8, 1), (4, 8, 4), (7, 10, 5), (7, 6, 1), (16, 16, 4)]
)
def test_exact_message_and_byte_counts_match_the_formula(n: int, clients: int, batch: int) -> None:
    net = measure(n, clients, batch)
    assert dict(net.stats.messages) == expected_messages(n, clients, batch)
    assert len(net.completed) == clients
    times = {e.block.timestamp for r in net.replicas() for e in r.executed[1:]}
    assert all(256 <= t <= 65_535 for t in times)  # the size class the formula assumes
    assert dict(net.stats.bytes) == expected_bytes(n, clients, batch)
    # steady state: 2(n - 1) protocol messages per block decision
    m = clients // batch
    blocks = m + 3
    assert net.stats.messages["proposal"] + net.stats.messages["vote"] == blocks * 2 * (n - 1)


@pytest.mark.slow
def test_exact_message_counts_at_n64() -> None:
    net = measure(64, 64, 16)
    assert dict(net.stats.messages) == expected_messages(64, 64, 16)


def test_hash_counters_follow_the_hashwork_rule() -> None:
    net = measure(4, 8, 2)
    for r in net.replicas():
        c = r.counters()
        executed = r.executed
        assert c["hash_tx_id"] == sum(len(e.block.batch) for e in executed) == 8
        assert c["hash_digest"] == len(executed)
        # one block hash per proposal handled or built: (m + 3) blocks of which it led some
        assert c["hash_block_id"] == 4 + 3
        assert c["hash_merkle"] == 0
        assert c["handled"] >= c["verifies"] - c["handled"]
