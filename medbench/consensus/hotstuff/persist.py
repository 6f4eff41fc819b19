"""Canonical bytes for the records a HotStuff replica persists, so a driver can store them.

Theory of operation
-------------------
``Ready.persist`` holds Python objects, in the order they must reach the disk:

* :class:`~.messages.Block` — every block the replica admitted to its tree (parent first);
* :class:`~.messages.Vote` — the replica's own vote, before it is sent (the safety rules'
  record, :mod:`.safety`);
* :class:`~.safety.LockRecord` — the QC of a new ``b_lock``;
* :class:`~.messages.Proposal` — the replica's own proposal, before it is sent (a restarted
  leader never proposes twice in one view);
* :class:`~.messages.NewView` — the replica's own NEW-VIEW (restores its view after a restart);
* :class:`CommitRecord` — the committed branch now reaches this block.

A record is ``encode((tag, payload))``; messages keep their wire form (authenticators survive the
disk), a block its canonical body, a QC its wire form. :func:`decode_record` trusts nothing: the
disk may be corrupted, so it raises only :class:`~.messages.MessageError`, and a record must
re-encode to exactly the stored bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medbench import codec
from medbench.consensus.hotstuff import wire
from medbench.consensus.hotstuff.messages import (
    DIGEST_SIZE,
    MAX_U63,
    Block,
    MessageError,
    NewView,
    Proposal,
    Vote,
)
from medbench.consensus.hotstuff.safety import LockRecord


@dataclass(frozen=True, slots=True)
class CommitRecord:
    """The ledger reaches ``block_hash`` at ``height``."""

    height: int
    block_hash: bytes


_BLOCK, _VOTE, _PROPOSAL, _NEW_VIEW, _LOCK, _COMMIT = range(6)
_MESSAGES = {_VOTE: Vote, _PROPOSAL: Proposal, _NEW_VIEW: NewView}
_TAGS = {Vote: _VOTE, Proposal: _PROPOSAL, NewView: _NEW_VIEW}


def encode_record(rec: Any) -> bytes:
    """Canonical bytes of one persisted record (caller misuse raises ``TypeError``)."""
    t = type(rec)
    if t is Block:
        return codec.encode((_BLOCK, rec.body()))
    tag = _TAGS.get(t)
    if tag is not None:
        return codec.encode((tag, rec.encode()))
    if t is LockRecord:
        return codec.encode((_LOCK, rec.qc.wire()))
    if t is CommitRecord:
        return codec.encode((_COMMIT, (rec.height, rec.block_hash)))
    raise TypeError(f"not a HotStuff record: {t.__name__}")


def decode_record(data: bytes) -> Any:
    """Parse one stored record; raises only :class:`~.messages.MessageError`."""
    try:
        outer = codec.decode(data)
    except codec.DecodeError as exc:
        raise MessageError(f"record: {exc}") from None
    if type(outer) is not list or len(outer) != 2 or type(outer[0]) is not int:
        raise MessageError("a record is a [tag, payload] pair")
    tag, payload = outer
    try:
        rec = _decode(tag, payload)
    except MessageError:
        raise
    except (TypeError, ValueError) as exc:
        raise MessageError(f"record: {type(exc).__name__}: {exc}") from None
    if encode_record(rec) != bytes(data):
        raise MessageError("record is not in canonical form")
    return rec


def _decode(tag: int, payload: Any) -> Any:
    if tag == _BLOCK:
        return wire.parse_block(payload)
    cls = _MESSAGES.get(tag)
    if cls is not None:
        if type(payload) is not bytes:
            raise MessageError("message record must hold bytes")
        msg = wire.decode_message(payload)
        if type(msg) is not cls:
            raise MessageError(f"expected a {cls.__name__} record")
        return msg
    if tag == _LOCK:
        return LockRecord(wire.parse_qc(payload))
    if tag == _COMMIT:
        height, block_hash = wire._expect(wire._list(payload, "commit record"), 2)
        if type(height) is not int or not 0 <= height <= MAX_U63:
            raise MessageError("bad commit height")
        if type(block_hash) is not bytes or len(block_hash) != DIGEST_SIZE:
            raise MessageError("bad commit hash")
        return CommitRecord(height, block_hash)
    raise MessageError(f"unknown record tag {tag}")
