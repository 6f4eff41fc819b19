"""What every harness shares: its description, a byte reader, outcomes and invariant checks.

A harness (one module ``fuzz/fuzz_<name>.py`` per target) exports ``HARNESS``: the target's name,
the exceptions it may raise on hostile input (its module's typed errors), a ``setup()`` that
builds whatever the target needs once per process (keys, certificates, replica snapshots) and
returns the one-input function, and ``seeds()``: valid inputs made programmatically (real
messages, transactions, blocks, certificates, key files...), written to a temporary corpus when
a run starts.

The one-input function returns normally when the input was accepted (a valid object, which it
then checks: round trips, methods that must not raise) and raises one of ``allowed`` when the
input was refused. Anything else — any other exception, an :class:`InvariantError` from a
check, a hang (the runner's per-input timeout) or a blow-up in memory (its RSS limit) — is a
finding. Harness modules never import atheris: the smoke and regression tests run them without
it (:func:`outcome`), and :mod:`fuzz.__main__` wraps them for atheris.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

OneInput = Callable[[bytes], object]


class InvariantError(AssertionError):
    """A harness check failed on an input the target accepted (always a finding)."""


def expect(condition: object, message: str) -> None:
    """Raise :class:`InvariantError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InvariantError(message)


class Skip(Exception):
    """The harness chose not to run this input (e.g. a key file asking for a slow but legal
    scrypt cost); never a finding."""


@dataclass(frozen=True)
class Harness:
    """One fuzz target (see the module docstring)."""

    name: str
    summary: str
    allowed: tuple[type[BaseException], ...]
    setup: Callable[[], OneInput]
    seeds: Callable[[], list[bytes]]
    max_len: int = 4096
    timeout_s: int = 10
    instrument: tuple[str, ...] = ()
    """Packages instrumented for coverage besides ``medbench`` (pure-Python parsers it calls)."""


def outcome(harness: Harness, one_input: OneInput, data: bytes) -> str:
    """``"accepted"``, ``"refused"`` (an allowed error) or ``"skipped"``; a finding raises."""
    try:
        one_input(data)
    except Skip:
        return "skipped"
    except harness.allowed:
        return "refused"
    return "accepted"


class ByteReader:
    """Structured values drawn from fuzz bytes (what atheris' FuzzedDataProvider does, without
    atheris). Reading past the end yields zeros and empty strings, never an error."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        """Bytes not read yet."""
        return max(0, len(self.data) - self.pos)

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer at the end)."""
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, nbytes: int) -> int:
        """A big-endian unsigned integer of ``nbytes`` bytes."""
        return int.from_bytes(self.take(nbytes).ljust(nbytes, b"\0"), "big")

    def u8(self) -> int:
        """One byte."""
        return self.uint(1)

    def below(self, n: int) -> int:
        """An integer in ``0..n-1`` (0 when ``n <= 1``)."""
        if n <= 1:
            return 0
        width = 1 if n <= 256 else 2 if n <= 65536 else 4
        return self.uint(width) % n

    def flag(self) -> bool:
        """A boolean."""
        return bool(self.u8() & 1)

    def pick(self, seq: Sequence[T]) -> T:
        """One element of a non-empty sequence."""
        return seq[self.below(len(seq))]

    def chunk(self, limit: int) -> bytes:
        """A length-prefixed byte string of at most ``limit`` bytes."""
        return self.take(self.below(limit + 1))

    def rest(self) -> bytes:
        """Everything not read yet."""
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


INTERESTING_INTS: tuple[int, ...] = (
    0,
    1,
    2,
    3,
    4,
    5,
    7,
    16,
    17,
    255,
    256,
    65535,
    1 << 31,
    (1 << 32) - 1,
    1 << 40,
    (1 << 62),
    (1 << 63) - 2,
    (1 << 63) - 1,
)
"""Boundary values for structural mutations of integer fields (all valid u63 values)."""


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A small random mutation of ``data`` (flip, insert, delete, duplicate, truncate, splice an
    interesting integer): what the smoke test feeds a harness beside its seeds."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        elif op == 3 and buf:
            end = min(len(buf), pos + rng.randint(1, 16))
            buf[pos:pos] = buf[pos:end]
        elif op == 4:
            del buf[pos:]
        else:
            value = rng.choice(INTERESTING_INTS)
            buf[pos:pos] = value.to_bytes(8, "big")
    return bytes(buf)


def deterministic_bytes(label: str) -> Callable[[int], bytes]:
    """A seeded ``randbytes`` (sealing's ephemeral keys, salts): seeds are the same every run."""
    rng = random.Random(label)
    return rng.randbytes


def call_all(obj: Any, names: Sequence[str], *args: Any) -> None:
    """Call each method ``names`` of ``obj`` with ``args`` (checks that they do not raise)."""
    for name in names:
        getattr(obj, name)(*args)
