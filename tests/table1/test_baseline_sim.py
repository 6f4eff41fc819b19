"""The baselines as simulator protocols, and the simulator's deadline ticks."""

from __future__ import annotations

from typing import Any

import pytest

from medbench import experiments as ex
from medbench.consensus.baselines.common import MembershipError
from medbench.node import Ready
from medbench.sim.engine import Simulator


@pytest.mark.parametrize(
    ("protocol", "n", "extra"),
    [
        ("pow", 3, {}),
        ("poa", 3, {}),
        ("poi", 2, {}),
        ("central", 3, {}),
        ("dpos", 5, {"delegates": 3, "auditors": 2}),
    ],
)
def test_baseline_runs_live_and_safe(protocol: str, n: int, extra: dict[str, Any]) -> None:
    params = {"protocol": protocol, "n": n, "tick_us": 0, "txs": 6, "duration_ms": 900_000}
    params.update(extra)
    row = ex.run(params, seed=3)
    assert row["liveness"] and row["safety"]
    assert row["completed"] == 6
    assert row["storage_bytes.chain"] > 0
    assert row == {**ex.run(params, seed=3), "wall_s": row["wall_s"],
                   "sim_msgs_per_wall_s": row["sim_msgs_per_wall_s"]}  # fmt: skip


def test_periodic_tick_also_drives_baselines() -> None:
    row = ex.run({"protocol": "central", "n": 3, "tick_us": 1000, "txs": 4}, seed=1)
    assert row["liveness"]


def test_membership_rules_and_unknown_options() -> None:
    with pytest.raises(MembershipError):
        ex.run({"protocol": "dpos", "n": 120, "delegates": 101, "auditors": 20}, seed=1)
    with pytest.raises(ValueError, match="unknown"):
        ex.run({"protocol": "pow", "n": 2, "no_such_option": 1}, seed=1)


class Timer:
    """A node that wants ticks at 0, 250, 500, ... (never from the periodic tick)."""

    def __init__(self) -> None:
        self.node_id = 0
        self.ticks: list[int] = []
        self.deadline: int | None = 0

    def next_deadline(self) -> int | None:
        return self.deadline

    def tick(self, now: int) -> Ready:
        self.ticks.append(now)
        self.deadline = now + 250 if now < 1000 else None
        return Ready()

    def step(self, src: int, msg: Any) -> Ready:
        return Ready()


def test_deadline_ticks_fire_at_the_deadline() -> None:
    node = Timer()
    Simulator([node], tick_us=0).run(5000)
    assert node.ticks == [0, 250, 500, 750, 1000]


class Stuck(Timer):
    """Its deadline never moves past 0."""

    def tick(self, now: int) -> Ready:
        self.ticks.append(now)
        return Ready()


def test_a_stuck_deadline_cannot_spin_the_clock() -> None:
    node = Stuck()
    Simulator([node], tick_us=0).run(10)
    assert node.ticks == list(range(11))  # once per microsecond at most
