"""Canonical codec: round trip, determinism, and hostile bytes give only DecodeError."""

from __future__ import annotations

import contextlib

import msgpack
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
        (b"\x01\x02", "trailing"),
        (b"\xcc\x05", "canonical"),  # 5 as uint8: not the shortest form
        (b"\x82\xa1b\x01\xa1a\x02", "sorted"),
        (b"\x81\x01\x02", "malformed"),  # int key
        (b"\xdd\xff\xff\xff\xff", "exceeds limit"),  # array of 2^32-1: over the limit
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


# Every MessagePack format outside the data model, alone and hidden inside a valid container.
REFUSED = [
    (b"\xd6\xff\x00\x00\x00\x01", "extension"),  # timestamp 32 (ext type -1)
    (b"\xd7\xff" + b"\x00" * 8, "extension"),  # timestamp 64
    (b"\xc7\x0c\xff" + b"\x00" * 12, "extension"),  # timestamp 96 (ext 8)
    (b"\xd4\x05\x00", "extension"),  # fixext 1
    (b"\xd5\x05\x00\x00", "extension"),  # fixext 2
    (b"\xd8\x05" + b"\x00" * 16, "extension"),  # fixext 16
    (b"\xc8\x00\x01\x05\x00", "extension"),  # ext 16
    (b"\xc9\x00\x00\x00\x01\x05\x00", "extension"),  # ext 32
    (b"\xca\x3f\x80\x00\x00", "float"),  # float 32
    (b"\xcb" + b"\x3f\xf0" + b"\x00" * 6, "float"),  # float 64
    (b"\xc1", "reserved"),
]


@pytest.mark.parametrize(("raw", "why"), REFUSED)
def test_formats_outside_the_model_are_refused(raw: bytes, why: str) -> None:
    with pytest.raises(codec.DecodeError, match=why):
        codec.decode(raw)
    # Inside an array, as a map value and deep in a structure: still refused.
    for wrapped in (b"\x92\x01" + raw, b"\x81\xa1a" + raw, b"\x91\x81\xa1k\x91" + raw):
        with pytest.raises(codec.DecodeError, match=why):
            codec.decode(wrapped)


def test_timestamp_is_refused_not_returned() -> None:
    # msgpack's default turns ext type -1 into msgpack.Timestamp, which encode() refuses.
    with pytest.raises(codec.DecodeError, match="extension"):
        codec.decode(b"\xd6\xff\x00\x00\x00\x01")


def _nested(depth: int, inner: bytes = b"\xc0") -> bytes:
    return b"\x91" * depth + inner


def test_depth_limit_is_exact_and_matches_the_encoder() -> None:
    at_limit: object = None
    for _ in range(codec.MAX_DEPTH):
        at_limit = [at_limit]
    assert codec.encode(at_limit) == _nested(codec.MAX_DEPTH)
    assert codec.decode(_nested(codec.MAX_DEPTH)) == at_limit
    with pytest.raises(codec.EncodeError, match="deeper"):
        codec.encode([at_limit])
    with pytest.raises(codec.DecodeError, match="deeper"):
        codec.decode(_nested(codec.MAX_DEPTH + 1))
    # An empty container at the limit holds nothing deeper: allowed, as the encoder allows it.
    assert codec.decode(_nested(codec.MAX_DEPTH, b"\x90")) is not None
    # Maps count as levels too.
    two = codec.Limits(max_depth=2)
    assert codec.decode(b"\x81\xa1a\x91\x01", two) == {"a": [1]}
    with pytest.raises(codec.DecodeError, match="deeper than 2"):
        codec.decode(b"\x81\xa1a\x91\x91\x01", two)


def test_bounds_are_enforced_before_msgpack_builds_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    real = msgpack.unpackb

    def spy(data: bytes, **kwargs: object) -> object:
        calls.append(data)
        return real(data, **kwargs)

    monkeypatch.setattr(msgpack, "unpackb", spy)
    hostile = [
        _nested(1000),  # deep: refused at level 33, nothing unpacked
        b"\x92\x01\xd6\xff\x00\x00\x00\x01",  # a timestamp in an array
        b"\xdc\xff\xff" + b"\xc0" * 10,  # claims 65535 entries, holds 10
        b"\xdd\x00\x10\x00\x01",  # 2^20 + 1 entries: over the limit
        b"\x9f\x01",  # fixarray of 15 with one entry
    ]
    for raw in hostile:
        with pytest.raises(codec.DecodeError):
            codec.decode(raw)
    assert calls == []
    assert codec.decode(b"\x92\x01\x02") == [1, 2]
    assert len(calls) == 1


def test_container_limit_covers_small_containers() -> None:
    three = codec.Limits(max_container_len=3)
    assert codec.decode(codec.encode([1, 2, 3]), three) == [1, 2, 3]
    with pytest.raises(codec.DecodeError, match="exceeds limit 3"):
        codec.decode(codec.encode([1, 2, 3, 4]), three)
    with pytest.raises(codec.DecodeError, match="exceeds limit 3"):
        codec.decode(codec.encode({k: 0 for k in "abcd"}), three)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x82\xa1a\x01\xa1a\x02", "unique"),  # duplicate key
        (b"\x81\xc4\x01a\x01", "must be str"),  # bytes key
        (b"\xc4\x05ab", "truncated"),  # bin8 shorter than its length
        (b"\xda\x00", "truncated"),  # str16 without its length
        (b"\x92\x01", "truncated"),  # array missing an entry
        (b"\xc0\xc0", "trailing"),
        (b"", "truncated"),
        (b"\xa3ab\xff", "malformed"),  # not UTF-8
    ],
)
def test_more_hostile_inputs_named(raw: bytes, why: str) -> None:
    with pytest.raises(codec.DecodeError, match=why):
        codec.decode(raw)


def _only_model_types(value: object) -> bool:
    if value is None or type(value) in (bool, int, bytes, str):
        return True
    if type(value) is list:
        return all(_only_model_types(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _only_model_types(v) for k, v in value.items())
    return False


@given(st.binary(max_size=64).map(lambda b: b"\x93" + b))
def test_whatever_decodes_is_in_the_model(data: bytes) -> None:
    try:
        value = codec.decode(data)
    except codec.DecodeError:
        return
    assert _only_model_types(value)
    assert codec.encode(value) == data


def test_bytes_like_input_is_read_as_its_bytes() -> None:
    raw = codec.encode([1, b"x", {"k": "v"}])
    assert codec.decode(bytearray(raw)) == codec.decode(memoryview(raw)) == codec.decode(raw)
    # A memoryview of 4-byte items is still judged by its bytes, not its item count.
    words = memoryview(bytearray(b"\x93\x01\x02\x03")).cast("I")
    assert codec.decode(words) == [1, 2, 3]


# Values outside the data model, at any depth: lone surrogates (not UTF-8), non-str and mixed
# dict keys, floats, sets, arbitrary objects, integers beyond 64 bits.
outside = (
    st.sampled_from(["\ud800", "a\udfffb"])
    | st.floats(allow_nan=True)
    | st.integers().filter(lambda i: not -(1 << 63) <= i < 1 << 64)
    | st.builds(object)
    | st.frozensets(st.integers(), max_size=2)
    | st.dictionaries(st.integers() | st.binary(max_size=2), scalars, min_size=1, max_size=3)
    | st.dictionaries(st.sampled_from(["\udc00"]), scalars, min_size=1, max_size=1)
    | st.builds(lambda k: {k: 1, "a": 2}, st.integers())  # mixed key types: sorted() would raise
)
anything = st.recursive(
    scalars | outside,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@given(anything)
def test_encode_raises_only_encode_error(value: object) -> None:
    """Defect 11 of issue 13: a lone surrogate gave UnicodeEncodeError, mixed dict keys a bare
    TypeError. Whatever the value, encode returns canonical bytes or raises EncodeError."""
    try:
        data = codec.encode(value)
    except codec.EncodeError:
        return
    assert codec.encode(codec.decode(data)) == data


@pytest.mark.parametrize(
    "value", ["\ud800", {"\udc00": 1}, [{"a": "x\ud83d"}], {1: 2, "a": 3}, {b"k": 1}]
)
def test_named_values_outside_the_model(value: object) -> None:
    with pytest.raises(codec.EncodeError):
        codec.encode(value)
