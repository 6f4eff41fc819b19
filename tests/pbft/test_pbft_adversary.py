"""The adversary's own guarantees: the fault mix it draws, that its checker is not vacuous on
random draws, and the Twins enumeration (``schedules.py``, ``twins.py``; issue 13).

Measured on the 300 CI seeds of ``test_pbft_random_faults.py`` (``draw(0..299)``): 78 % draw f
faulty replicas, 80 % at least one (before issue 13: 51 %), 20 % none; 21 % a coalition
(colluding equivocators 15 %, SplitBrain 6 %), 12 % a store fault, 11 % a NEW-VIEW chooser, 30 %
a lying client, 47 % the stateful application, 53 % duplication, 51 % reordering, 25 % n = 7;
43 of the 44 behaviours are drawn at least once (all 44 in the first 1,000 seeds); the
stratified draws walk all 44 in turn.

Non-vacuity: the same generator with a coalition of f+1 colluding equivocators reports a safety
violation in 163 of seeds 0-199 (81.5 %); the test demands 75 %. Twins with f+1 twins at n = 4
(2,592 scenarios) report one in 658 (25 %).
"""

from __future__ import annotations

from collections import Counter

import pytest
import twins
from schedules import check_seed, draw
from verdicts import SafetyViolation, VerdictFailure

from medbench.consensus.pbft import adversary as lies
from medbench.consensus.pbft import byzantine as faults  # noqa: F401 (the classic wrappers)

CI_SEEDS = range(300)


def test_the_fault_mix_draws_f_faulty_replicas_in_most_seeds() -> None:
    draws = [draw(seed) for seed in CI_SEEDS]
    share: Counter[str] = Counter()
    kinds = {kind for seed in range(1_000) for kind in draw(seed).faulty.values()}
    for d in draws:
        share["f"] += len(d.faulty) == d.f
        share["some"] += bool(d.faulty)
        share["coalition"] += d.coalition is not None
        share["split-brain"] += d.coalition == "split-brain"
        share["store"] += any(k.startswith("store:") for k in d.faulty.values())
        share["lying client"] += d.lying_client is not None
        share["app"] += d.app
        share["dup"] += d.dup > 0
        share["reorder"] += d.reorder > 0
    n = len(draws)
    assert share["f"] >= 0.75 * n and share["some"] >= 0.78 * n
    assert share["coalition"] >= 0.15 * n and share["split-brain"] >= 0.03 * n
    assert share["store"] >= 0.08 * n and share["lying client"] >= 0.2 * n
    assert share["app"] >= 0.4 * n and share["dup"] >= 0.4 * n and share["reorder"] >= 0.4 * n
    every = (
        {"silent", "dropping", "altering", "equivocating", "late-equivocating", "bad-view",
         "bad-sequence", "bad-digest", "replayer", "black-hole", "future-clock",
         "rewinding-clock", "colluding", "split-brain", "reviver", "forged-digest"}
        | {f"new-view:{s}" for s in lies.NEW_VIEW_STRATEGIES}
        | {f"blocker:{s}" for s in lies.BLOCK_LIES}
        | {f"reply:{s}" for s in lies.REPLY_LIES}
        | {f"state:{s}" for s in lies.STATE_LIES}
        | {f"flood:{s}" for s in lies.FLOODS}
        | {"store:rollback", "store:drop-record", "store:corrupt-batch", "store:corrupt-time",
           "store:bitrot"}
    )  # fmt: skip
    assert every == kinds, every ^ kinds
    assert len(every) == 44


def test_the_checker_is_not_vacuous_on_random_draws() -> None:
    """f+1 colluding equivocators, drawn by the same generator: safety violations in >= 75 %
    of 200 seeds (measured: 81 %)."""
    caught = 0
    for seed in range(200):
        d = draw(seed)
        try:
            check_seed(seed, colluders=d.f + 1)
        except SafetyViolation:
            caught += 1
    assert caught >= 150, caught


def test_with_at_most_f_colluders_the_same_draws_stay_safe() -> None:
    for seed in range(40):
        check_seed(seed, colluders=draw(seed).f)


# --- Twins ---------------------------------------------------------------------------------------


def test_twins_bound() -> None:
    """The scenario counts the module docstring states."""
    assert len(twins.partitions(4, (0,))) == 9 and len(twins.partitions(7, (0, 1))) == 13
    assert twins.count(4) == 4 * (9 * 4) ** 2 == 5_184
    assert twins.count(7) == 3 * (13 * 7) ** 2 == 24_843
    assert twins.count(4, beyond_f=True) == 2 * (9 * 4) ** 2 == 2_592
    first = next(twins.scenarios(4))
    assert first == twins.Scenario(4, (0,), ((0, 0), (0, 0)))


@pytest.mark.parametrize(("n", "stride", "offset"), [(4, 24, 0), (4, 24, 11), (7, 250, 3)])
def test_twins_subset(n: int, stride: int, offset: int) -> None:
    """A fixed stride through the enumeration: every scenario safe, live and in agreement."""
    for sc in twins.subset(n, stride, offset):
        twins.run_scenario(sc)


def test_twins_beyond_f_break_safety() -> None:
    """Two twins at n = 4 (f + 1): the checker must report violations (measured on the whole
    bound: 658 of 2,592 scenarios; this stride: the same share within a few points)."""
    caught = total = 0
    for sc in twins.subset(4, 16, 5, beyond_f=True):
        total += 1
        try:
            twins.run_scenario(sc)
        except VerdictFailure as exc:
            caught += isinstance(exc, SafetyViolation)
    assert caught >= 0.15 * total, (caught, total)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(8))
def test_twins_full_enumeration_n4(chunk: int) -> None:
    """All 5,184 scenarios at n = 4 (make soak)."""
    for sc in twins.subset(4, 8, chunk):
        twins.run_scenario(sc)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(24))
def test_twins_full_enumeration_n7(chunk: int) -> None:
    """All 24,843 scenarios at n = 7 (make soak)."""
    for sc in twins.subset(7, 24, chunk):
        twins.run_scenario(sc)


@pytest.mark.slow
def test_the_checker_is_not_vacuous_on_more_draws() -> None:
    caught = 0
    for seed in range(1_000, 2_000):
        try:
            check_seed(seed, colluders=draw(seed).f + 1)
        except SafetyViolation:
            caught += 1
    assert caught >= 750, caught
