"""Hosts: nodes sharing a host's cores and disk (the machine the real cluster runs on)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sim_testnodes import Blob, Do, attach, recorders

from medbench.experiments import run
from medbench.node import Send
from medbench.sim import CostProfile, SimulationError, Simulator, topology

ZERO = CostProfile.zero()


def make(n: int, profile: CostProfile, **kw: Any) -> Simulator:
    sim = Simulator(recorders(n), topology.complete(n, 1000, 10**12), profile=profile,
                    tick_us=0, **kw)  # fmt: skip
    attach(sim)
    return sim


def arrivals(sim: Simulator, node: int) -> list[int]:
    return sorted(t for t, _src, msg in sim.nodes[node].log if isinstance(msg, Blob))


def busy_burst(sim: Simulator, senders: tuple[int, ...], to: int) -> None:
    """Each sender does 10 us of verify work, then sends a blob to ``to``."""
    for s in senders:
        sim.schedule_input(0, s, Do(sends=(Send((to,), Blob(0)),), costs=(("verify", 1),)))


def test_nodes_of_one_host_share_its_cores() -> None:
    profile = replace(ZERO, verify_ns=10_000)
    own = make(4, profile)  # a CPU per node: all three senders work in parallel
    busy_burst(own, (0, 1, 2), 3)
    own.run(100_000)
    assert arrivals(own, 3) == [1010, 1010, 1010]
    one = make(4, profile, hosts=[0, 0, 0, 0], cores=1)  # one core: one after another
    busy_burst(one, (0, 1, 2), 3)
    one.run(100_000)
    assert arrivals(one, 3) == [1010, 1020, 1030]
    two = make(4, profile, hosts=[0, 0, 0, 0], cores=2)
    busy_burst(two, (0, 1, 2), 3)
    two.run(100_000)
    assert arrivals(two, 3) == [1010, 1010, 1020]
    split = make(4, profile, hosts=[0, 1, 0, 1], cores=1)  # two hosts of one core
    busy_burst(split, (0, 1, 2), 3)
    split.run(100_000)
    assert arrivals(split, 3) == [1010, 1010, 1020]


def test_persistence_waits_for_the_commit_before_sending() -> None:
    profile = replace(ZERO, persist_ns=200_000, persist_cpu_ns=10_000)  # 200 us, 10 us of CPU
    sim = make(4, profile, hosts=[0, 0, 0, 1], cores=3)
    for s, at in ((0, 0), (1, 50), (2, 100)):
        sim.schedule_input(at, s, Do(sends=(Send((3,), Blob(0)),), persist=("rec",)))
    rec = sim.run(100_000)
    # each waits for its own commit (contention is in the measured figure): 10 + 200 us
    assert arrivals(sim, 3) == [1210, 1260, 1310]
    assert rec.op_counts[0]["persist"] == 1 and rec.cpu_ns[0]["persist"] == 10_000
    assert sim.storage[0] == ["rec"]


def test_a_node_waits_for_its_commit() -> None:
    sim = make(2, replace(ZERO, persist_ns=200_000), hosts=[0, 1])
    sim.schedule_input(0, 0, Do(sends=(Send((1,), Blob(0)),), persist=("a",)))
    sim.schedule_input(10, 0, Do(sends=(Send((1,), Blob(0)),)))  # nothing to persist
    sim.run(100_000)
    # the second input waits for the first one's commit (the node blocks), then sends at once
    assert arrivals(sim, 1) == [1200, 1200]


def test_commit_cost_without_hosts_gives_each_node_its_disk() -> None:
    sim = make(3, replace(ZERO, persist_ns=200_000))
    for s in (0, 1):
        sim.schedule_input(0, s, Do(sends=(Send((2,), Blob(0)),), persist=("rec",)))
    sim.run(100_000)
    assert arrivals(sim, 2) == [1200, 1200]


def test_clients_on_their_replicas_host_are_never_faster() -> None:
    """PBFT under load with each client on its replica's one-core host."""
    params = {"protocol": "pbft", "n": 4, "clients": 8, "requests": 200, "batch": 8}
    plain = run(params, seed=3)
    hosted = run({**params, "hosts": 4, "cores": 1}, seed=3)  # clients share their site's host
    assert plain["completed"] == hosted["completed"] == 200
    # the clients now share their replica's core: slower, never faster
    assert hosted["latency_ms_p50"] >= plain["latency_ms_p50"]


def test_two_shared_cores_cap_throughput() -> None:
    base = {"protocol": "pbft", "n": 4, "clients": 16, "requests": 800, "batch": 16,
            "auth": "signatures", "latency_us": 50}  # fmt: skip
    free = run(base, seed=1)
    shared = run({**base, "hosts": 1, "cores": 2}, seed=1)
    assert shared["throughput_tps"] < free["throughput_tps"]
    # total CPU per second of virtual time cannot exceed the two cores
    assert shared["cpu_s_total"] / shared["sim_end_s"] <= 2.0 + 1e-6


def test_bad_host_layouts_are_refused() -> None:
    with pytest.raises(SimulationError):
        make(3, ZERO, hosts=[0, 0])
    with pytest.raises(SimulationError):
        make(3, ZERO, hosts=[0, 1, 1], cores=[1])


def test_calibrate_measures_commits_and_runtime_frames() -> None:
    from medbench.experiments.calibrate import calibrate

    udp = calibrate(quick=True)
    tls = calibrate(quick=True, transport="tls")
    assert udp.persist_ns > 0 and tls.persist_ns > 0
    assert tls.send_per_dst_ns > 0 and tls.message_base_ns > 0
    with pytest.raises(ValueError):
        calibrate(quick=True, transport="carrier-pigeon")


def test_validate_simulates_the_clusters_workload() -> None:
    from medbench.experiments.validate import ValidateSpec, sim_params

    p = sim_params(4, 64, ValidateSpec())
    assert (p["hosts"], p["client_processes"], p["round_ticks"]) == (1, 1, True)
    prof = replace(CostProfile.default(), persist_ns=1e5)
    row = run({**p, "requests": 256}, seed=1, profile=prof)
    assert row["completed"] == 256 and row["safety"]
    # rounds batch: a closed loop of 64 clients gives large batches, not one request each
    assert row["msgs_per_tx.pre-prepare"] < 3 / 16
