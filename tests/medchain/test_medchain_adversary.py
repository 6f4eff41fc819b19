"""The adversary's randomized schedules against real Medical Chain nodes (``medchain_schedules``).

Measured on seeds 0-79 (the mix of ``draw``): 89 % draw a faulty node (a lying blocker in 14 %,
a failing store in 19 %), 34 % a forger, 39 % a lying user. Before issue 13's fixes these seeds
found a store rewrite replayed silently (defect 2), nodes raising on BLOCKs dated near 2^63
(defect 4), and users stuck forever behind a request split at admission (the livelock fixed in
``medbench.consensus.pbft.viewchange``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from medchain_schedules import FINDINGS, check, draw


def test_the_medchain_mix() -> None:
    draws = [draw(seed) for seed in range(80)]
    share: Counter[str] = Counter()
    for d in draws:
        kinds = set(d.faulty.values())
        share["faulty"] += bool(kinds)
        share["blocker"] += any(k.startswith("blocker:") for k in kinds)
        share["store"] += any(k.startswith("store:") for k in kinds)
        share["forger"] += d.forger
        share["liar"] += d.liar
    assert share["faulty"] >= 56 and share["blocker"] >= 8 and share["store"] >= 10
    assert share["forger"] >= 16 and share["liar"] >= 16
    every = {k for seed in range(400) for k in draw(seed).faulty.values()}
    wanted = ("blocker:future", "blocker:past", "store:bitrot", "store:rewrite", "store:rollback",
              "new-view:nulls", "state:repeated-proof", "colluding")  # fmt: skip
    assert set(wanted) <= every


@pytest.mark.parametrize("chunk", range(3))
def test_medchain_schedules(chunk: int, tmp_path: Path) -> None:
    """24 seeds in three chunks."""
    for seed in range(chunk * 8, chunk * 8 + 8):
        check(seed, tmp_path)


@pytest.mark.parametrize("seed", FINDINGS)
def test_medchain_findings(seed: int, tmp_path: Path) -> None:
    """Soak seeds whose requests split at admission stayed open without traffic (``FINDINGS``)."""
    sched = check(seed, tmp_path)
    assert sched.background is not None and sched.sent.get(sched.background)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(20))
def test_medchain_schedules_soak(chunk: int, tmp_path: Path) -> None:
    """400 more seeds for ``make soak``."""
    for seed in range(1_000 + chunk * 20, 1_000 + chunk * 20 + 20):
        check(seed, tmp_path)
