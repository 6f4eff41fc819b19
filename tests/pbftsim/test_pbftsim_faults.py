"""Fault tolerance in the simulator: up to f Byzantine replicas keep safety and liveness, f+1
colluding replicas (a split brain) make the safety checker report a violation."""

from __future__ import annotations

from typing import Any

import pytest

from medbench import experiments
from medbench.experiments.pbft import BEHAVIOURS

TOLERATED = [b for b in BEHAVIOURS if b != "split-brain"]


def params(n: int, behaviour: str, count: int, **extra: Any) -> dict[str, Any]:
    """A bounded run: 20 requests from 2 clients, short timeouts, 20 s of virtual time."""
    return {
        "protocol": "pbft",
        "n": n,
        "requests": 20,
        "clients": 2,
        "batch": 4,
        "byzantine": behaviour,
        "byzantine_count": count,
        "view_change_timeout_us": 200_000,
        "client_timeout_us": 200_000,
        "duration_ms": 20_000,
        **extra,
    }


def verdicts(row: dict[str, Any]) -> tuple[bool, bool, bool]:
    """(safety, chain agreement, liveness) of a row."""
    return row["safety"], row["chain"], row["liveness"]


@pytest.mark.parametrize("behaviour", TOLERATED)
@pytest.mark.parametrize(("n", "count"), [(4, 1), (7, 2)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_up_to_f_faulty_primaries_keep_safety_and_liveness(
    behaviour: str, n: int, count: int, seed: int
) -> None:
    """f faulty replicas that are the primaries of the first f views (the worst placement)."""
    row = experiments.run(params(n, behaviour, count), seed)
    assert verdicts(row) == (True, True, True), (
        row["safety_reason"],
        row["chain_reason"],
        row["liveness_reason"],
    )
    assert row["completed"] == 20


@pytest.mark.parametrize("behaviour", ["bad-voter", "replayer", "crashed", "silent-primary"])
def test_faulty_backups_keep_safety_and_liveness(behaviour: str) -> None:
    """f = 2 faulty backups (the last replicas) at n = 7."""
    row = experiments.run(params(7, behaviour, 2, byzantine_ids="5,6"), 4)
    assert verdicts(row) == (True, True, True)


def test_view_changes_happen_for_a_silent_primary() -> None:
    """The silent primaries of views 0 and 1 are replaced: two views are entered."""
    row = experiments.run(params(7, "silent-primary", 2), 0)
    assert row["view_changes"] >= 2
    assert row["notes.view_change"] > 0 and row["notes.new_view"] > 0
    assert row["view_change_ms_max"] > 0


@pytest.mark.parametrize(("n", "seed"), [(4, 0), (4, 1), (7, 0), (7, 1)])
def test_f_plus_one_colluders_break_safety(n: int, seed: int) -> None:
    """A split brain of f+1 replicas makes two honest halves commit different batches."""
    f = (n - 1) // 3
    row = experiments.run(params(n, "split-brain", f + 1), seed)
    assert row["safety"] is False
    assert "committed" in row["safety_reason"]
    assert row["chain"] is False


def test_split_brain_needs_the_primary() -> None:
    """A coalition must include replica 0 (the primary of view 0)."""
    with pytest.raises(experiments.ExperimentError, match="including replica 0"):
        experiments.run(params(4, "split-brain", 1, byzantine_ids="1"), 0)


def test_a_primary_alone_equivocating_in_every_phase_is_within_the_bound() -> None:
    """One faulty replica that votes both batches cannot split n = 4 (quorums of 3 meet in two
    replicas), but splits n = 3, which tolerates no fault (quorums of 2 meet only in it)."""
    assert experiments.run(params(4, "split-brain", 1), 0)["safety"] is True
    assert experiments.run(params(3, "split-brain", 1), 0)["safety"] is False


def test_unknown_behaviour_is_an_error() -> None:
    """A typo in a behaviour name is reported, not ignored."""
    with pytest.raises(experiments.ExperimentError, match="unknown byzantine"):
        experiments.run(params(4, "lazy-primary", 1), 0)


def test_crash_and_recover_fault_string() -> None:
    """A backup crashes and recovers (rebuilt from its records); safety and liveness hold."""
    row = experiments.run(
        params(4, "", 0, requests=40, rate_tps=200, faults="crash:3@20ms;recover:3@100ms"),
        0,
    )
    assert verdicts(row) == (True, True, True)
    assert row["notes.crash"] == 1 and row["notes.recover"] == 1
    assert row.get("msgs_per_tx.fetch", 0) > 0
