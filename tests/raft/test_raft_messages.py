"""Raft messages and records: canonical encoding, strict decoding with typed errors."""

from __future__ import annotations

import pytest
from raft_harness import sample_messages

from medbench import codec
from medbench.consensus.raft import (
    LOCAL_KINDS,
    AppendEntries,
    Entry,
    HardState,
    Kind,
    MessageError,
    Request,
    Snapshot,
    Submit,
    Timeout,
    Truncate,
    decode_message,
    decode_record,
    encode_record,
)
from medbench.consensus.raft.messages import WIRE_CODES

SAMPLES = sample_messages()


def test_every_wire_kind_has_a_sample_and_a_code() -> None:
    assert {m.kind for m in SAMPLES} == set(WIRE_CODES)
    assert set(Kind) == set(WIRE_CODES) | LOCAL_KINDS
    assert Submit(b"x").kind is Kind.SUBMIT and Timeout("election").kind is Kind.TIMEOUT


@pytest.mark.parametrize("msg", SAMPLES, ids=repr)
def test_roundtrip_is_exact(msg: object) -> None:
    data = msg.encode()  # type: ignore[attr-defined]
    back = decode_message(data)
    assert back == msg and back.encode() == data and type(back) is type(msg)
    assert msg.encode() is data  # type: ignore[attr-defined]  # cached


@pytest.mark.parametrize("msg", SAMPLES, ids=repr)
def test_truncated_and_extended_bytes_are_rejected(msg: object) -> None:
    data = msg.encode()  # type: ignore[attr-defined]
    for cut in (0, 1, len(data) // 2, len(data) - 1):
        with pytest.raises(MessageError):
            decode_message(data[:cut])
    with pytest.raises(MessageError):
        decode_message(data + b"\x00")


def test_oversized_input_is_refused_before_decoding() -> None:
    big = AppendEntries(1, 0, 0, 0, tuple(Entry(1, i, None) for i in range(1, 200)), 0).encode()
    with pytest.raises(MessageError, match="exceeds the limit"):
        decode_message(big, max_bytes=100)
    assert decode_message(big).encode() == big
    with pytest.raises(MessageError):
        decode_message(42)  # type: ignore[arg-type]


def test_structural_errors_are_typed() -> None:
    cases = [
        codec.encode([99, 1]),  # unknown wire code
        codec.encode("text"),  # not an array
        codec.encode([]),  # no code
        codec.encode([3, 1, 0, 0]),  # RequestVote missing a field
        codec.encode([3, -1, 0, 0, 0]),  # negative term
        codec.encode([4, 1, 0, 1]),  # granted not a bool
        codec.encode([5, 1, 0, 3, 1, [[1, 5, None]], 0]),  # entry index leaves a gap
        codec.encode([5, 1, 0, 0, 0, [[1, 0, None]], 0]),  # entry index 0
        codec.encode([5, 1, 0, 0, 0, [[1, 1, [5, 1]]], 0]),  # request with two fields
        codec.encode([7, 1, 0, [1, 1, b"short", 0, []]]),  # snapshot digest too short
        codec.encode([7, 1, 0, [1, 1, bytes(32), 0, [[6, 1, b""], [5, 1, b""]]]]),  # unsorted
        codec.encode([2, 5, 1, 0, True, b"", -2]),  # leader hint below -1
        b"\xc1",
    ]
    for data in cases:
        with pytest.raises(MessageError):
            decode_message(data)


def test_constructors_validate_fields() -> None:
    with pytest.raises(MessageError):
        Request(-1, 1, b"x")
    with pytest.raises(MessageError):
        Entry(1, 0, None)
    with pytest.raises(MessageError):
        Entry(1, 1, "op")  # type: ignore[arg-type]
    with pytest.raises(MessageError):
        AppendEntries(1, 0, 0, 0, (Entry(1, 2, None),), 0)  # a gap after prev
    with pytest.raises(MessageError):
        Snapshot(1, 1, bytes(32), 0, ((1, 1, b""), (1, 2, b"")))  # duplicate client


def test_records_roundtrip_and_refuse_corruption() -> None:
    records = [
        HardState(3, 1, 7),
        HardState(3, -1, 0),
        Entry(3, 8, Request(5, 2, b"op")),
        Entry(3, 9, None),
        Truncate(8),
        Snapshot(9, 3, bytes(range(32)), 4, ((5, 2, b"result"),)),
    ]
    for rec in records:
        data = encode_record(rec)
        assert decode_record(data) == rec
        for cut in (1, len(data) // 2, len(data) - 1):
            with pytest.raises(MessageError):
                decode_record(data[:cut])
    with pytest.raises(TypeError):
        encode_record(object())
    for bad in (
        codec.encode([9, 0]),
        codec.encode([0, [1, -2, 0]]),
        codec.encode([0, [1, 0]]),
        codec.encode([2, 0]),
        codec.encode([1, [1, 0, None]]),
        codec.encode("x"),
    ):
        with pytest.raises(MessageError):
            decode_record(bad)


def test_reprs_are_short_and_readable() -> None:
    for m in SAMPLES:
        assert len(repr(m)) < 120
    assert "heartbeat" in repr(SAMPLES[6]) and "4..5" in repr(SAMPLES[5])
