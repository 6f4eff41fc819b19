"""Decoding Raft messages from untrusted bytes: strict, bounded, canonical.

Theory of operation
-------------------
:func:`decode_message` reads the body ``(code, fields...)`` with :func:`medbench.codec.decode`
(bounded size, depth and container lengths; ``max_bytes`` tightens the size bound) and builds the
message with one parser per wire code; each constructor checks every field's type and range
(entries must follow ``prev_log_index`` without gaps, snapshot client rows must be sorted). The
result must re-encode to exactly the input, so one message has one encoding. Whatever the input,
the only exception is :class:`~.messages.MessageError`. (Raft authenticates nothing: well-formed
bytes from anyone decode to a message that will be believed.)
"""

from __future__ import annotations

from typing import Any

from medbench import codec
from medbench.consensus.raft.messages import (
    WIRE_CODES,
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    InstallSnapshot,
    InstallSnapshotResponse,
    Kind,
    Message,
    MessageError,
    Reply,
    Request,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
)


def _list(value: Any, name: str) -> list[Any]:
    if type(value) is not list:
        raise MessageError(f"{name} must be an array")
    return value


def _expect(fields: list[Any], n: int) -> list[Any]:
    if len(fields) != n:
        raise MessageError(f"expected {n} fields, got {len(fields)}")
    return fields


def parse_request(value: Any) -> Request:
    """A request from its fields ``[client, timestamp, operation]``."""
    c, t, o = _expect(_list(value, "request"), 3)
    return Request(c, t, o)


def parse_entry(value: Any) -> Entry:
    """An entry from its wire form ``[term, index, request fields or None]``."""
    term, index, req = _expect(_list(value, "entry"), 3)
    return Entry(term, index, None if req is None else parse_request(req))


def parse_snapshot(value: Any) -> Snapshot:
    """A snapshot from its wire form."""
    idx, term, digest, applied, clients = _expect(_list(value, "snapshot"), 5)
    rows = []
    for row in _list(clients, "clients"):
        c, t, r = _expect(_list(row, "client row"), 3)
        rows.append((c, t, r))
    return Snapshot(idx, term, digest, applied, tuple(rows))


def _p_request(f: list[Any]) -> Request:
    return parse_request(f)


def _p_reply(f: list[Any]) -> Reply:
    c, t, r, ok, res, leader = _expect(f, 6)
    return Reply(c, t, r, ok, res, leader)


def _p_request_vote(f: list[Any]) -> RequestVote:
    t, c, li, lt = _expect(f, 4)
    return RequestVote(t, c, li, lt)


def _p_request_vote_response(f: list[Any]) -> RequestVoteResponse:
    t, v, g = _expect(f, 3)
    return RequestVoteResponse(t, v, g)


def _p_append_entries(f: list[Any]) -> AppendEntries:
    t, leader, pi, pt, entries, commit = _expect(f, 6)
    return AppendEntries(
        t, leader, pi, pt, tuple(parse_entry(e) for e in _list(entries, "entries")), commit
    )


def _p_append_entries_response(f: list[Any]) -> AppendEntriesResponse:
    t, follower, ok, index, hint = _expect(f, 5)
    return AppendEntriesResponse(t, follower, ok, index, hint)


def _p_install_snapshot(f: list[Any]) -> InstallSnapshot:
    t, leader, snap = _expect(f, 3)
    return InstallSnapshot(t, leader, parse_snapshot(snap))


def _p_install_snapshot_response(f: list[Any]) -> InstallSnapshotResponse:
    t, follower, last = _expect(f, 3)
    return InstallSnapshotResponse(t, follower, last)


_PARSERS: dict[int, Any] = {
    WIRE_CODES[Kind.REQUEST]: _p_request,
    WIRE_CODES[Kind.REPLY]: _p_reply,
    WIRE_CODES[Kind.REQUEST_VOTE]: _p_request_vote,
    WIRE_CODES[Kind.REQUEST_VOTE_RESPONSE]: _p_request_vote_response,
    WIRE_CODES[Kind.APPEND_ENTRIES]: _p_append_entries,
    WIRE_CODES[Kind.APPEND_ENTRIES_RESPONSE]: _p_append_entries_response,
    WIRE_CODES[Kind.INSTALL_SNAPSHOT]: _p_install_snapshot,
    WIRE_CODES[Kind.INSTALL_SNAPSHOT_RESPONSE]: _p_install_snapshot_response,
}


def decode_message(data: bytes, max_bytes: int = codec.MAX_MESSAGE_BYTES) -> Message:
    """Parse untrusted wire bytes into a message; raises only :class:`MessageError`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MessageError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise MessageError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        fields = codec.decode(data, codec.Limits(max_bytes=max_bytes))
    except codec.DecodeError as exc:
        raise MessageError(str(exc)) from None
    fields = _list(fields, "message")
    if not fields or type(fields[0]) is not int:
        raise MessageError("a message starts with its wire code")
    parser = _PARSERS.get(fields[0])
    if parser is None:
        raise MessageError(f"unknown wire code {fields[0]!r}")
    try:
        msg = parser(fields[1:])
    except MessageError:
        raise
    except (TypeError, ValueError) as exc:
        raise MessageError(f"{type(exc).__name__}: {exc}") from None
    if msg.encode() != bytes(data):
        raise MessageError("not in canonical form")
    return msg  # type: ignore[no-any-return]
