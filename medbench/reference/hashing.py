"""SHA-256 (FIPS 180-4) one message at a time and in batches, on :mod:`hashlib`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DIGEST_SIZE = 32

# The one hash constructor of this module, looked up per call: benchmarks swap in a counting
# wrapper to measure the real number of hash calls.
_sha256 = hashlib.sha256


def sha256(data: bytes) -> bytes:
    """The 32-byte SHA-256 digest of ``data``."""
    return _sha256(data).digest()


def sha256_many(messages: Iterable[bytes]) -> list[bytes]:
    """The SHA-256 digests of ``messages``, in order (one 32-byte digest per message)."""
    h = _sha256
    return [h(m).digest() for m in messages]


def implementation() -> str:
    """Which SHA-256 code serves this module."""
    return "hashlib"
