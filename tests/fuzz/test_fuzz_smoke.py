"""Every fuzz harness imports, sets up and runs without atheris: its seeds (valid inputs, which
it must accept) and a few deterministic mutations of them (which it must accept or refuse with
the target's typed error). What ``make fuzz`` runs under atheris for minutes, in a second or two
per target here.
"""

from __future__ import annotations

import random

import pytest
from fuzz_support import deadline, harness

import fuzz
from fuzz.common import ByteReader, mutate, outcome

MUTATIONS = 6
SEEDS_RUN = 6


@pytest.mark.parametrize("target", list(fuzz.TARGETS))
def test_harness_runs(target: str) -> None:
    h, one_input = harness(target)
    seeds = h.seeds()
    assert seeds, f"{target} has no seed inputs"
    assert all(len(s) <= h.max_len for s in seeds), "a seed is longer than max_len"
    rng = random.Random(target)
    picked = rng.sample(seeds, min(SEEDS_RUN, len(seeds)))
    with deadline(60):
        for data in picked:
            # seeds are valid inputs (a seed skipped by the harness is allowed, not refused)
            assert outcome(h, one_input, data) in ("accepted", "skipped"), data[:64]
        for _ in range(MUTATIONS):
            outcome(h, one_input, mutate(rng.choice(seeds), rng))


def test_byte_reader_never_fails() -> None:
    r = ByteReader(b"\x05\xff")
    assert r.u8() == 5
    assert r.below(1000) == 0xFF00 % 1000  # reads past the end as zeros
    assert r.take(3) == b"" and r.chunk(10) == b"" and r.rest() == b""
    assert r.pick([7, 8]) == 7 and not r.flag()
