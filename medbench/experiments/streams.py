"""Seeded random streams for the nodes of a run: what a driver injects into a baseline node.

The consensus core owns no random module (:class:`medbench.consensus.baselines.common.Rng` is
the interface); each node gets its own numpy ``Generator``, seeded by ``(seed, *labels)``, so a run
is a function of its seed.
"""

from __future__ import annotations

import random

import numpy as np

U64_MAX = (1 << 64) - 1


def make_rng(seed: int, *labels: int) -> np.random.Generator:
    """A numpy Generator for one stream of one run: seeded by ``(seed, *labels)``."""
    return np.random.default_rng([seed & U64_MAX, *labels])


class NumpyRng:
    """The :class:`~medbench.consensus.baselines.common.Rng` a baseline node gets: one numpy
    ``Generator`` stream."""

    __slots__ = ("gen",)

    def __init__(self, gen: np.random.Generator) -> None:
        self.gen = gen

    def exponential_us(self, mean_us: float) -> int:
        """An exponential delay with mean ``mean_us`` microseconds, at least 1 µs."""
        return max(1, int(float(self.gen.exponential(mean_us))))

    def below(self, bound: int) -> int:
        """A uniform integer in ``[0, bound)`` (``bound`` up to 2**64; 0 if ``bound <= 0``)."""
        if bound <= 0:
            return 0
        if bound > (1 << 63) - 1:
            return int(self.gen.integers(0, bound, dtype=np.uint64))
        return int(self.gen.integers(0, bound))


class PythonRng:
    """The same interface over a standard-library ``random.Random`` (tests, small drivers)."""

    __slots__ = ("gen",)

    def __init__(self, gen: random.Random) -> None:
        self.gen = gen

    def exponential_us(self, mean_us: float) -> int:
        """An exponential delay with mean ``mean_us`` microseconds, at least 1 µs."""
        return max(1, int(self.gen.expovariate(1.0 / mean_us)))

    def below(self, bound: int) -> int:
        """A uniform integer in ``[0, bound)`` (0 if ``bound <= 0``)."""
        return self.gen.randrange(bound) if bound > 0 else 0


def node_rng(seed: int, *labels: int) -> NumpyRng:
    """The random stream ``labels`` of a run seeded ``seed``."""
    return NumpyRng(make_rng(seed, *labels))


__all__ = ["NumpyRng", "PythonRng", "make_rng", "node_rng"]
