"""Hostile input: every kind of malformed, forged, stale or conflicting message is dropped,
counted and noted — never raised — and the group stays safe and live.

The deterministic tests take one category each (bad signatures, forged senders, bad QCs and
timeout certificates, wrong views, non-leaders, equivocation, oversized batches, unknown
parents). The Hypothesis tests (the model is ``tests/pbft/test_pbft_hostile.py``) throw any
message of any kind, with mutated fields, from replica 3 (the attacker: it signs with its own
key, replays and mutates what it saw, and names others without their keys) at the honest replicas
in a running group, then check safety, and liveness once the attacker stops.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hotstuff_harness import Network, safety_violations, sample_messages
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench.consensus.hotstuff import (
    GENESIS,
    GENESIS_QC,
    QC,
    Block,
    NewView,
    Proposal,
    Replica,
    Reply,
    Request,
    Submit,
    SyncRequest,
    SyncResponse,
    Timeout,
    Vote,
    make_keyrings,
)

ATTACKER = 3


def _seal(net: Network, signer: int, msg: Any) -> Any:
    return msg.with_auth(net.keyrings[signer].sign(msg.body()))


def _running(**kw: Any) -> Network:
    """A group that committed a few blocks: proposals, votes and QCs exist to abuse."""
    net = Network(n=4, clients=2, seed=31, latency_us=(1_000, 1_000), **kw)
    for k in range(3):
        net.submit(4, b"a%d" % k)
    assert net.run_until_idle(2_000_000)
    net.run(50_000)
    return net


def _last_proposal(net: Network) -> Proposal:
    return [m for m in net.recent if isinstance(m, Proposal)][-1]


def _reject_count(r: Replica) -> int:
    return sum(r.rejections.values())


def _highest_qc(net: Network) -> QC:
    return max((r.qc_high for r in net.replicas()), key=lambda q: q.view)


def _next_proposal(net: Network, leader_qc: QC | None = None, batch: tuple = ()) -> Proposal:
    """A valid proposal for the view after the newest QC, built and signed by its leader."""
    r = net.replicas([0])[0]
    qc = leader_qc or _highest_qc(net)
    parent = r.tree.get(qc.block_hash)
    assert parent is not None
    v = qc.view + 1
    block = Block(v, parent.height + 1, parent.hash, qc, r.now, batch, v % 4)
    return _seal(net, v % 4, Proposal(block, (), v % 4))


def _deltas(net: Network, reason: str, deliveries: list[tuple[int, int, Any]]) -> list[int]:
    """Deliver each ``(src, dst, msg)``; how much ``reason`` grew at each destination."""
    out = []
    for src, dst, msg in deliveries:
        r = net.replicas([dst])[0]
        before = r.rejections[reason]
        net.deliver_now(src, dst, msg)
        out.append(r.rejections[reason] - before)
    return out


def test_bad_signatures_are_refused_everywhere() -> None:
    net = _running()
    p = _next_proposal(net)
    nxt = (p.view + 1) % 4
    v = p.view + 4
    deliveries = [
        (p.replica, 1 if p.replica != 1 else 2, p.with_auth(b"\x00" * 16)),
        (2, nxt, Vote(p.view, p.block.hash, 2).with_auth(b"junk")),
        (2, v % 4, NewView(v, _highest_qc(net), None, True, 2)),  # no authenticator at all
        (2, 1, SyncRequest(b"", 0, 4, 2)),
        (2, 1, SyncResponse(None, (GENESIS,), 2)),
    ]
    if nxt == 2 or v % 4 == 2:
        deliveries = [d for d in deliveries if d[1] != 2]
    assert _deltas(net, "not authentic", deliveries) == [1] * len(deliveries)
    assert all(note.kind != "equivocation" for _, note in net.notes)


def test_forged_senders_are_refused() -> None:
    net = _running()
    r: Replica = net.nodes[1]
    p = _next_proposal(net)
    before = r.rejections["proposal not from the leader of its view"]
    r.step(ATTACKER if p.replica != ATTACKER else 2, p)  # relayed: a leader sends its own
    assert r.rejections["proposal not from the leader of its view"] == before + 1
    sender = next(i for i in range(3) if i not in (ATTACKER, (p.view + 1) % 4))
    vote = _seal(net, sender, Vote(p.view, p.block.hash, sender))
    v = p.view + 4
    deliveries = [
        (ATTACKER, (p.view + 1) % 4, vote),
        (ATTACKER, v % 4, _seal(net, sender, NewView(v, _highest_qc(net), None, True, sender))),
        (ATTACKER, 1, _seal(net, sender, SyncRequest(b"", 0, 4, sender))),
        (ATTACKER, 1, _seal(net, sender, SyncResponse(None, (GENESIS,), sender))),
    ]
    deliveries = [d for d in deliveries if d[1] != ATTACKER]
    assert _deltas(net, "forged sender", deliveries) == [1] * len(deliveries)


@pytest.mark.parametrize(
    "spoil",
    ["duplicate", "too-few", "invalid-signature", "non-replica", "other-view-genesis"],
)
def test_bad_quorum_certificates_are_refused(spoil: str) -> None:
    net = _running()
    r: Replica = net.nodes[1]
    good = r.qc_high
    votes = good.votes
    if spoil == "duplicate":
        qc = QC(good.view, good.block_hash, (votes[0], votes[0], votes[1]))
        reason = "duplicate voter"
    elif spoil == "too-few":
        qc = QC(good.view, good.block_hash, votes[:2])
        reason = "too few votes"
    elif spoil == "invalid-signature":
        qc = QC(good.view, good.block_hash, (*votes[:2], votes[2].with_auth(b"x" * 16)))
        reason = "invalid vote signature"
    elif spoil == "non-replica":
        forged = Vote(good.view, good.block_hash, 9)
        qc = QC(good.view, good.block_hash, (*votes[:2], forged.with_auth(b"x" * 16)))
        reason = "vote from a non-replica"
    else:
        qc = QC(0, good.block_hash, ())
        reason = "a view-0 QC that is not the genesis QC"
    if spoil != "other-view-genesis":
        p = _next_proposal(net, leader_qc=_highest_qc(net))
        b = p.block
        bad = Block(b.view, b.height, b.parent, qc, b.timestamp, b.batch, b.proposer)
        proposal = _seal(net, p.replica, Proposal(bad, (), p.replica))
        target = net.replicas([1 if p.replica != 1 else 2])[0]
        voted = target.safety.last_voted_view
        target.step(p.replica, proposal)
        assert target.rejections[f"invalid justify QC: {reason}"] == 1
        assert target.safety.last_voted_view == voted
    v = r.view + 4
    sender = 2 if v % 4 != 2 else 3
    nv = _seal(net, sender, NewView(v, qc, None, True, sender))
    leader: Replica = net.nodes[v % 4]
    leader.step(sender, nv)
    assert leader.rejections[f"invalid QC: {reason}"] == 1


def test_bad_timeout_certificates_are_refused() -> None:
    net = _running()
    qc = _highest_qc(net)
    r: Replica = net.nodes[(qc.view + 3) % 4 ^ 1]  # not the leader of the view below
    parent = r.tree.get(qc.block_hash)
    assert parent is not None
    v = qc.view + 3  # not the next view: needs a certificate
    leader = v % 4

    def proposal(tc: tuple, justify: QC = qc) -> Proposal:
        p = justify.block_hash
        par = r.tree.get(p)
        assert par is not None
        block = Block(v, par.height + 1, p, justify, r.now, (), leader)
        return _seal(net, leader, Proposal(block, tc, leader))

    def nv(sender: int, view: int = v, high: QC = qc) -> NewView:
        return _seal(net, sender, NewView(view, high, None, True, sender))

    cases = {
        "view not justified: no timeout certificate": proposal(()),
        "timeout certificate too small": proposal((nv(0), nv(1))),
        "timeout certificate for another view": proposal((nv(0), nv(1), nv(2, v + 1))),
        "duplicate sender in timeout certificate": proposal((nv(0), nv(1), nv(1))),
        "invalid signature in timeout certificate": proposal(
            (nv(0), nv(1), nv(2).with_auth(b"x" * 16))
        ),
        "justify QC lower than one in its timeout certificate": proposal(
            (nv(0), nv(1), nv(2)), justify=parent.justify
        ),
    }
    for reason, p in cases.items():
        r.step(leader, p)
        assert r.rejections[reason] == 1, reason
    happy = _next_proposal(net)
    with_tc = _seal(net, happy.replica, Proposal(happy.block, (nv(0, happy.view),), happy.replica))
    net.deliver_now(happy.replica, r.node_id, with_tc)
    assert r.rejections["timeout certificate on the happy path"] == 1
    # and a real one is accepted: three replicas' NEW-VIEWs, or a mix with votes of view v - 1
    good = proposal((nv(0), nv(1), nv(2)))
    voted = r.step(leader, good)
    assert any(isinstance(s.msg, Vote) for s in voted.messages) or r.safety.last_voted_view == v


def test_wrong_views_and_non_leaders_are_refused() -> None:
    net = _running()
    r: Replica = net.nodes[1]
    p = _next_proposal(net)
    b = p.block
    stale_block = Block(r.tree.tip.view, b.height, b.parent, b.justify, b.timestamp, (), b.proposer)
    r.step(p.replica, _seal(net, p.replica, Proposal(stale_block, (), p.replica)))
    assert (
        r.rejections["proposal for a committed view"] == 1
        or r.rejections["proposal not from the leader of its view"]
    )
    wrong = (p.replica + 1) % 4
    b2 = Block(b.view, b.height, b.parent, b.justify, b.timestamp, (), wrong)
    r.step(wrong, _seal(net, wrong, Proposal(b2, (), wrong)))
    assert r.rejections["proposal not from the leader of its view"] >= 1
    # a vote sent to a replica that does not lead the next view
    not_next: Replica = net.nodes[(p.view + 2) % 4]
    not_next.step(2, _seal(net, 2, Vote(p.view, b.hash, 2)))
    assert not_next.rejections["vote to a replica that does not lead the next view"] == 1
    nxt: Replica = net.nodes[(p.view + 1) % 4]
    far = p.view + 4 * 1_000
    nxt.step(2, _seal(net, 2, Vote(far, b.hash, 2)))
    assert nxt.rejections["vote too far ahead"] == 1
    old = r.tree.tip.view - (r.tree.tip.view % 4) - 1  # an old view led next by replica ...
    leader_of_next = (old + 1) % 4
    net.nodes[leader_of_next].step(2, _seal(net, 2, Vote(old, b.hash, 2)))
    assert net.replicas([leader_of_next])[0].rejections["stale vote"] == 1
    nv = _seal(net, 2, NewView(r.view + 1, r.qc_high, None, True, 2))
    non_leader = (nv.view + 1) % 4
    net.nodes[non_leader].step(2, nv)
    assert (
        net.replicas([non_leader])[0].rejections[
            "new-view to a replica that does not lead that view"
        ]
        == 1
    )
    # justify not below the proposal's view, parent not the justified block
    b3 = Block(b.view, b.height, b.parent, b.justify, b.timestamp, (), b.proposer)
    odd = Block(b.justify.view, b.height, b.parent, b.justify, b.timestamp, (), b.justify.view % 4)
    r.step(odd.proposer, _seal(net, odd.proposer, Proposal(odd, (), odd.proposer)))
    assert r.rejections["justify QC not below the proposal's view"] == 1
    orphan = Block(b3.view, b3.height, bytes(32), b3.justify, b3.timestamp, (), b3.proposer)
    r.step(b3.proposer, _seal(net, b3.proposer, Proposal(orphan, (), b3.proposer)))
    assert r.rejections["parent is not the justified block"] == 1


def test_equivocating_proposals_are_noted_with_both_messages() -> None:
    net = _running()
    p = _next_proposal(net)
    r: Replica = net.nodes[next(i for i in range(4) if i not in (p.replica, (p.view + 1) % 4))]
    b = p.block
    twin_block = Block(b.view, b.height, b.parent, b.justify, b.timestamp + 1, (), b.proposer)
    twin = _seal(net, p.replica, Proposal(twin_block, (), p.replica))
    first = r.step(p.replica, p)
    assert any(isinstance(s.msg, Vote) for s in first.messages)
    second = r.step(p.replica, twin)
    (evidence,) = [n for n in second.notes if n.kind == "equivocation"]
    assert evidence.detail == (p, twin)
    assert r.rejections["equivocating proposal"] == 1
    assert not any(isinstance(s.msg, Vote) for s in second.messages)
    # a repeat of the first is answered with the same vote (nothing new persisted)
    again = r.step(p.replica, p)
    assert [s.msg for s in again.messages] == [
        s.msg for s in first.messages if isinstance(s.msg, Vote)
    ]
    assert again.persist == []


def test_conflicting_votes_are_noted_with_both_votes() -> None:
    net = _running()
    p = _next_proposal(net)
    nxt: Replica = net.nodes[(p.view + 1) % 4]
    voter = next(i for i in range(4) if i != nxt.node_id)
    v1 = _seal(net, voter, Vote(p.view, p.block.hash, voter))
    v2 = _seal(net, voter, Vote(p.view, bytes(range(32)), voter))
    nxt.step(voter, v1)
    ready = nxt.step(voter, v2)
    (evidence,) = [n for n in ready.notes if n.kind == "equivocation"]
    assert evidence.detail == (v1, v2)
    assert nxt.rejections["conflicting vote"] == 1
    assert nxt.collector.votes[(p.view, p.block.hash)] == {voter: v1}


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("oversized", "oversized batch"),
        ("duplicate", "request twice in one batch"),
        ("unsigned", "request not authentic"),
        ("from-replica", "request from a replica id"),
    ],
)
def test_bad_batches_are_refused(case: str, reason: str) -> None:
    """Each case is a leader's only proposal for its view (a second one would be equivocation)."""
    net = _running(max_batch_size=2)
    reqs = tuple(_seal(net, 4, Request(4, 10 + k, b"x%d" % k)) for k in range(3))
    batch = {
        "oversized": reqs,
        "duplicate": (reqs[0], reqs[0]),
        "unsigned": (Request(5, 1, b"not signed by 5"),),
        "from-replica": (_seal(net, 2, Request(2, 1, b"a replica is no client")),),
    }[case]
    p = _next_proposal(net, batch=batch)
    r: Replica = net.nodes[next(i for i in range(4) if i not in (p.replica, (p.view + 1) % 4))]
    voted = r.safety.last_voted_view
    ready = r.step(p.replica, p)
    assert r.rejections[reason] == 1, r.rejections
    assert r.safety.last_voted_view == voted and not ready.messages


def test_unknown_parents_are_fetched_and_the_buffer_is_bounded() -> None:
    net = _running(max_buffered_proposals=2, view_timeout_us=50_000)
    net.isolated.add(1)
    for k in range(3):
        net.submit(4, b"b%d" % k)
    assert net.run_until_idle(5_000_000)
    r: Replica = net.nodes[1]
    leader_view = net.replicas([0])[0].qc_high
    proposals = [m for m in net.recent if isinstance(m, Proposal)][-3:]
    for p in proposals:
        r.step(p.replica, p)  # each names a parent replica 1 never saw
    assert r.buffered_count == 2
    assert r.rejections["unknown parent and the buffer is full"] == 1
    assert r.fetcher.wanted  # it asks for the missing parents
    net.isolated.clear()
    net.run(500_000)
    assert r.qc_high.view >= leader_view.view - 3
    assert safety_violations(net, range(4)) == []


def test_local_kinds_and_junk_from_the_network() -> None:
    net = _running()
    r: Replica = net.nodes[1]
    for msg in (Timeout("view"), Timeout("sync"), Submit(b"x"), object(), None, 7, b"bytes"):
        r.step(2, msg)
    assert r.rejections["local kind from the network"] == 3
    assert r.rejections["unknown message type"] == 4
    r.step(2, Reply(1, 1, 4, 2, b"r"))  # replies are for clients
    assert r.rejections["unknown message type"] == 5


# --- Hypothesis: anything, any time ------------------------------------------------------------

KEYS = make_keyrings("modeled", 4, range(6), seed=b"test-31")
SAMPLES = sample_messages(KEYS)
views = st.sampled_from([0, 1, 2, 3, 5, 8, 40, 2**40])
hashes = st.one_of(st.binary(min_size=32, max_size=32), st.just(GENESIS.hash), st.just(bytes(32)))
replicas = st.integers(0, 6)
requests = st.builds(Request, st.integers(0, 6), st.integers(0, 5), st.binary(max_size=8))
votes = st.builds(Vote, views, hashes, replicas)


@st.composite
def qcs(draw: st.DrawFn) -> QC:
    if draw(st.booleans()):
        return GENESIS_QC
    v = draw(views)
    h = draw(hashes)
    voters = draw(st.lists(replicas, max_size=4))
    return QC(v, h, tuple(Vote(v, h, i) for i in voters))


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    qc = draw(qcs())
    parent = qc.block_hash if draw(st.booleans()) else draw(hashes)
    return Block(
        draw(views),
        draw(st.integers(0, 8)),
        parent,
        qc,
        draw(st.integers(0, 10**7)),
        tuple(draw(st.lists(requests, max_size=3))),
        draw(replicas),
    )


new_views = st.builds(NewView, views, qcs(), st.one_of(st.none(), votes), st.booleans(), replicas)
hostile = st.one_of(
    requests,
    votes,
    new_views,
    st.builds(
        Proposal, blocks(), st.lists(st.one_of(new_views, votes), max_size=3).map(tuple), replicas
    ),
    st.builds(Reply, views, st.integers(0, 5), st.integers(0, 6), replicas, st.binary(max_size=4)),
    st.builds(
        SyncRequest,
        st.one_of(st.just(b""), hashes),
        st.integers(0, 9),
        st.integers(1, 64),
        replicas,
    ),
    st.builds(
        SyncResponse,
        st.one_of(st.none(), qcs()),
        st.lists(blocks(), max_size=3).map(tuple),
        replicas,
    ),
    st.sampled_from(SAMPLES),
    st.sampled_from([Timeout("view"), Timeout("sync"), Submit(b"x"), object(), None]),
)


def _mutate(net: Network, pick: int, delta: int) -> Any:
    """A recently sent real message with one field changed (its authenticator kept)."""
    if not net.recent:
        return None
    msg = net.recent[pick % len(net.recent)]
    names = [f.name for f in dataclasses.fields(msg) if f.init and f.name != "auth"]
    name = names[delta % len(names)]
    value = getattr(msg, name)
    if isinstance(value, bool):
        value = not value
    elif isinstance(value, int):
        value = max(0, value + delta)
    elif isinstance(value, bytes):
        value = bytes([(value[0] + 1) % 256]) + value[1:] if value else b"x"
    elif isinstance(value, tuple):
        value = value[1:] + value[:1]
    else:
        return msg
    values = {f: getattr(msg, f) for f in names}
    values[name] = value
    try:
        return type(msg)(**values, auth=msg.auth)
    except ValueError:
        return msg


actions = st.lists(
    st.tuples(
        st.one_of(hostile, st.tuples(st.just("mutate"), st.integers(0, 255), st.integers(-2, 3))),
        st.sampled_from(["keep", "sign", "relay"]),
        st.integers(0, 2),  # which honest replica
        st.integers(0, 4),  # run a little between deliveries
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(actions)
def test_hostile_input_never_raises_and_the_group_stays_safe_and_live(actions: list) -> None:
    net = Network(
        n=4,
        clients=2,
        seed=31,
        latency_us=(500, 1_500),
        view_timeout_us=40_000,
        client_timeout_us=60_000,
    )
    net.submit(4, b"a")
    net.submit(5, b"b")
    for what, how, target, pause in actions:
        msg = _mutate(net, *what[1:]) if isinstance(what, tuple) else what
        if how == "sign" and hasattr(msg, "body"):
            msg = msg.with_auth(net.keyrings[ATTACKER].sign(msg.body()))
        src = getattr(msg, "replica", ATTACKER) if how == "relay" else ATTACKER
        if not isinstance(src, int) or not 0 <= src < 4:
            src = ATTACKER
        dst = (0, 1, 2)[target]
        before = _reject_count(net.replicas([dst])[0])
        net.deliver_now(src, dst, msg)  # must not raise
        after = _reject_count(net.replicas([dst])[0])
        if how == "sign" and src == ATTACKER and getattr(msg, "replica", ATTACKER) != ATTACKER:
            assert after > before or not hasattr(msg, "replica")  # someone else's name
        net.run(pause * 2_000)
    assert safety_violations(net, range(4)) == []
    net.submit(4, b"c")
    net.submit(5, b"d")
    assert net.run_until_idle(20_000_000), [r.view for r in net.replicas()]
    net.run(300_000)
    assert safety_violations(net, range(4)) == []
    assert len(net.completed) == 4


@settings(max_examples=60, deadline=None)
@given(hostile, st.integers(0, 3), st.integers(0, 6))
def test_any_message_from_anyone_never_raises(msg: Any, dst: int, src: int) -> None:
    net = Network(n=4, clients=2, seed=5)
    for node in list(net.nodes.values()):
        node.step(src, msg)  # replicas and clients alike
        node.tick(1_000)
