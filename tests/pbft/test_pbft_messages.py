"""Messages and authentication: canonical encoding, strict decoding, every auth scheme."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pbft_harness import sample_messages

from medbench import codec
from medbench.consensus.pbft import LOCAL_KINDS, Kind, MessageError, decode_message, make_keyrings
from medbench.consensus.pbft.messages import (
    WIRE_CODES,
    Commit,
    Prepare,
    Request,
    Submit,
    Timeout,
)

KEYS = make_keyrings("modeled", 4, range(5))
SAMPLES = sample_messages(KEYS)


def test_every_wire_kind_has_a_sample_and_a_code() -> None:
    assert {m.kind for m in SAMPLES} == set(WIRE_CODES)
    assert set(Kind) == set(WIRE_CODES) | LOCAL_KINDS
    assert {Kind.SUBMIT, Kind.TIMEOUT} == LOCAL_KINDS
    assert Submit(b"x").kind is Kind.SUBMIT and Timeout("t").kind is Kind.TIMEOUT


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: str(m.kind))
def test_roundtrip_is_exact(msg: object) -> None:
    data = msg.encode()  # type: ignore[attr-defined]
    back = decode_message(data)
    assert back == msg
    assert back.encode() == data
    assert type(back) is type(msg)
    assert msg.encode() is data  # type: ignore[attr-defined]  # cached


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: str(m.kind))
def test_truncated_and_extended_bytes_are_rejected(msg: object) -> None:
    data = msg.encode()  # type: ignore[attr-defined]
    for cut in (0, 1, len(data) // 2, len(data) - 1):
        with pytest.raises(MessageError):
            decode_message(data[:cut])
    with pytest.raises(MessageError):
        decode_message(data + b"\x00")


def test_structural_errors_are_typed() -> None:
    prepare = SAMPLES[3]
    cases = [
        codec.encode([b"x"]),  # not a pair
        codec.encode([codec.encode([99, 1]), b""]),  # unknown wire code
        codec.encode([codec.encode([3, 0, 1, bytes(32)]), b""]),  # missing field
        codec.encode([codec.encode([3, 0, 1, bytes(31), 2]), b""]),  # short digest
        codec.encode([codec.encode([3, -1, 1, bytes(32), 2]), b""]),  # negative view
        codec.encode([codec.encode([3, 0, 1, bytes(32), 2]), 5]),  # auth not bytes
        codec.encode([prepare.body(), [b"a", 3]]),  # auth vector with a non-bytes entry
        codec.encode([codec.encode([1, 4, 1, "text"]), b""]),  # operation not bytes
        codec.encode(
            [codec.encode([2, 0, 1, bytes(32), 0, [prepare.wire()], 0]), b""]
        ),  # a prepare inside a batch
        b"\xc1",
        b"",
    ]
    for data in cases:
        with pytest.raises(MessageError):
            decode_message(data)


def test_constructors_validate() -> None:
    with pytest.raises(MessageError):
        Prepare(-1, 0, bytes(32), 0)
    with pytest.raises(MessageError):
        Commit(0, 0, b"short", 0)
    with pytest.raises(MessageError):
        Request(1, 1, "text")  # type: ignore[arg-type]
    with pytest.raises(MessageError):
        Prepare(0, 0, bytes(32), 0, 5)  # type: ignore[arg-type]


def test_reprs_use_short_hashes() -> None:
    assert repr(SAMPLES[3]).startswith("Prepare(v=0 s=1 d=")
    assert len(repr(SAMPLES[2])) < 80
    assert "Block(h=1" in repr(SAMPLES[1])


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_message_error(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except MessageError:
        return
    assert msg.encode() == data


@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_encodings_raise_only_message_error(msg: object, data: st.DataObject) -> None:
    raw = bytearray(msg.encode())  # type: ignore[attr-defined]
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        back = decode_message(bytes(raw))
    except MessageError:
        return
    assert back.encode() == bytes(raw)


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["signatures", "macs", "modeled"])
def test_auth_schemes_detect_forgery_and_tampering(scheme: str) -> None:
    keys = make_keyrings(scheme, 4, range(6))
    msgs = sample_messages(keys)
    checked = 0
    for m in msgs:
        sender = m.client if m.kind == "request" else getattr(m, "replica", None)
        if m.kind == "block":
            sender = m.blocker
        receiver = 4 if m.kind == "reply" else (sender + 1) % 4
        ring = keys[receiver]
        assert ring.verify(sender, m.body(), m.auth), m
        assert not ring.verify((sender + 2) % 4, m.body(), m.auth)  # someone else's name
        assert not ring.verify(sender, m.body() + b"x", m.auth)  # tampered body
        checked += 1
    assert checked == len(msgs)
    assert keys[1].verifies > 0 and keys[0].signs > 0
    assert keys[1].counters()["primitives"] >= keys[1].verifies


def test_mac_authenticators_have_one_entry_per_replica() -> None:
    keys = make_keyrings("macs", 4, range(5))
    auth = keys[0].sign(b"body")
    assert isinstance(auth, tuple) and len(auth) == 4
    assert keys[0].primitives == 4
    assert keys[3].verify(0, b"body", auth)
    one = keys[0].sign(b"reply", to=4)
    assert len(one) == 1 and keys[4].verify(0, b"reply", one)
    assert not keys[3].verify(0, b"reply", one)  # a MAC for the client is not valid for 3


def test_signature_public_keys_are_raw_ed25519() -> None:
    keys = make_keyrings("signatures", 4, range(4))
    assert all(len(k.public_key()) == 32 for k in keys.values())
    assert len({k.public_key() for k in keys.values()}) == 4


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: str(m.kind))
def test_with_auth_copies_and_keeps_the_body(msg: object) -> None:
    other = msg.with_auth(b"new")  # type: ignore[attr-defined]
    assert other is not msg and other.auth == b"new"
    assert other.body() == msg.body()  # type: ignore[attr-defined]
    assert msg.auth != b"new"  # type: ignore[attr-defined]
    assert decode_message(other.encode()) == other
