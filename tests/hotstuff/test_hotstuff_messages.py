"""HotStuff messages and records: canonical encoding, strict decoding with typed errors."""

from __future__ import annotations

import pytest
from hotstuff_harness import sample_messages

from medbench import codec
from medbench.consensus.hotstuff import (
    GENESIS,
    GENESIS_QC,
    LOCAL_KINDS,
    QC,
    Block,
    CommitRecord,
    Kind,
    LockRecord,
    MessageError,
    Request,
    Submit,
    Timeout,
    Vote,
    decode_message,
    decode_record,
    encode_record,
    make_keyrings,
)
from medbench.consensus.hotstuff.messages import WIRE_CODES
from medbench.consensus.hotstuff.wire import parse_block

KEYS = make_keyrings("modeled", 4, range(5))
SAMPLES = sample_messages(KEYS)


def test_every_wire_kind_has_a_sample_and_a_code() -> None:
    assert {m.kind for m in SAMPLES} == set(WIRE_CODES)
    assert set(Kind) == set(WIRE_CODES) | LOCAL_KINDS
    assert Submit(b"x").kind is Kind.SUBMIT and Timeout("view").kind is Kind.TIMEOUT


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: repr(m))
def test_roundtrip_is_exact(msg: object) -> None:
    data = msg.encode()  # type: ignore[attr-defined]
    back = decode_message(data)
    assert back == msg
    assert back.encode() == data
    assert type(back) is type(msg)
    assert msg.encode() is data  # type: ignore[attr-defined]  # cached


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: repr(m))
def test_truncated_and_extended_bytes_are_rejected(msg: object) -> None:
    data = msg.encode()  # type: ignore[attr-defined]
    for cut in (0, 1, len(data) // 2, len(data) - 1):
        with pytest.raises(MessageError):
            decode_message(data[:cut])
    with pytest.raises(MessageError):
        decode_message(data + b"\x00")


def test_oversized_input_is_refused_before_decoding() -> None:
    big = SAMPLES[1].encode()
    with pytest.raises(MessageError, match="exceeds the limit"):
        decode_message(big, max_bytes=len(big) - 1)
    assert decode_message(big, max_bytes=len(big)) == SAMPLES[1]
    with pytest.raises(MessageError):
        decode_message("not bytes")  # type: ignore[arg-type]


def test_structural_errors_are_typed() -> None:
    vote = SAMPLES[2]
    h = bytes(32)
    cases = [
        codec.encode([b"x"]),  # not a pair
        codec.encode([codec.encode([99, 1]), b""]),  # unknown wire code
        codec.encode([codec.encode([4, 0, h]), b""]),  # missing field
        codec.encode([codec.encode([4, 0, bytes(31), 2]), b""]),  # short hash
        codec.encode([codec.encode([4, -1, h, 2]), b""]),  # negative view
        codec.encode([codec.encode([4, 0, h, 2]), 5]),  # auth neither bytes nor array
        codec.encode([codec.encode([3, b"not a block", [], 1]), b""]),  # bad block body
        codec.encode([codec.encode([3, vote.body(), [], 1]), b""]),  # a vote body as a block
        codec.encode([codec.encode([5, 2, [1, h, [[0]]], None, False, 1]), b""]),  # qc vote
        codec.encode([codec.encode([5, 2, [1, h, []], vote.body(), False, 1]), b""]),  # vote
        codec.encode([codec.encode([5, 2, [1, h, []], None, 1, 1]), b""]),  # busy not a bool
        codec.encode([codec.encode([6, h, 0, 0, 1]), b""]),  # sync count 0
        b"\xc1",  # reserved MessagePack byte
        codec.encode([codec.encode([16, 0, 0, h, [0, h, []], 0, [], 0]), b""]),  # a block alone
    ]
    for data in cases:
        with pytest.raises(MessageError):
            decode_message(data)


def test_a_qc_cannot_mix_views_or_blocks() -> None:
    v1 = Vote(1, bytes(32), 0)
    with pytest.raises(MessageError):
        QC(2, bytes(32), (v1,))
    with pytest.raises(MessageError):
        QC(1, b"\x01" * 32, (v1,))
    with pytest.raises(MessageError):
        QC(1, bytes(32), (Request(4, 1, b"x"),))  # type: ignore[arg-type]


def test_constructors_validate_fields() -> None:
    with pytest.raises(MessageError):
        Request(-1, 1, b"x")
    with pytest.raises(MessageError):
        Request(4, 1, "text")  # type: ignore[arg-type]
    with pytest.raises(MessageError):
        Vote(1, bytes(31), 0)
    with pytest.raises(MessageError):
        Block(1, 1, bytes(32), "qc", 0, (), 0)  # type: ignore[arg-type]
    with pytest.raises(MessageError):
        Vote(1, bytes(32), 0, auth=b"x" * 300)


def test_genesis() -> None:
    assert GENESIS.height == 0 and GENESIS.view == 0
    assert GENESIS_QC.block_hash == GENESIS.hash and GENESIS_QC.votes == ()
    assert parse_block(GENESIS.body()) == GENESIS


def test_records_roundtrip_and_refuse_corruption() -> None:
    proposal = SAMPLES[1]
    records = [
        proposal.block,
        SAMPLES[2],  # a vote
        proposal,
        SAMPLES[3],  # a new-view carrying a vote
        LockRecord(proposal.block.justify),
        CommitRecord(3, bytes(range(32))),
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
        codec.encode([9, b""]),
        codec.encode([1, b"junk"]),
        codec.encode([1, SAMPLES[0].encode()]),  # a request where a vote belongs
        codec.encode([5, [-1, bytes(32)]]),
        codec.encode([5, [1, bytes(3)]]),
        codec.encode("x"),
    ):
        with pytest.raises(MessageError):
            decode_record(bad)


def test_reprs_are_short_and_readable() -> None:
    for m in SAMPLES:
        assert len(repr(m)) < 120
    assert "Proposal(v=2" in repr(SAMPLES[1])


@pytest.mark.parametrize("size", [0, 1, 200, 255, 256, 300, 65_535, 65_536, 70_000])
@pytest.mark.parametrize("auth", [b"", b"t" * 16, b"s" * 64, b"x" * 255])
def test_directly_framed_wire_bytes_equal_the_codec(size: int, auth: bytes) -> None:
    """``encode()`` frames ``(body, auth)`` by hand when ``auth`` is bytes: same bytes."""
    req = Request(4, 1, b"o" * size, auth)
    assert req.encode() == codec.encode((req.body(), auth))
    vector = Request(4, 1, b"o" * size, (auth, auth))  # a MAC vector goes through the codec
    assert vector.encode() == codec.encode((vector.body(), (auth, auth)))
