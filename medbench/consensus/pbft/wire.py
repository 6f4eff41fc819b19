"""Decoding PBFT messages from untrusted bytes: strict, bounded, canonical.

Theory of operation
-------------------
:func:`decode_message` reads ``encode((body, auth))`` with :func:`medbench.codec.decode` (bounded
size, depth and lengths), then the body ``(code, fields...)`` with one parser per wire code. Each
parser checks the arity and builds the message, whose constructor checks every field's type and
range; nested messages (requests in a batch, prepares in a certificate) are parsed the same way
and must be of the expected kind. The result must re-encode to exactly the input, so one message
has one encoding. Whatever the input, the only exception is :class:`~.messages.MessageError`;
local kinds have no wire code and can never come out of it.
"""

from __future__ import annotations

from typing import Any

from medbench import codec
from medbench.consensus.auth import Auth
from medbench.consensus.pbft.messages import (
    WIRE_CODES,
    Block,
    Checkpoint,
    Commit,
    Fetch,
    Item,
    Kind,
    Message,
    MessageError,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    Request,
    State,
    StateBatch,
    ViewChange,
)


def _list(value: Any, name: str) -> list[Any]:
    if type(value) is not list:
        raise MessageError(f"{name} must be an array")
    return value


def _wire_auth(value: Any) -> Auth:
    if type(value) is bytes:
        return value
    if type(value) is list:
        return tuple(value)
    raise MessageError("authenticator must be bytes or an array of bytes")


def _from_pair(pair: Any) -> Any:
    """Parse a nested ``[body, auth]`` pair into a message."""
    items = _list(pair, "message")
    if len(items) != 2 or type(items[0]) is not bytes:
        raise MessageError("a message is a [body, auth] pair")
    body = items[0]
    try:
        fields = codec.decode(body)
    except codec.DecodeError as exc:
        raise MessageError(f"body: {exc}") from None
    fields = _list(fields, "body")
    if not fields or type(fields[0]) is not int:
        raise MessageError("body must start with a wire code")
    parser = _PARSERS.get(fields[0])
    if parser is None:
        raise MessageError(f"unknown wire code {fields[0]!r}")
    try:
        msg = parser(fields[1:], _wire_auth(items[1]))
    except (TypeError, ValueError) as exc:  # arity errors and constructor checks
        raise MessageError(f"{type(exc).__name__}: {exc}") from None
    if msg.body() != body:
        raise MessageError("body is not in canonical form")
    return msg


def _expect(fields: list[Any], n: int) -> list[Any]:
    if len(fields) != n:
        raise MessageError(f"expected {n} fields, got {len(fields)}")
    return fields


def _item(pair: Any) -> Item:
    msg = _from_pair(pair)
    if not isinstance(msg, (Request, Block)):
        raise MessageError("a batch holds requests and blocks only")
    return msg


def _typed(pair: Any, cls: type) -> Any:
    msg = _from_pair(pair)
    if not isinstance(msg, cls):
        raise MessageError(f"expected a {cls.__name__}")
    return msg


def _p_request(f: list[Any], auth: Auth) -> Request:
    c, t, o = _expect(f, 3)
    return Request(c, t, o, auth)


def _p_block(f: list[Any], auth: Auth) -> Block:
    v, h, prev, b, txs, ts = _expect(f, 6)
    return Block(v, h, prev, b, tuple(_list(txs, "tx_ids")), ts, auth)


def _p_pre_prepare(f: list[Any], auth: Auth) -> PrePrepare:
    v, s, d, ts, batch, r = _expect(f, 6)
    items = tuple(_item(p) for p in _list(batch, "batch"))
    return PrePrepare(v, s, d, ts, items, r, auth)


def _p_prepare(f: list[Any], auth: Auth) -> Prepare:
    v, s, d, r = _expect(f, 4)
    return Prepare(v, s, d, r, auth)


def _p_commit(f: list[Any], auth: Auth) -> Commit:
    v, s, d, r = _expect(f, 4)
    return Commit(v, s, d, r, auth)


def _p_reply(f: list[Any], auth: Auth) -> Reply:
    v, t, c, r, res, refusal = _expect(f, 6)
    return Reply(v, t, c, r, res, auth, refusal)


def _p_checkpoint(f: list[Any], auth: Auth) -> Checkpoint:
    s, d, r = _expect(f, 3)
    return Checkpoint(s, d, r, auth)


def _p_proof(value: Any) -> PreparedProof:
    pp, prepares = _expect(_list(value, "prepared proof"), 2)
    return PreparedProof(
        _typed(pp, PrePrepare), tuple(_typed(p, Prepare) for p in _list(prepares, "prepares"))
    )


def _p_view_change(f: list[Any], auth: Auth) -> ViewChange:
    v, h, proof, prepared, r = _expect(f, 5)
    return ViewChange(
        v,
        h,
        tuple(_typed(c, Checkpoint) for c in _list(proof, "checkpoint proof")),
        tuple(_p_proof(p) for p in _list(prepared, "prepared")),
        r,
        auth,
    )


def _p_new_view(f: list[Any], auth: Auth) -> NewView:
    v, vcs, pps, r = _expect(f, 4)
    return NewView(
        v,
        tuple(_typed(x, ViewChange) for x in _list(vcs, "view changes")),
        tuple(_typed(x, PrePrepare) for x in _list(pps, "pre-prepares")),
        r,
        auth,
    )


def _p_fetch(f: list[Any], auth: Auth) -> Fetch:
    s, r = _expect(f, 2)
    return Fetch(s, r, auth)


def _p_state_batch(value: Any) -> StateBatch:
    s, ts, items = _expect(_list(value, "state batch"), 3)
    return StateBatch(s, ts, tuple(_item(i) for i in _list(items, "items")))


def _p_state(f: list[Any], auth: Auth) -> State:
    s, c, batches, proof, r = _expect(f, 5)
    return State(
        s,
        c,
        tuple(_p_state_batch(b) for b in _list(batches, "batches")),
        tuple(_typed(x, Checkpoint) for x in _list(proof, "proof")),
        r,
        auth,
    )


_PARSERS: dict[int, Any] = {
    WIRE_CODES[Kind.REQUEST]: _p_request,
    WIRE_CODES[Kind.PRE_PREPARE]: _p_pre_prepare,
    WIRE_CODES[Kind.PREPARE]: _p_prepare,
    WIRE_CODES[Kind.COMMIT]: _p_commit,
    WIRE_CODES[Kind.REPLY]: _p_reply,
    WIRE_CODES[Kind.CHECKPOINT]: _p_checkpoint,
    WIRE_CODES[Kind.VIEW_CHANGE]: _p_view_change,
    WIRE_CODES[Kind.NEW_VIEW]: _p_new_view,
    WIRE_CODES[Kind.FETCH]: _p_fetch,
    WIRE_CODES[Kind.STATE]: _p_state,
    WIRE_CODES[Kind.BLOCK]: _p_block,
}


def decode_message(data: bytes) -> Message:
    """Parse untrusted wire bytes into a message; raises only :class:`MessageError`.

    Local kinds have no wire code, so bytes from the network can never become one.
    """
    try:
        outer = codec.decode(data)
    except codec.DecodeError as exc:
        raise MessageError(str(exc)) from None
    try:
        msg = _from_pair(outer)
    except RecursionError:
        raise MessageError("nesting too deep") from None
    if msg.encode() != bytes(data):
        raise MessageError("not in canonical form")
    return msg  # type: ignore[no-any-return]
