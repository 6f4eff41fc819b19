"""Refusal replies: a request the validator refuses is answered with an authenticated, typed
refusal; its client completes on 2f+1 matching refusals (f+1 for a result); a refused request is
not ordered later unless the client resubmits it with a new timestamp, even by a replica that
restarted; one Byzantine replica can neither fake a refusal nor hide one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pbft_harness import Network, safety_violations

from medbench.consensus.pbft import Client, Replica, make_keyrings
from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft.messages import Commit, MessageError, Reply, Request, Submit
from medbench.consensus.pbft.replica import refusal_code
from medbench.consensus.pbft.wire import decode_message
from medbench.node import Send

KEYS = make_keyrings("modeled", 4, range(6))


def _reply(replica: int, ts: int, result: bytes = b"", refusal: str = "") -> Reply:
    r = Reply(0, ts, 4, replica, result, refusal=refusal)
    return r.with_auth(KEYS[replica].sign(r.body(), 4))


def _client() -> tuple[Client, Request]:
    c = Client(4, 4, KEYS[4], retransmit_timeout_us=1_000)
    (send,) = c.step(4, Submit(b"op")).messages
    return c, send.msg


# --- the message -------------------------------------------------------------------------------


def test_a_refusal_carries_a_short_typed_reason_and_no_result() -> None:
    ok = _reply(1, 1, refusal="no-grant")
    assert decode_message(ok.encode()) == ok and "refused=no-grant" in repr(ok)
    with pytest.raises(MessageError, match="no result"):
        Reply(0, 1, 4, 1, b"r", refusal="no-grant")
    with pytest.raises(MessageError):
        Reply(0, 1, 4, 1, b"", refusal="x" * 65)
    with pytest.raises(MessageError):
        Reply(0, 1, 4, 1, b"", refusal=b"no-grant")  # type: ignore[arg-type]
    # on the wire too: a refusal with a result does not decode
    bad = Reply(0, 1, 4, 1, b"r")
    body = bad.body().replace(b"\xa0", b"\xa8no-grant")  # the empty refusal string, filled in
    from medbench import codec

    with pytest.raises(MessageError):
        decode_message(codec.encode((body, b"")))
    assert refusal_code("future-timestamp: ahead of this replica's clock") == "future-timestamp"
    assert refusal_code(": nothing") == "refused" and len(refusal_code("y" * 99)) == 64


# --- the client --------------------------------------------------------------------------------


def test_two_f_plus_one_matching_refusals_complete_the_request() -> None:
    c, req = _client()
    assert not c.step(1, _reply(1, req.timestamp, refusal="no-grant")).completed
    assert not c.step(2, _reply(2, req.timestamp, refusal="forbidden")).completed  # no match
    # f+1 = 2 matching refusals are not enough: one of them may be faulty and the other honest
    # replica's verdict, taken before ordering, may differ from the rest
    assert not c.step(3, _reply(3, req.timestamp, refusal="no-grant")).completed
    (done,) = c.step(0, _reply(0, req.timestamp, refusal="no-grant")).completed
    assert (done.refusal, done.result, done.timestamp) == ("no-grant", b"", req.timestamp)
    assert c.idle


def test_f_plus_one_results_outvote_f_plus_one_refusals() -> None:
    """Honest replicas disagreed at admission and the request was ordered anyway: its result
    (f+1 matching, computed in order) completes it, not the refusals."""
    c, req = _client()
    assert not c.step(0, _reply(0, req.timestamp, refusal="no-grant")).completed
    assert not c.step(1, _reply(1, req.timestamp, refusal="no-grant")).completed
    assert not c.step(2, _reply(2, req.timestamp, b"ok")).completed
    (done,) = c.step(3, _reply(3, req.timestamp, b"ok")).completed
    assert (done.result, done.refusal) == (b"ok", "")


def test_one_false_refusal_neither_completes_nor_blocks_the_real_result() -> None:
    c, req = _client()
    assert not c.step(3, _reply(3, req.timestamp, refusal="no-grant")).completed
    assert not c.step(0, _reply(0, req.timestamp, b"ok")).completed
    (done,) = c.step(1, _reply(1, req.timestamp, b"ok")).completed
    assert (done.result, done.refusal) == (b"ok", "")


@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 3),
            st.one_of(st.binary(max_size=3).map(lambda r: (r, "")),
                      st.sampled_from(["no-grant", "forbidden"]).map(lambda x: (b"", x))),
            st.booleans(),
        ),
        max_size=30,
    )
)  # fmt: skip
def test_hostile_refusals_never_complete_a_request(replies: list) -> None:
    """Replica 3 alone (f = 1) sends any results and refusals, in any name: the client never
    completes until honest replicas answer, and then with what they answered."""
    c, req = _client()
    for src, ts, (result, refusal), signed in replies:
        r = Reply(0, ts, 4, 3, result, refusal=refusal)
        r = r.with_auth(KEYS[3].sign(r.body(), 4)) if signed else r
        assert not c.step(src if src == 3 else 3, r).completed
    done = []
    for honest in (0, 1, 2):  # 2f+1 = 3 matching refusals, at most one of them replica 3's
        if c.idle:
            break
        done += c.step(honest, _reply(honest, req.timestamp, refusal="no-grant")).completed
    assert [(d.refusal, d.result) for d in done] == [("no-grant", b"")]


# --- the replicas ------------------------------------------------------------------------------


class _Rules:
    def __init__(self) -> None:
        self.forbidden = {b"bad"}
        self.calls = 0

    def __call__(self, req: Request) -> str | None:
        self.calls += 1
        return "forbidden: by the test" if req.operation in self.forbidden else None


def test_a_refused_request_is_answered_by_every_replica_and_never_ordered_later() -> None:
    net = Network(n=4, clients=1, seed=21, client_timeout_us=100_000)
    rules = [_Rules() for _ in range(4)]
    for r, rule in zip(net.replicas(), rules, strict=True):
        r.validator = rule
    net.submit(4, b"bad")
    assert net.run_until_idle(2_000_000)
    (done,) = net.completed
    assert (done.refusal, done.result, done.retransmissions) == ("forbidden", b"", 1)
    refusals = [r.refused.reply(4, 1) for r in net.replicas()]
    assert all(x is not None and x.refusal == "forbidden" for x in refusals)
    assert all(not r.pending and r.last_executed == 0 for r in net.replicas())
    # the rules change: the refused request (same timestamp) stays refused, it is not ordered
    for rule in rules:
        rule.forbidden.clear()
    calls = sum(rule.calls for rule in rules)
    old = net.recent[0] if isinstance(net.recent[0], Request) else None
    assert old is not None and old.timestamp == 1
    for i in range(4):
        net.deliver_now(4, i, old)  # a late retransmission
    net.run(1_000_000)
    assert sum(rule.calls for rule in rules) == calls  # not judged again
    assert all(r.last_executed == 0 for r in net.replicas())
    assert len(net.completed) == 1
    # a resubmission is a new timestamp, judged afresh: now accepted and executed everywhere
    net.submit(4, b"bad")
    assert net.run_until_idle(2_000_000)
    assert [(c.timestamp, c.refusal) for c in net.completed] == [(1, "forbidden"), (2, "")]
    assert all(r.last_executed == 1 for r in net.replicas())
    assert all(4 not in r.refused for r in net.replicas())  # executed: the refusal is spent


def test_a_restarted_replica_keeps_its_refusal() -> None:
    """The refusal is persisted like a vote: after a crash the replica still refuses that
    timestamp without asking its validator, even though its rules (not persisted) now allow it."""
    net = Network(n=4, clients=1, seed=25, client_timeout_us=100_000)
    for r in net.replicas():
        r.validator = _Rules()
    net.submit(4, b"bad")
    assert net.run_until_idle(2_000_000)
    assert [c.refusal for c in net.completed] == ["forbidden"]
    bad = next(m for m in net.recent if isinstance(m, Request) and m.operation == b"bad")
    net.crash(1)
    net.restart(1)
    restarted = net.replicas([1])[0]
    assert restarted.refused.reply(4, bad.timestamp) is not None
    assert restarted._admit(bad) == "request refused earlier"
    # a new timestamp of the same client is judged afresh, and once it executes the refusal
    # is spent, on the restarted replica too
    net.submit(4, b"good")
    assert net.run_until_idle(2_000_000)
    assert [c.refusal for c in net.completed] == ["forbidden", ""]
    assert 4 not in restarted.refused and restarted.last_executed == 1


class _FalseRefuser(faults.Byzantine):
    """A faulty replica that answers every client with a refusal it signs itself."""

    def outgoing(self, send: Send) -> list[Send]:
        m = send.msg
        if not isinstance(m, Reply):
            return [send]
        lie = Reply(m.view, m.timestamp, m.client, m.replica, b"", refusal="no-grant")
        return [Send(send.dsts, lie.with_auth(self.inner.keyring.sign(lie.body(), m.client)))]


def test_a_byzantine_replica_cannot_make_a_request_look_refused() -> None:
    net = Network(n=4, clients=1, seed=22, client_timeout_us=100_000)
    net.nodes[3] = _FalseRefuser(net.nodes[3])
    net.cut_link(1, 4)  # the client hears replica 0 (truth), 2 (truth) late, 3 (a refusal)
    net.extra_delay[2] = 50_000
    for k in range(3):
        net.submit(4, b"op%d" % k)
    assert net.run_until_idle(3_000_000)
    assert [c.refusal for c in net.completed] == ["", "", ""]
    assert all(c.result == c.request_id for c in net.completed)  # the default service's result
    assert net.nodes[4].rejections == {}


def test_a_refusal_inside_a_pre_prepare_is_answered_and_not_prepared_again() -> None:
    """A faulty primary proposes a request its backups refuse: they answer the client with the
    refusal (it completes), keep refusing that timestamp in the new view, and order the rest."""
    net = Network(n=4, clients=2, seed=23, view_change_timeout_us=100_000)
    for r in net.replicas([1, 2, 3]):
        r.validator = _Rules()
    net.submit(4, b"bad")  # replica 0 admits everything
    net.run(20_000)
    net.submit(5, b"good")
    assert net.run_until_idle(3_000_000)
    assert sorted((c.client, c.refusal) for c in net.completed) == [(4, "forbidden"), (5, "")]
    backups = net.replicas([1, 2, 3])
    assert all(r.refused.refused(4, 1) and r.view >= 1 for r in backups)
    assert safety_violations(net, [1, 2, 3]) == []
    bad = next(m for m in net.recent if isinstance(m, Request) and m.operation == b"bad")
    for r in backups:  # the refused timestamp is refused without asking the validator
        assert r._admit(bad) == "request refused earlier"
        ops = [q.operation for b in net.committed[r.node_id].values() for q in b.requests]
        assert ops == [b"good"]


def test_unauthentic_requests_get_no_refusal() -> None:
    """Replies answer the client's own requests only: a forged one is dropped unanswered."""
    net = Network(n=4, clients=1, seed=24)
    r: Replica = net.replicas([1])[0]
    forged = Request(4, 1, b"x", KEYS[5].sign(Request(4, 1, b"x").body()))
    ready = r.step(4, forged)
    assert not ready.messages and r.rejections["request not authentic"] == 1 and not len(r.refused)


def test_every_refusal_a_client_saw_stays_refused() -> None:
    """Defect 5 of issue 13: a replica remembered one refusal per client, so a newer refusal
    evicted the older one, whose (client, timestamp) was judged afresh and could commit. The
    client completes two requests as refused; the rules then change and the old request comes
    back through a primary that admits everything: no honest backup prepares it."""
    net = Network(n=4, clients=1, seed=26, client_timeout_us=100_000)
    rules = [_Rules() for _ in range(3)]
    for r, rule in zip(net.replicas([1, 2, 3]), rules, strict=True):
        rule.forbidden = {b"bad1", b"bad2"}
        r.validator = rule
    for op in (b"bad1", b"bad2"):
        net.submit(4, op)
        assert net.run_until_idle(2_000_000)
    assert [c.refusal for c in net.completed] == ["forbidden", "forbidden"]
    first = next(m for m in net.recent if isinstance(m, Request) and m.operation == b"bad1")
    for rule in rules:
        rule.forbidden.clear()
    for r in net.replicas([1, 2, 3]):
        assert r.refused.refused(4, first.timestamp)
        assert r._admit(first) == "request refused earlier"
    net.deliver_now(4, 0, first)  # the primary (no rules) proposes it again
    net.run(2_000_000)
    assert all(r.last_executed == 0 for r in net.replicas([1, 2, 3]))
    assert len(net.completed) == 2


def test_refusals_beyond_the_window_raise_the_clients_floor() -> None:
    """Memory per client is bounded by the refusal window; a refusal dropped from it still
    counts, through the client's floor."""
    from medbench.consensus.pbft.refusals import Refusals

    held = Refusals(window=3)
    for t in range(1, 11):
        assert held.add(Reply(0, t, 4, 1, b"", refusal="no-grant"))
    assert len(held) == 3
    assert all(held.refused(4, t) for t in range(1, 11))
    assert held.reply(4, 10) is not None and held.reply(4, 2) is None  # below the floor
    assert not held.refused(4, 11) and not held.refused(5, 1)
    held.executed(4, 12)  # a newer request executed: everything at or below it is spent
    assert 4 not in held and not held.refused(4, 5)


class _CommitsLost(faults.Byzantine):
    """The network loses this replica's COMMITs while ``lost`` is set (a test switch)."""

    lost = True

    def outgoing(self, send: Send) -> list[Send]:
        return [] if self.lost and isinstance(send.msg, Commit) else [send]


def test_a_request_re_issued_at_a_new_view_is_not_also_refused() -> None:
    """Defect 6 of issue 13: at a new view a replica accepted the re-issued pre-prepares, then
    re-judged its pending requests and refused some of them, the re-issued ones included, so the
    client was shown 2f+1 refusals for a request that executed. A request the new view carries
    is ordered; execution decides it."""
    net = Network(n=4, clients=1, seed=27, view_change_timeout_us=100_000)
    rules = [_Rules() for _ in range(4)]
    for i, rule in enumerate(rules):
        rule.forbidden = set()
        net.replicas([i])[0].validator = rule
        net.nodes[i] = _CommitsLost(net.nodes[i])
    net.submit(4, b"op")
    net.run(20_000)  # prepared everywhere, committed nowhere: every COMMIT is lost
    assert all(r.log.get(1) is not None and r.log.get(1).proof for r in net.replicas())
    assert all(r.last_executed == 0 for r in net.replicas())
    for i, rule in enumerate(rules):  # the rules change; the network delivers again
        rule.forbidden = {b"op"}
        net.nodes[i].lost = False
    assert net.run_until_idle(5_000_000)
    assert all(r.view >= 1 and r.last_executed == 1 for r in net.replicas())
    (done,) = net.completed
    assert (done.refusal, done.result) == ("", done.request_id)  # executed, and shown so
    assert not any(r.refused.refused(4, done.timestamp) for r in net.replicas())
    assert safety_violations(net, range(4)) == []


def test_votes_at_executed_sequences_are_forgotten_at_a_stable_checkpoint() -> None:
    """Every NEW-VIEW re-issues the batches above the stable checkpoint, executed ones included,
    and a replica notes its votes for their requests (``voted``, for the refusal rule). Those
    votes are closed; a stable checkpoint forgets them (they piled up for ever at every view
    change, found with soak seed 14627)."""
    net = Network(n=4, clients=1, seed=5, checkpoint_interval=4, log_window=8)
    for k in range(40):
        net.submit(4, b"op%d" % k)
        assert net.run_until_idle(1_000_000)
        if k % 4 == 1:  # a view change with a batch executed above the stable checkpoint
            for r in net.replicas():
                r.start_view_change(r.view + 1)
    rs = net.replicas()
    assert min(r.view for r in rs) >= 10 and min(r.last_executed for r in rs) >= 40
    assert max(len(r.voted) for r in rs) <= net.config.log_window
    assert safety_violations(net, range(4)) == []
