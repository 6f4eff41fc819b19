"""Canonical codec: round trip, determinism, and hostile bytes give only DecodeError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbench import codec

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.binary(max_size=64)
    | st.text(max_size=32)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)


def _listify(v: object) -> object:
    if isinstance(v, (list, tuple)):
        return [_listify(x) for x in v]
    if isinstance(v, dict):
        return {k: _listify(x) for k, x in v.items()}
    return v


@given(values)
def test_round_trip(value: object) -> None:
    assert codec.decode(codec.encode(value)) == _listify(value)


@given(
    st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1), max_size=10),
    st.randoms(),
)
def test_dict_order_does_not_change_bytes(d: dict[str, int], rnd: object) -> None:
    items = list(d.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert codec.encode(dict(items)) == codec.encode(d)


def test_tuples_and_lists_encode_alike() -> None:
    assert codec.encode((1, b"x", "y")) == codec.encode([1, b"x", "y"])


@pytest.mark.parametrize(
    "bad", [1.5, float("nan"), {1: 2}, object(), 1 << 64, -(1 << 63) - 1, {"a": {1, 2}}]
)
def test_values_outside_the_model_are_refused(bad: object) -> None:
    with pytest.raises(codec.EncodeError):
        codec.encode(bad)


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(codec.DecodeError):
        codec.decode(data)


@given(values, st.data())
def test_mutated_bytes_raise_only_decode_error(value: object, data: st.DataObject) -> None:
    raw = bytearray(codec.encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
        elif op == "cut" and raw:
            del raw[data.draw(st.integers(0, len(raw) - 1)) :]
        else:
            raw.insert(data.draw(st.integers(0, len(raw))), data.draw(st.integers(0, 255)))
    try:
        decoded = codec.decode(bytes(raw))
    except codec.DecodeError:
        return
    # Whatever decodes must be canonical: re-encoding gives the same bytes.
    assert codec.encode(decoded) == bytes(raw)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\xcb" + b"\x00" * 8, "float"),
        (b"\xd4\x01\x00", "extension"),
        (b"\x01\x02", "malformed"),
        (b"\xcc\x05", "canonical"),  # 5 as uint8: not the shortest form
        (b"\x82\xa1b\x01\xa1a\x02", "sorted"),
        (b"\x81\x01\x02", "malformed"),  # int key
        (b"\xdd\xff\xff\xff\xff", "malformed"),  # array of 2^32-1: over the limit
        (b"\x91" * 100 + b"\xc0", "deep"),
    ],
)
def test_hostile_inputs_named(raw: bytes, why: str) -> None:
    with pytest.raises(codec.DecodeError, match=why):
        codec.decode(raw)


def test_size_limit() -> None:
    small = codec.Limits(max_bytes=16)
    with pytest.raises(codec.DecodeError, match="exceeds"):
        codec.decode(codec.encode(b"x" * 32), small)
    with pytest.raises(codec.DecodeError, match="expected bytes"):
        codec.decode("text")  # type: ignore[arg-type]
