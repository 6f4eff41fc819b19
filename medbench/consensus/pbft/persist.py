"""Canonical bytes for the records a replica persists, so a driver can store them anywhere.

Theory of operation
-------------------
``Ready.persist`` holds Python objects: the replica's own protocol messages, the
:class:`~.messages.PreparedProof` certificates, :class:`~.log.ExecutedBatch`,
:class:`~.log.StableRecord` and :class:`~.log.ViewRecord`. A driver with a real disk (the SQLite
node store, the TCP runtime) writes :func:`encode_record` of each, in order, and after a crash
hands :func:`decode_record` of each to :meth:`~.replica.Replica.recover`.

A record is ``encode((tag, payload))``; messages and certificates keep their wire form (so their
authenticators survive the disk). An executed batch is stored as what recovery replays —
sequence, timestamp, batch digest, items, state digest — and its ``requests`` and ``blocks`` are
rebuilt by re-execution. :func:`decode_record` trusts nothing: the disk may be corrupted, so it
raises only :class:`~.messages.MessageError`.
"""

from __future__ import annotations

from typing import Any

from medbench import codec
from medbench.consensus.pbft import wire
from medbench.consensus.pbft.log import ExecutedBatch, StableRecord, ViewRecord
from medbench.consensus.pbft.messages import (
    MAX_U63,
    WIRE_TYPES,
    Checkpoint,
    MessageError,
    PreparedProof,
)

_MESSAGE, _PROOF, _EXECUTED, _STABLE, _VIEW = range(5)


def encode_record(rec: Any) -> bytes:
    """Canonical bytes of one persisted record (caller misuse raises ``TypeError``)."""
    if isinstance(rec, WIRE_TYPES):
        return codec.encode((_MESSAGE, rec.encode()))  # type: ignore[attr-defined]
    if isinstance(rec, PreparedProof):
        return codec.encode((_PROOF, rec.wire()))
    if isinstance(rec, ExecutedBatch):
        items = tuple(i.wire() for i in rec.items)
        payload = (rec.sequence, rec.timestamp, rec.batch_digest, items, rec.state_digest)
        return codec.encode((_EXECUTED, payload))
    if isinstance(rec, StableRecord):
        proof = tuple(c.wire() for c in rec.proof)
        return codec.encode((_STABLE, (rec.sequence, rec.state_digest, proof)))
    if isinstance(rec, ViewRecord):
        return codec.encode((_VIEW, (rec.view, rec.active)))
    raise TypeError(f"not a PBFT record: {type(rec).__name__}")


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
    if tag == _MESSAGE:
        if type(payload) is not bytes:
            raise MessageError("message record must hold bytes")
        return wire.decode_message(payload)
    if tag == _PROOF:
        return wire._p_proof(payload)
    fields = wire._list(payload, "record")
    if tag == _EXECUTED:
        seq, ts, digest, items, state = wire._expect(fields, 5)
        batch = tuple(wire._item(i) for i in wire._list(items, "items"))
        for name, value in (("sequence", seq), ("timestamp", ts)):
            if type(value) is not int or not 0 <= value <= MAX_U63:
                raise MessageError(f"{name} must be a non-negative integer")
        for value in (digest, state):
            if type(value) is not bytes or len(value) != 32:
                raise MessageError("digests are 32 bytes")
        return ExecutedBatch(seq, ts, digest, batch, (), (), state)
    if tag == _STABLE:
        seq, digest, proof = wire._expect(fields, 3)
        if type(seq) is not int or not 0 <= seq <= MAX_U63 or type(digest) is not bytes:
            raise MessageError("bad stable checkpoint record")
        if len(digest) != 32:
            raise MessageError("digests are 32 bytes")
        cps = tuple(wire._typed(c, Checkpoint) for c in wire._list(proof, "proof"))
        return StableRecord(seq, digest, cps)
    if tag == _VIEW:
        view, active = wire._expect(fields, 2)
        if type(view) is not int or not 0 <= view <= MAX_U63 or type(active) is not bool:
            raise MessageError("bad view record")
        return ViewRecord(view, active)
    raise MessageError(f"unknown record tag {tag}")
