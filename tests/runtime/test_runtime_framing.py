"""Frames from hostile peers: bounded, typed errors, never anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbench.consensus.pbft import make_keyrings
from medbench.consensus.pbft.messages import Prepare
from medbench.medchain.block_format import BlockSignature
from medbench.runtime.framing import (
    HEADER,
    HELLO,
    PBFT,
    SIDE,
    FrameError,
    FrameReader,
    Hello,
    decode_payload,
    frame,
    message_frame,
)


def _prepare() -> Prepare:
    rings = make_keyrings("signatures", 4, [], seed=b"frames")
    msg = Prepare(0, 1, bytes(32), 2)
    return msg.with_auth(rings[2].sign(msg.body()))


def test_round_trip_in_pieces() -> None:
    msg = _prepare()
    sig = BlockSignature(bytes(range(32)), b"s" * 64)
    data = message_frame(2, msg) + message_frame(5, sig) + Hello(b"c", "node", (2, 6)).encode()
    reader = FrameReader()
    got = []
    for i in range(0, len(data), 7):  # trickled 7 bytes at a time
        got.extend(reader.feed(data[i : i + 7]))
    assert [(k, s) for k, s, _ in got] == [(PBFT, 2), (SIDE, 5), (HELLO, 0)]
    assert decode_payload(PBFT, got[0][2]) == msg
    assert decode_payload(SIDE, got[1][2]) == sig
    assert Hello.decode(got[2][2]) == Hello(b"c", "node", (2, 6))
    assert reader.buffered == 0 and reader.partial_since is None


def test_partial_frame_is_timed() -> None:
    reader = FrameReader()
    assert reader.feed(frame(PBFT, 1, b"x" * 10)[:5]) == []
    assert reader.partial_since is not None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (HEADER.pack(9 * 1024 * 1024, PBFT, 0), "frame-too-large"),
        (HEADER.pack(0, PBFT, 0), "empty-frame"),
        (HEADER.pack(4, PBFT, 0), "empty-frame"),
        (HEADER.pack(6, 77, 0) + b"x", "unknown-frame-type"),
    ],
)
def test_bad_headers_refused_before_buffering(data: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as exc:
        FrameReader(max_frame=1024 * 1024).feed(data)
    assert exc.value.reason == reason


@pytest.mark.parametrize(
    ("kind", "payload", "reason"),
    [
        (PBFT, b"\xc1garbage", "bad-message"),
        (PBFT, b"", "bad-message"),
        (SIDE, b"\x93\xa1x\xa1y\xa1z", "bad-side-message"),
        (HELLO, b"", "unexpected-frame"),
    ],
)
def test_bad_payloads_are_typed(kind: int, payload: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as exc:
        decode_payload(kind, payload)
    assert exc.value.reason == reason


@given(st.binary(max_size=2048))
def test_any_bytes_give_frames_or_frame_error(data: bytes) -> None:
    reader = FrameReader(max_frame=4096)
    try:
        frames = reader.feed(data)
    except FrameError:
        return
    for kind, _src, payload in frames:
        try:
            if kind == HELLO:
                Hello.decode(payload)
            else:
                decode_payload(kind, payload)
        except FrameError:
            pass


@given(st.binary(max_size=512))
def test_any_hello_payload_is_typed(payload: bytes) -> None:
    try:
        Hello.decode(payload)
    except FrameError as exc:
        assert exc.reason in ("bad-hello", "bad-version")


def test_hello_bounds() -> None:
    from medbench import codec

    bad_ids = codec.encode(["medbench-hello", 1, b"c", "node", [-1]])
    with pytest.raises(FrameError):
        Hello.decode(bad_ids)
    bad_role = codec.encode(["medbench-hello", 1, b"c", "admin", [1]])
    with pytest.raises(FrameError):
        Hello.decode(bad_role)
    with pytest.raises(FrameError) as exc:
        Hello.decode(codec.encode(["medbench-hello", 2, b"c", "node", [1]]))
    assert exc.value.reason == "bad-version"
