"""Shared by the fuzz smoke and regression tests: set-up cached per target, a per-input
deadline (so an input that hung the fuzzer fails here instead of hanging the suite)."""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Iterator
from typing import Any

import fuzz
from fuzz.common import OneInput


@functools.cache
def harness(target: str) -> tuple[Any, OneInput]:
    """The harness of ``target`` and its one-input function (set up once per test session)."""
    h = fuzz.load(target)
    return h, h.setup()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise ``TimeoutError`` in the block after ``seconds`` (main thread, Unix)."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"input ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
