"""The unchecked constructors of the hot paths build exactly what the checked ones build."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from medbench import codec
from medbench.consensus.hotstuff.messages import Reply, Vote, own_reply, own_vote
from medbench.consensus.raft.messages import AppendEntriesResponse, own_append_response

u63 = st.integers(0, (1 << 63) - 1)
digest = st.binary(min_size=32, max_size=32)


@settings(max_examples=60, deadline=None)
@given(u63, u63, u63, u63, st.binary(max_size=64))
def test_own_reply_equals_the_checked_reply(
    view: int, ts: int, client: int, replica: int, result: bytes
) -> None:
    mine, checked = (
        own_reply(view, ts, client, replica, result),
        Reply(view, ts, client, replica, result),
    )
    assert mine == checked and mine.body() == checked.body() and mine.auth == b""
    assert mine.encode() == checked.encode()


@settings(max_examples=60, deadline=None)
@given(u63, digest, u63)
def test_own_vote_equals_the_checked_vote(view: int, block_hash: bytes, replica: int) -> None:
    mine, checked = own_vote(view, block_hash, replica), Vote(view, block_hash, replica)
    assert mine == checked and mine.body() == checked.body()
    assert mine.digest() == checked.digest()


@settings(max_examples=60, deadline=None)
@given(u63, u63, st.booleans(), u63, u63)
def test_own_append_response_equals_the_checked_one(
    term: int, follower: int, success: bool, index: int, hint: int
) -> None:
    mine = own_append_response(term, follower, success, index, hint)
    checked = AppendEntriesResponse(term, follower, success, index, hint)
    assert mine == checked and mine.encode() == checked.encode()


def test_encode_plain_is_encode_for_plain_tuples() -> None:
    for value in [(1, b"x", "y", None, True), (2, (3, (b"z",)), -5), ()]:
        assert codec.encode_plain(value) == codec.encode(value)
