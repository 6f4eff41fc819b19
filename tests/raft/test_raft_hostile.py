"""Hostile input: malformed, forged or unexpected input never raises and is counted.

Raft authenticates nothing, so a well-formed message is believed (``test_raft_byzantine.py``
shows what a lie does); what it can refuse it does: bytes that do not decode, a sender that is
not the node it claims to be (as far as the transport tells), a node id that is no peer, a
client request in a node's name, local kinds from the network, unknown types. Hypothesis throws
every message kind with arbitrary fields, and arbitrary bytes at the decoder.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from raft_harness import Network, safety_violations, sample_messages

from medbench.consensus.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    InstallSnapshot,
    InstallSnapshotResponse,
    MessageError,
    Reply,
    Request,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    Submit,
    Timeout,
    decode_message,
    decode_record,
)

SAMPLES = sample_messages()


def test_forged_and_foreign_senders_are_refused(net3: Network) -> None:
    leader = net3.run_until_leader()
    r = net3.replicas([(leader + 1) % 3])[0]
    other = (leader + 2) % 3
    term = r.term
    msgs = [
        RequestVote(term + 1, other, 99, 99),
        RequestVoteResponse(term, other, True),
        AppendEntries(term + 1, other, 0, 0, (), 0),
        AppendEntriesResponse(term, other, True, 1, 0),
        InstallSnapshot(term, other, Snapshot(1, 1, bytes(32), 0, ())),
        InstallSnapshotResponse(term, other, 1),
    ]
    for m in msgs:
        r.step(leader if leader != other else 5, m)  # the transport says someone else sent it
    assert r.rejections["forged sender"] == len(msgs)
    assert r.term == term  # nothing forged changed anything
    r.step(r.node_id, RequestVote(term + 1, r.node_id, 9, 9))
    r.step(7, AppendEntries(term + 1, 7, 0, 0, (), 0))
    assert r.rejections["sender is not a peer"] == 2 and r.term == term


def test_requests_in_a_node_name_and_local_kinds_are_refused(net3: Network) -> None:
    leader = net3.run_until_leader()
    r = net3.replicas([leader])[0]
    r.step(1, Request(1, 1, b"a node is no client"))
    assert r.rejections["request from a node id"] == 1
    for m in (Timeout("election"), Timeout("heartbeat"), Submit(b"x")):
        r.step(1, m)
    assert r.rejections["local kind from the network"] == 3
    r.step(1, Reply(3, 1, 1, True, b"", 1))  # replies are for clients
    assert r.rejections["unknown message type"] == 1


def test_stale_terms_are_answered_not_obeyed(net3: Network) -> None:
    leader = net3.run_until_leader()
    net3.run(100_000)
    r = net3.replicas([(leader + 1) % 3])[0]
    old = (leader + 2) % 3
    last = r.log.last_index
    ready = r.step(old, AppendEntries(0, old, 0, 0, (Entry(0, 1, None),), 1))
    (send,) = ready.messages
    assert isinstance(send.msg, AppendEntriesResponse) and not send.msg.success
    assert send.msg.term == r.term and r.log.last_index == last
    ready = r.step(old, RequestVote(0, old, 99, 99))
    assert not ready.messages[0].msg.granted


# --- Hypothesis: anything, any time ------------------------------------------------------------

terms = st.sampled_from([0, 1, 2, 3, 9, 2**40])
nodes = st.integers(-1, 6)
ids = st.integers(0, 6)
small = st.integers(0, 12)
requests = st.builds(Request, st.integers(0, 6), small, st.binary(max_size=6))


@st.composite
def append_entries(draw: st.DrawFn) -> AppendEntries:
    prev = draw(small)
    count = draw(st.integers(0, 3))
    entries = tuple(
        Entry(draw(terms), prev + 1 + k, draw(st.one_of(st.none(), requests))) for k in range(count)
    )
    return AppendEntries(draw(terms), draw(ids), prev, draw(terms), entries, draw(small))


snapshots = st.builds(
    Snapshot,
    small,
    terms,
    st.binary(min_size=32, max_size=32),
    small,
    st.lists(
        st.tuples(ids, small, st.binary(max_size=3)), max_size=3, unique_by=lambda r: r[0]
    ).map(lambda rows: tuple(sorted(rows))),
)
hostile = st.one_of(
    requests,
    st.builds(Reply, ids, small, ids, st.booleans(), st.binary(max_size=3), nodes),
    st.builds(RequestVote, terms, ids, small, terms),
    st.builds(RequestVoteResponse, terms, ids, st.booleans()),
    append_entries(),
    st.builds(AppendEntriesResponse, terms, ids, st.booleans(), small, small),
    st.builds(InstallSnapshot, terms, ids, snapshots),
    st.builds(InstallSnapshotResponse, terms, ids, small),
    st.sampled_from(SAMPLES),
    st.sampled_from([Timeout("election"), Submit(b"x"), object(), None, 3]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(hostile, st.integers(0, 4), st.integers(0, 2)), min_size=1, max_size=10))
def test_any_message_never_raises(actions: list[tuple[Any, int, int]]) -> None:
    net = Network(n=3, clients=2, seed=5, election_timeout_us=40_000)
    net.submit(3, b"a")
    for msg, src, dst in actions:
        before = net.replicas([dst])[0].rejections.total()
        net.deliver_now(src, dst, msg)  # must not raise
        sender = getattr(msg, "sender", None)
        if sender is not None and sender != src:
            assert net.replicas([dst])[0].rejections.total() == before + 1
        net.run(3_000)
    for node in net.nodes.values():  # the clients too
        node.step(0, SAMPLES[1])
        node.step(1, None)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.sampled_from([m.encode() for m in SAMPLES])), st.data())
def test_arbitrary_bytes_raise_only_message_error(data: bytes, draw: st.DataObject) -> None:
    if data and draw.draw(st.booleans()):
        i = draw.draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw.draw(st.integers(1, 255))]) + data[i + 1 :]
    for decoder in (decode_message, decode_record):
        with contextlib.suppress(MessageError):
            decoder(data)


def test_the_group_stays_safe_and_live_after_junk() -> None:
    """Malformed junk aimed at every node changes nothing (the lies are the Byzantine tests)."""
    net = Network(n=3, clients=2, seed=9, election_timeout_us=40_000, client_timeout_us=100_000)
    leader = net.run_until_leader()
    for dst in range(3):
        for src in range(3):
            for m in (None, object(), Timeout("election"), Reply(3, 1, src, True, b"", src)):
                net.deliver_now(src, dst, m)
            net.deliver_now((src + 1) % 3, dst, RequestVote(99, src, 0, 0))  # forged sender
    assert net.run_until_leader() == leader and net.replicas([leader])[0].term == 1
    net.submit(3, b"x")
    net.submit(4, b"y")
    assert net.run_until_idle(5_000_000)
    net.run(200_000)
    assert safety_violations(net, range(3)) == []
