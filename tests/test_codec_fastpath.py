"""The codec's fast path (tuples of scalars packed as they are) gives the canonical bytes."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench import codec

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1),
    st.binary(max_size=40),
    st.text(max_size=10),
)
plain = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4).map(tuple) | st.lists(inner, max_size=4),
    max_leaves=12,
)


def slow(value: Any) -> bytes:
    """The reference: canonical copy, then pack."""
    return msgpack.packb(codec._canonical(value, 0), use_bin_type=True)  # type: ignore[no-any-return]


@settings(max_examples=100, deadline=None)
@given(st.lists(plain, max_size=6).map(tuple))
def test_fast_path_bytes_equal_the_canonical_bytes(value: tuple[Any, ...]) -> None:
    assert codec.encode(value) == slow(value)
    assert codec.decode(codec.encode(value)) is not None or value == ()


@pytest.mark.parametrize(
    "value",
    [
        (1 << 64,),  # out of range: the packer overflows, the slow path names it
        (-(1 << 63) - 1,),
        ("\udcff",),  # a lone surrogate
        (1.5,),
        ({"b": 1},),  # a dict goes the slow path (keys sorted) and is still fine
    ],
)
def test_values_outside_the_fast_path(value: tuple[Any, ...]) -> None:
    if isinstance(value[0], dict):
        assert codec.encode(value) == slow(value)
        return
    with pytest.raises(codec.EncodeError):
        codec.encode(value)


def test_dict_keys_stay_sorted_inside_tuples() -> None:
    assert codec.encode(({"b": 1, "a": 2},)) == codec.encode(({"a": 2, "b": 1},))
