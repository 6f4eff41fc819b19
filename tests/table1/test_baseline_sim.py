"""The baselines as simulator protocols, and the simulator's deadline ticks."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench import experiments as ex
from medbench.consensus.baselines.common import MembershipError
from medbench.experiments.baselines import SimBaseline
from medbench.experiments.baselines import build as sim_build
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
    assert row["storage_bytes.blocks"] > 0 and row["storage_bytes.txs"] >= 6 * 200
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


def test_crashed_node_server_recovers_and_resyncs() -> None:
    params = {
        "protocol": "central",
        "n": 3,
        "tick_us": 0,
        "txs": 10,
        "clients": 1,
        "faults": "crash:2@100ms; recover:2@300ms",
    }
    sim, _dep = ex.build_simulator(params, seed=2)
    record = sim.run(60_000_000, stop_when_complete=True)
    assert all(tx in record.completed for tx in record.submitted)
    # The fresh node server registered again and received the cached chain.
    server = sim.nodes[2]
    assert isinstance(server, SimBaseline)
    assert server.stats()["height"] >= 1


@settings(max_examples=60, deadline=None)
@given(
    protocol=st.sampled_from(["pow", "poa", "dpos", "poi", "central"]),
    src=st.integers(-3, 8),
    msg=st.one_of(st.binary(max_size=64), st.integers(), st.none(), st.text(max_size=8)),
)
def test_adapter_never_raises_on_hostile_input(protocol: str, src: int, msg: Any) -> None:
    extra = {"delegates": 3, "auditors": 2} if protocol == "dpos" else {}
    dep = sim_build({"protocol": protocol, "n": 5, "txs": 1, **extra}, random.Random(0))
    node = dep.nodes[1]
    assert isinstance(node, SimBaseline)
    ready = node.step(src, msg)
    assert not ready.committed and not ready.messages
    assert [n.kind for n in ready.notes] == ["rejected"]
    assert node.take_costs() == {}  # nothing was hashed or signed for garbage
