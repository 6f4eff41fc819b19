"""Decoding HotStuff messages from untrusted bytes: strict, bounded, canonical.

Theory of operation
-------------------
:func:`decode_message` reads ``encode((body, auth))`` with :func:`medbench.codec.decode` (bounded
size, depth and container lengths; a caller may tighten the size bound with ``max_bytes``), then
the body ``(code, fields...)`` with one parser per wire code. Each parser checks the arity and
builds the message, whose constructor checks every field's type and range; nested structures (a
block inside a proposal, a QC inside a block or a NEW-VIEW, NEW-VIEWs inside a timeout
certificate, blocks inside a sync response) are parsed the same way. The result must re-encode to
exactly the input, so one message has one encoding. Whatever the input, the only exception is
:class:`~.messages.MessageError`; local kinds have no wire code and can never come out of it.
"""

from __future__ import annotations

from typing import Any

from medbench import codec
from medbench.consensus.auth import Auth
from medbench.consensus.hotstuff.messages import (
    BLOCK_CODE,
    QC,
    WIRE_CODES,
    Block,
    Kind,
    Message,
    MessageError,
    NewView,
    Proposal,
    Reply,
    Request,
    SyncRequest,
    SyncResponse,
    Vote,
)


def _list(value: Any, name: str) -> list[Any]:
    if type(value) is not list:
        raise MessageError(f"{name} must be an array")
    return value


def _expect(fields: list[Any], n: int) -> list[Any]:
    if len(fields) != n:
        raise MessageError(f"expected {n} fields, got {len(fields)}")
    return fields


def _wire_auth(value: Any) -> Auth:
    if type(value) is bytes:
        return value
    if type(value) is list:
        return tuple(value)
    raise MessageError("authenticator must be bytes or an array of bytes")


def _decode_body(body: Any, name: str) -> list[Any]:
    if type(body) is not bytes:
        raise MessageError(f"{name} must be bytes")
    try:
        fields = codec.decode(body)
    except codec.DecodeError as exc:
        raise MessageError(f"{name}: {exc}") from None
    fields = _list(fields, name)
    if not fields or type(fields[0]) is not int:
        raise MessageError(f"{name} must start with a code")
    return fields


def _from_pair(pair: Any) -> Any:
    """Parse a ``[body, auth]`` pair into a message."""
    items = _list(pair, "message")
    if len(items) != 2:
        raise MessageError("a message is a [body, auth] pair")
    body = items[0]
    fields = _decode_body(body, "body")
    parser = _PARSERS.get(fields[0])
    if parser is None:
        raise MessageError(f"unknown wire code {fields[0]!r}")
    try:
        msg = parser(fields[1:], _wire_auth(items[1]))
    except MessageError:
        raise
    except (TypeError, ValueError) as exc:  # arity errors and constructor checks
        raise MessageError(f"{type(exc).__name__}: {exc}") from None
    if msg.body() != body:
        raise MessageError("body is not in canonical form")
    return msg


def _typed(pair: Any, cls: type) -> Any:
    msg = _from_pair(pair)
    if type(msg) is not cls:
        raise MessageError(f"expected a {cls.__name__}")
    return msg


def parse_qc(value: Any) -> QC:
    """A QC from its wire form ``[view, block_hash, [[voter, auth], ...]]``."""
    view, block_hash, pairs = _expect(_list(value, "qc"), 3)
    votes = []
    for pair in _list(pairs, "qc votes"):
        voter, auth = _expect(_list(pair, "qc vote"), 2)
        votes.append(Vote(view, block_hash, voter, _wire_auth(auth)))
    return QC(view, block_hash, tuple(votes))


def parse_block(body: Any) -> Block:
    """A block from its canonical body bytes (which must re-encode exactly)."""
    fields = _decode_body(body, "block")
    if fields[0] != BLOCK_CODE:
        raise MessageError("not a block")
    try:
        v, h, parent, justify, ts, batch, proposer = _expect(fields[1:], 7)
        block = Block(
            v,
            h,
            parent,
            parse_qc(justify),
            ts,
            tuple(_typed(r, Request) for r in _list(batch, "batch")),
            proposer,
        )
    except MessageError:
        raise
    except (TypeError, ValueError) as exc:
        raise MessageError(f"block: {type(exc).__name__}: {exc}") from None
    if block.body() != body:
        raise MessageError("block is not in canonical form")
    return block


def _p_request(f: list[Any], auth: Auth) -> Request:
    c, t, o = _expect(f, 3)
    return Request(c, t, o, auth)


def _p_reply(f: list[Any], auth: Auth) -> Reply:
    v, t, c, r, res = _expect(f, 5)
    return Reply(v, t, c, r, res, auth)


def _p_vote(f: list[Any], auth: Auth) -> Vote:
    v, h, r = _expect(f, 3)
    return Vote(v, h, r, auth)


def _p_new_view(f: list[Any], auth: Auth) -> NewView:
    v, qc, vote, busy, r = _expect(f, 5)
    return NewView(v, parse_qc(qc), None if vote is None else _typed(vote, Vote), busy, r, auth)


def _p_proposal(f: list[Any], auth: Auth) -> Proposal:
    block, tc, r = _expect(f, 3)
    entries = []
    for x in _list(tc, "timeout certificate"):
        m = _from_pair(x)
        if type(m) is not NewView and type(m) is not Vote:
            raise MessageError("a timeout certificate holds NEW-VIEWs and votes")
        entries.append(m)
    return Proposal(parse_block(block), tuple(entries), r, auth)


def _p_sync_request(f: list[Any], auth: Auth) -> SyncRequest:
    h, known, count, r = _expect(f, 4)
    return SyncRequest(h, known, count, r, auth)


def _p_sync_response(f: list[Any], auth: Auth) -> SyncResponse:
    qc, blocks, r = _expect(f, 3)
    return SyncResponse(
        None if qc is None else parse_qc(qc),
        tuple(parse_block(b) for b in _list(blocks, "blocks")),
        r,
        auth,
    )


_PARSERS: dict[int, Any] = {
    WIRE_CODES[Kind.REQUEST]: _p_request,
    WIRE_CODES[Kind.REPLY]: _p_reply,
    WIRE_CODES[Kind.PROPOSAL]: _p_proposal,
    WIRE_CODES[Kind.VOTE]: _p_vote,
    WIRE_CODES[Kind.NEW_VIEW]: _p_new_view,
    WIRE_CODES[Kind.SYNC_REQUEST]: _p_sync_request,
    WIRE_CODES[Kind.SYNC_RESPONSE]: _p_sync_response,
}


def decode_message(data: bytes, max_bytes: int = codec.MAX_MESSAGE_BYTES) -> Message:
    """Parse untrusted wire bytes into a message; raises only :class:`MessageError`.

    ``max_bytes`` bounds the input before anything is decoded (oversized input is refused).
    Local kinds have no wire code, so bytes from the network can never become one.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MessageError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise MessageError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    limits = codec.Limits(max_bytes=max_bytes)
    try:
        outer = codec.decode(data, limits)
    except codec.DecodeError as exc:
        raise MessageError(str(exc)) from None
    try:
        msg = _from_pair(outer)
    except RecursionError:
        raise MessageError("nesting too deep") from None
    if msg.encode() != bytes(data):
        raise MessageError("not in canonical form")
    return msg  # type: ignore[no-any-return]
