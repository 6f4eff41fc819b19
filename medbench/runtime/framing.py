"""Frames on a runtime link: a length prefix, a type byte, a bounded payload; the HELLO frame.

Theory of operation
-------------------
A link carries a byte stream (TCP, inside TLS unless the transport is ``plain``). It is cut into
frames::

    length (4 bytes, big endian) | type (1 byte) | source id (4 bytes) | payload

``length`` counts the type byte, the source id and the payload. The source id is the node or
client id that sent the message: a link may speak for several ids (a node and its hospital
client, a load generator and its clients), and a replica must know whether a REQUEST comes from
its client or is relayed by a backup. The receiver accepts a source id only if it is one of the
ids the link's certificate names. A frame longer than the link's maximum (the
codec's largest message plus a little, by default) or empty is a protocol violation: the reader
raises :class:`FrameError` and the link is closed, before any byte of the payload is buffered.
Frame types:

* ``HELLO`` — the first frame each side sends: ``encode(["medbench-hello", version, consortium
  digest, role, claimed ids])``. With TLS the claimed ids must be ids the peer's certificate
  names (:mod:`.certs`); with the ``plain`` transport they are believed (measurement only);
* ``PBFT`` — a PBFT message in its wire form (:func:`medbench.consensus.pbft.decode_message`:
  bounded, canonical, typed errors);
* ``SIDE`` — a Medical Chain node-level message (block signatures,
  :func:`medbench.medchain.decode_side_message`);
* ``HOTSTUFF`` / ``RAFT`` — a chained HotStuff or Raft message in its wire form
  (:func:`medbench.consensus.hotstuff.decode_message`,
  :func:`medbench.consensus.raft.decode_message`), for a consortium whose ``consensus`` is one
  of them. The protocols' wire codes overlap, so the frame type says which decoder applies; a
  consortium's HELLO digest names its protocol, so members of different protocols never link.

:class:`FrameReader` is incremental (``feed(bytes) -> frames``) and keeps at most one partial
frame; it remembers when the current partial frame started, so a peer that trickles a frame
(slowloris) is cut off after a deadline by the transport. Decoding payloads into messages is
:func:`decode_payload`; its only exception is :class:`FrameError` with a short ``reason``.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Any

from medbench import codec
from medbench.consensus import hotstuff, raft
from medbench.consensus.pbft import MessageError, decode_message
from medbench.medchain.block_format import BlockSignature, SignatureWanted, decode_side_message

HEADER = struct.Struct(">IBI")
MIN_LENGTH = 5
HELLO, PBFT, SIDE, HOTSTUFF, RAFT = 1, 2, 3, 4, 5
FRAME_TYPES = frozenset({HELLO, PBFT, SIDE, HOTSTUFF, RAFT})
_PACKAGE_FRAMES = {"medbench.consensus.hotstuff": HOTSTUFF, "medbench.consensus.raft": RAFT}
_frame_of: dict[type, int] = {BlockSignature: SIDE, SignatureWanted: SIDE}
DEFAULT_MAX_FRAME = codec.MAX_MESSAGE_BYTES + 64
HELLO_MAGIC = "medbench-hello"
PROTOCOL_VERSION = 1
MAX_HELLO_BYTES = 64 * 1024
MAX_CLAIMED_IDS = 4096


class FrameError(Exception):
    """A frame or payload a peer sent is not acceptable; ``reason`` is a short counter key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def frame(kind: int, src: int, payload: bytes) -> bytes:
    """One frame of type ``kind`` from ``src`` around ``payload``."""
    return HEADER.pack(len(payload) + MIN_LENGTH, kind, src) + payload


def frame_type(cls: type) -> int:
    """The frame type of a message class: by the protocol package that defines it (cached)."""
    kind = _frame_of.get(cls)
    if kind is None:
        package = cls.__module__.rpartition(".")[0]
        kind = _frame_of[cls] = _PACKAGE_FRAMES.get(package, PBFT)
    return kind


def message_frame(src: int, msg: Any) -> bytes:
    """The frame carrying a protocol or side message (by its type) sent by ``src``."""
    return frame(frame_type(type(msg)), src, msg.encode())


class FrameReader:
    """Cuts a byte stream into ``(type, payload)`` frames (see the module docstring)."""

    __slots__ = ("_buf", "max_frame", "partial_since")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self.partial_since: float | None = None  # monotonic time the pending frame began

    @property
    def buffered(self) -> int:
        """Bytes held of a frame not yet complete."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """Append ``data``; return every complete ``(type, source id, payload)``.

        Raises :class:`FrameError` for a frame that is empty, too long or of an unknown type.
        """
        buf = self._buf
        buf += data
        out: list[tuple[int, int, bytes]] = []
        pos = 0
        end = len(buf)
        size = HEADER.size
        while end - pos >= size:
            length, kind, src = HEADER.unpack_from(buf, pos)
            if length < MIN_LENGTH:
                raise FrameError("empty-frame")
            if length > self.max_frame:
                raise FrameError("frame-too-large", f"{length} > {self.max_frame}")
            if kind not in FRAME_TYPES:
                raise FrameError("unknown-frame-type", str(kind))
            stop = pos + 4 + length
            if stop > end:
                break
            out.append((kind, src, bytes(buf[pos + size : stop])))
            pos = stop
        if pos:
            del buf[:pos]
        if buf:
            if self.partial_since is None or pos:
                self.partial_since = time.monotonic()
        else:
            self.partial_since = None
        return out


def decode_payload(kind: int, payload: bytes) -> Any:
    """The message a PBFT, HotStuff, Raft or SIDE frame carries; raises :class:`FrameError`
    only."""
    if kind == PBFT:
        try:
            return decode_message(payload)
        except MessageError as exc:
            raise FrameError("bad-message", str(exc)[:120]) from None
    if kind == HOTSTUFF:
        try:
            return hotstuff.decode_message(payload)
        except hotstuff.MessageError as exc:
            raise FrameError("bad-message", str(exc)[:120]) from None
    if kind == RAFT:
        try:
            return raft.decode_message(payload)
        except raft.MessageError as exc:
            raise FrameError("bad-message", str(exc)[:120]) from None
    if kind == SIDE:
        try:
            return decode_side_message(payload)
        except (ValueError, TypeError, codec.DecodeError) as exc:
            raise FrameError("bad-side-message", str(exc)[:120]) from None
    raise FrameError("unexpected-frame", f"type {kind} after the hello")


@dataclass(frozen=True, slots=True)
class Hello:
    """The first frame of a link: who the sender says it is, for which consortium."""

    consortium: bytes  # digest of the consortium file's identity (name + members)
    role: str  # "node" or "client"
    ids: tuple[int, ...]

    def encode(self) -> bytes:
        """The HELLO frame."""
        body = codec.encode([HELLO_MAGIC, PROTOCOL_VERSION, self.consortium, self.role, self.ids])
        return frame(HELLO, 0, body)

    @classmethod
    def decode(cls, payload: bytes) -> Hello:
        """Parse a HELLO payload; raises :class:`FrameError`."""
        if len(payload) > MAX_HELLO_BYTES:
            raise FrameError("bad-hello", "too large")
        try:
            doc = codec.decode(payload, codec.Limits(max_bytes=MAX_HELLO_BYTES, max_depth=3))
        except codec.DecodeError as exc:
            raise FrameError("bad-hello", str(exc)[:80]) from None
        if (
            type(doc) is not list
            or len(doc) != 5
            or doc[0] != HELLO_MAGIC
            or type(doc[1]) is not int
            or type(doc[2]) is not bytes
            or type(doc[3]) is not str
            or type(doc[4]) is not list
        ):
            raise FrameError("bad-hello", "wrong shape")
        if doc[1] != PROTOCOL_VERSION:
            raise FrameError("bad-version", str(doc[1]))
        ids = doc[4]
        if len(ids) > MAX_CLAIMED_IDS or not all(type(i) is int and 0 <= i < 1 << 31 for i in ids):
            raise FrameError("bad-hello", "bad ids")
        if doc[3] not in ("node", "client"):
            raise FrameError("bad-hello", "bad role")
        return cls(doc[2], doc[3], tuple(ids))
