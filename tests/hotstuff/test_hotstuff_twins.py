"""Twins scenarios against chained HotStuff (``hotstuff_twins.py``; Bano et al., Twins, 2020).

With one twinned replica (f = 1 at n = 4) every scenario must end safe, live and in agreement;
with f + 1 = 2 twinned replicas the same checks must find conflicting commits in some of them,
or the checks would prove nothing.
"""

from __future__ import annotations

from collections import Counter

import hotstuff_twins as twins
import pytest

STRIDE = 8  # make test: every 8th of the 5,184 scenarios (648)
BEYOND_STRIDE = 24  # the non-vacuity sample: every 24th of the 2,592 with two twins (108)


def test_the_bound_is_as_documented() -> None:
    """4 twinned ids x (9 partitions x 4 leaders)^2 rounds; 2 pairs x (9 x 4)^2 beyond f."""
    assert twins.count() == 5_184 == len(list(twins.scenarios()))
    assert twins.count(beyond_f=True) == 2_592
    for t in range(4):
        parts = twins.partitions(4, (t,))
        assert len(parts) == 9 and parts[0] is None
        assert all(p[t] != p[twins.TWIN + t] for p in parts[1:])


def test_scenario_at_indexes_the_enumeration() -> None:
    """The mutation gate's full plan reaches scenario ``i`` without listing the bound."""
    every = list(twins.scenarios())
    for i in (0, 1, 35, 1_296, 2_600, 5_183):
        assert twins.scenario_at(i) == every[i]


def test_twin_copies_speak_as_one_identity() -> None:
    """A message to a twinned replica reaches both copies; both copies sign as the replica."""
    net = twins.TwinsNetwork(4, (2,), clients=1, seed=3)
    net.submit(4, b"op")
    net.run(200_000)
    assert net.nodes[2].keyring is net.nodes[twins.TWIN + 2].keyring
    assert net.nodes[twins.TWIN + 2].handled > 0


@pytest.mark.parametrize("half", range(2))
def test_twins_subset(half: int) -> None:
    """Every ``STRIDE``-th scenario (in two halves): safety, liveness and agreement hold."""
    for sc in twins.subset(STRIDE)[half::2]:
        twins.run_scenario(sc)


def test_twins_beyond_f_are_caught() -> None:
    """Non-vacuity: with f + 1 twinned replicas some scenarios commit conflicting blocks."""
    sample = twins.subset(BEYOND_STRIDE, 0, beyond_f=True)
    kinds: Counter[str | None] = Counter(twins.verdict_of(sc) for sc in sample)
    print(f"f+1 twins: {kinds['safety']}/{len(sample)} scenarios violate safety; {dict(kinds)}")
    assert kinds["safety"] >= 1


def test_a_violation_is_a_typed_verdict() -> None:
    """The first violating f+1 scenario raises a ``SafetyViolation`` naming the height."""
    for sc in twins.subset(BEYOND_STRIDE, 0, beyond_f=True):
        try:
            twins.run_scenario(sc)
        except twins.VerdictFailure as exc:
            assert exc.kind == "safety" and "committed different blocks" in str(exc)
            return
    pytest.fail("no f+1 scenario of the sample violated safety")


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(8))
def test_twins_all(chunk: int) -> None:
    """The whole bound (5,184 scenarios, in 8 chunks), for ``make soak``."""
    for i, sc in enumerate(twins.scenarios()):
        if i % 8 == chunk:
            twins.run_scenario(sc)
