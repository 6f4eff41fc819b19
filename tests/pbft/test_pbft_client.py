"""The client: f+1 matching replies, retransmission with doubling timeout, hostile replies."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st
from pbft_harness import Network

from medbench.consensus.pbft import Client, make_keyrings
from medbench.consensus.pbft.messages import Reply, Request, Submit

KEYS = make_keyrings("modeled", 4, range(6))


def _reply(replica: int, ts: int, result: bytes, client: int = 4, view: int = 0) -> Reply:
    r = Reply(view, ts, client, replica, result)
    object.__setattr__(r, "auth", KEYS[replica].sign(r.body(), client))
    return r


def _client() -> tuple[Client, Request]:
    c = Client(4, 4, KEYS[4], retransmit_timeout_us=1_000)
    ready = c.step(4, Submit(b"op"))
    (send,) = ready.messages
    assert send.dsts == (0,)  # to the primary of view 0
    return c, send.msg


def test_needs_f_plus_one_matching_results() -> None:
    c, req = _client()
    assert not c.step(1, _reply(1, req.timestamp, b"lie")).completed
    assert not c.step(2, _reply(2, req.timestamp, b"truth")).completed
    done = c.step(3, _reply(3, req.timestamp, b"truth", view=1)).completed
    assert [d.result for d in done] == [b"truth"]
    assert c.view == 0  # one reply's view is not vouched for by f+1 replicas
    assert c.idle


def test_the_view_comes_from_f_plus_one_replies() -> None:
    """Defect 8 of issue 13: the client took the highest view of any matching reply, so one
    faulty replica chose the primary of every later request."""
    c, req = _client()
    c.step(1, _reply(1, req.timestamp, b"truth", view=10**9))  # the faulty replica
    done = c.step(2, _reply(2, req.timestamp, b"truth")).completed
    assert [d.result for d in done] == [b"truth"]
    assert c.view == 0
    (send,) = c.step(4, Submit(b"next")).messages
    assert send.dsts == (0,)  # still the primary of view 0, not 10**9 mod 4
    # f+1 replies at a higher view move it
    c.step(1, _reply(1, send.msg.timestamp, b"ok", view=3))
    c.step(3, _reply(3, send.msg.timestamp, b"ok", view=3))
    assert c.view == 3


def test_rejects_forged_stale_and_unauthentic_replies() -> None:
    c, req = _client()
    c.step(2, _reply(1, req.timestamp, b"r"))  # replica 1's reply from node 2
    assert c.rejections["forged sender"] == 1
    c.step(1, _reply(1, req.timestamp + 1, b"r"))
    assert c.rejections["stale reply"] == 1
    bad = Reply(0, req.timestamp, 4, 1, b"r", b"x" * 16)
    c.step(1, bad)
    assert c.rejections["not authentic"] == 1
    c.step(1, _reply(1, req.timestamp, b"r", client=5))
    assert c.rejections["reply for another client"] == 1
    c.step(1, req)
    assert c.rejections["unexpected message"] == 1
    assert c.outstanding is req


def test_retransmits_to_all_with_doubling_timeout() -> None:
    c, req = _client()
    times = []
    for now in range(0, 20_000, 100):
        ready = c.tick(now)
        for send in ready.messages:
            assert send.dsts == (0, 1, 2, 3) and send.msg is req
            times.append(now)
    gaps = [b - a for a, b in pairwise(times)]
    assert times[0] == 1_000
    assert gaps[:3] == [2_000, 4_000, 8_000]


def test_one_request_outstanding_and_timestamps_increase() -> None:
    net = Network(n=4, clients=1, seed=41)
    for k in range(3):
        net.submit(4, b"%d" % k)
    assert net.nodes[4].outstanding.timestamp == 1
    assert len(net.nodes[4].queue) == 2
    assert net.run_until_idle(2_000_000)
    assert [c.timestamp for c in net.completed] == [1, 2, 3]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.integers(0, 3),
            st.integers(0, 3),
            st.binary(max_size=3),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_hostile_replies_never_complete_a_wrong_result(replies: list) -> None:
    """Only one replica (f = 1) lies; the client never accepts a result no honest replica sent."""
    c, req = _client()
    for src, replica, ts, result, signed in replies:
        replica = 3  # the single faulty replica
        r = _reply(replica, ts, result) if signed else Reply(0, ts, 4, replica, result)
        done = c.step(src, r).completed
        assert not done
    done = []
    for honest in (0, 1):
        done += c.step(honest, _reply(honest, req.timestamp, b"ok")).completed
    assert [d.result for d in done] == [b"ok"]


def test_runs_are_deterministic() -> None:
    def run() -> list[str]:
        net = Network(n=4, clients=3, seed=99, trace=True)
        net.drop_rate = 0.05
        for k in range(5):
            for c in net.client_ids:
                net.submit(c, b"%d" % k)
        assert net.run_until_idle(20_000_000)
        return net.trace

    assert run() == run()
