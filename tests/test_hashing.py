"""SHA-256 known answers (FIPS 180-4 examples, NIST CAVP short messages) on both backends."""

from __future__ import annotations

import hashlib
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

FIPS_EXAMPLES = [
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]


@pytest.mark.parametrize(
    ("message", "digest"), FIPS_EXAMPLES, ids=["abc", "448bit", "empty", "1M-a"]
)
def test_fips_180_4_examples(hashing_impl: ModuleType, message: bytes, digest: str) -> None:
    assert hashing_impl.sha256(message).hex() == digest
    assert [d.hex() for d in hashing_impl.sha256_many([message, message])] == [digest, digest]


def test_every_length_across_block_boundaries(hashing_impl: ModuleType) -> None:
    messages = [bytes(range(256))[:n] * 1 + b"x" * (n // 7) for n in range(0, 300)]
    assert hashing_impl.sha256_many(messages) == [hashlib.sha256(m).digest() for m in messages]


def test_empty_batch(hashing_impl: ModuleType) -> None:
    assert hashing_impl.sha256_many([]) == []


@given(st.lists(st.binary(max_size=300), max_size=40))
def test_batch_equals_hashlib(hashing_impl: ModuleType, messages: list[bytes]) -> None:
    assert hashing_impl.sha256_many(messages) == [hashlib.sha256(m).digest() for m in messages]


PATH_NAMES = {
    "reference": ("hashlib", "reference (hashlib)"),
    "native-portable": ("native portable",),
    "native-sha-ni": ("native sha-ni x4",),
}


def test_each_native_path_really_runs(
    hashing_impl: ModuleType, request: pytest.FixtureRequest
) -> None:
    """The fixture switches the native module to the SHA-256 path its id names."""
    assert hashing_impl.implementation() in PATH_NAMES[request.node.callspec.id]


def test_each_native_merkle_path_really_runs(
    merkle_impl: ModuleType, request: pytest.FixtureRequest
) -> None:
    """The same for the Merkle module, which carries its own copy of the switch."""
    assert merkle_impl.implementation() in PATH_NAMES[request.node.callspec.id]
