"""Canonical bytes for the records a Raft node persists, so a driver can store them anywhere.

Theory of operation
-------------------
Figure 2's persistent state is ``currentTerm``, ``votedFor`` and ``log[]``, "updated on stable
storage before responding to RPCs"; §7 adds the snapshot. ``Ready.persist`` holds, in order:

* :class:`HardState` — ``(term, voted_for, commit)`` whenever one of them changes (``commit`` is
  an addition, as in etcd: a restarted node re-applies its committed entries at once);
* :class:`~.messages.Entry` — each entry appended to the log;
* :class:`Truncate` — the log lost every entry from ``index`` on (a conflicting suffix, §5.3);
* :class:`~.messages.Snapshot` — the node took or installed a snapshot; the log before it is gone.

Replayed in order they rebuild the node (:mod:`.recovery`). A record is ``encode((tag,
payload))``; :func:`decode_record` trusts nothing (a disk can be corrupted) and raises only
:class:`~.messages.MessageError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medbench import codec
from medbench.consensus.raft import wire
from medbench.consensus.raft.messages import (
    MAX_U63,
    NO_NODE,
    Entry,
    MessageError,
    Snapshot,
)


@dataclass(frozen=True, slots=True)
class HardState:
    """``currentTerm``, ``votedFor`` (``-1``: none) and the commit index."""

    term: int
    voted_for: int
    commit: int


@dataclass(frozen=True, slots=True)
class Truncate:
    """Every entry from ``index`` on was deleted."""

    index: int


_HARD, _ENTRY, _TRUNCATE, _SNAPSHOT = range(4)


def encode_record(rec: Any) -> bytes:
    """Canonical bytes of one persisted record (caller misuse raises ``TypeError``)."""
    t = type(rec)
    if t is HardState:
        return codec.encode((_HARD, (rec.term, rec.voted_for, rec.commit)))
    if t is Entry:
        return codec.encode((_ENTRY, rec.wire()))
    if t is Truncate:
        return codec.encode((_TRUNCATE, rec.index))
    if t is Snapshot:
        return codec.encode((_SNAPSHOT, rec.wire()))
    raise TypeError(f"not a Raft record: {t.__name__}")


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
    if tag == _HARD:
        term, voted, commit = wire._expect(wire._list(payload, "hard state"), 3)
        for name, value, low in (
            ("term", term, 0),
            ("voted_for", voted, NO_NODE),
            ("commit", commit, 0),
        ):
            if type(value) is not int or not low <= value <= MAX_U63:
                raise MessageError(f"bad {name} in hard state")
        return HardState(term, voted, commit)
    if tag == _ENTRY:
        return wire.parse_entry(payload)
    if tag == _TRUNCATE:
        if type(payload) is not int or not 1 <= payload <= MAX_U63:
            raise MessageError("bad truncation index")
        return Truncate(payload)
    if tag == _SNAPSHOT:
        return wire.parse_snapshot(payload)
    raise MessageError(f"unknown record tag {tag}")
