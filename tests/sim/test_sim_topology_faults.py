"""Topologies (presets, user graphs, co-located nodes), fault schedules and cost profiles."""

from __future__ import annotations

import json
import random
from pathlib import Path

import networkx as nx
import pytest

from medbench import experiments
from medbench.sim import topology
from medbench.sim.costs import CostProfile, CostProfileError, OpCounter
from medbench.sim.faults import Action, FaultEvent, FaultSpecError, parse, parse_time


@pytest.mark.parametrize(
    ("preset", "lo", "hi"),
    [("city", 1_000, 5_000), ("province", 5_000, 20_000), ("country", 20_000, 60_000)],
)
def test_presets_stay_in_their_latency_and_bandwidth_ranges(preset: str, lo: int, hi: int) -> None:
    topo = topology.build(preset, 12, random.Random(3))
    assert topo.size == 12
    for a in range(12):
        assert topo.latency_us[a][a] == 0
        for b in range(12):
            if a != b:
                assert lo <= topo.latency_us[a][b] <= hi
                assert topo.latency_us[a][b] == topo.latency_us[b][a]
                assert 100 * topology.MBIT <= topo.bandwidth_bps[a][b] <= topology.GBIT
    assert topo == topology.build(preset, 12, random.Random(3))
    assert topo != topology.build(preset, 12, random.Random(4))


def test_complete_is_uniform() -> None:
    topo = topology.complete(5, 1234, 5 * topology.MBIT)
    off = {topo.latency_us[a][b] for a in range(5) for b in range(5) if a != b}
    assert off == {1234}
    assert not topo.lossy
    assert topo.describe()["latency_us_mean"] == 1234


def test_user_graph_routes_through_routers_and_combines_loss() -> None:
    g = nx.Graph()
    g.add_edge("h0", "r", latency_us=300, bandwidth_bps=10 * topology.MBIT, loss=0.1)
    g.add_edge("r", "h1", latency_us=700, bandwidth_bps=5 * topology.MBIT, loss=0.2)
    topo = topology.from_graph(g, endpoints=["h0", "h1"])
    assert topo.latency_us[0][1] == 1000
    assert topo.bandwidth_bps[0][1] == 5 * topology.MBIT
    assert topo.loss[0][1] == pytest.approx(1 - 0.9 * 0.8)
    assert topo.lossy


def test_bad_graphs_are_refused() -> None:
    g = nx.Graph()
    g.add_edge(0, 1, latency_us=10)
    with pytest.raises(topology.TopologyError):
        topology.from_graph(g)
    g = nx.Graph()
    g.add_edge(0, 1, latency_us=10, bandwidth_bps=10)
    g.add_node(2)
    with pytest.raises(topology.TopologyError):
        topology.from_graph(g)
    with pytest.raises(topology.TopologyError):
        topology.build("galaxy", 3, random.Random(0))


def test_for_nodes_puts_co_located_nodes_on_a_lan() -> None:
    topo = topology.complete(3, 5000).for_nodes([0, 1, 2, 0], lan_latency_us=80)
    assert topo.size == 4
    assert topo.latency_us[3][0] == 80 and topo.latency_us[0][3] == 80
    assert topo.latency_us[3][1] == 5000
    assert topo.latency_us[3][3] == 0
    with pytest.raises(topology.TopologyError):
        topology.complete(2).for_nodes([0, 2])


def test_fault_spec_parsing() -> None:
    events = parse(
        "crash:3@200ms; recover:3@1s; cut:0-1@50; heal:0-1@60us; isolate:2@5ms;"
        " rejoin:2@6ms; partition:0,1|2,3@7ms; heal_all@8ms"
    )
    assert events == [
        FaultEvent(200_000, Action.CRASH, (3,)),
        FaultEvent(1_000_000, Action.RECOVER, (3,)),
        FaultEvent(50, Action.CUT, (0, 1)),
        FaultEvent(60, Action.HEAL, (0, 1)),
        FaultEvent(5_000, Action.ISOLATE, (2,)),
        FaultEvent(6_000, Action.REJOIN, (2,)),
        FaultEvent(7_000, Action.PARTITION, (), ((0, 1), (2, 3))),
        FaultEvent(8_000, Action.HEAL_ALL),
    ]
    assert parse("") == []
    assert parse_time("3s") == 3_000_000


@pytest.mark.parametrize(
    "bad",
    ["crash:1", "explode:1@1ms", "crash:x@1ms", "cut:1@1ms", "partition:0,1@1ms", "crash:1@1h"],
)
def test_bad_fault_specs_are_refused(bad: str) -> None:
    with pytest.raises(FaultSpecError):
        parse(bad)


def test_cost_profile_round_trip_and_validation(tmp_path: Path) -> None:
    prof = CostProfile(sign_ns=1.5, extra_ns={"bls": 9.0}, host="h")
    path = tmp_path / "p.json"
    prof.save(path)
    assert CostProfile.load(path) == prof
    assert prof.op_ns("bls", 2) == 18
    assert prof.op_ns("unknown", 5) == 0
    assert prof.op_ns("hash_bytes", 1000) == 1000
    with pytest.raises(CostProfileError):
        CostProfile.from_dict({"sign_ns": -1})
    with pytest.raises(CostProfileError):
        CostProfile.from_dict({"nope": 1})
    path.write_text(json.dumps([1]))
    with pytest.raises(CostProfileError):
        CostProfile.load(path)
    assert CostProfile.zero().op_ns("verify", 10) == 0


def test_op_counter_drains() -> None:
    c = OpCounter()
    c.add("sign")
    c.add("hash_bytes", 64)
    c.add("sign")
    assert c.take() == {"sign": 2, "hash_bytes": 64}
    assert c.take() == {}


def test_user_graph_from_an_edge_list_and_graphml(tmp_path: Path) -> None:
    """A sweep's topology may be a file: routes and bottlenecks come from its edges."""
    edges = tmp_path / "ring.edgelist"
    edges.write_text(
        "# u v latency_us bandwidth_bps [loss]\n"
        "0 1 1000 1000000000\n1 2 2000 100000000\n2 3 3000 1000000000 0.0\n"
    )
    t = topology.build(str(edges), 4, random.Random(0))
    assert t.latency_us[0][3] == 6000 and t.bandwidth_bps[0][3] == 100_000_000
    g = nx.Graph()
    g.add_edge(0, 1, latency_us=500, bandwidth_bps=10**9)
    g.add_edge(1, 2, latency_us=700, bandwidth_bps=10**9)
    path = tmp_path / "line.graphml"
    nx.write_graphml(g, path)
    t2 = topology.build(f"file:{path}", 3, random.Random(0))
    assert t2.latency_us[0][2] == 1200
    row = experiments.run(
        {"protocol": "toy-quorum", "n": 3, "requests": 3, "topology": str(path)}, seed=1
    )
    assert row["liveness"] and row["topology"] == str(path)
    with pytest.raises(topology.TopologyError, match="needs 5 sites"):
        topology.build(str(edges), 5, random.Random(0))
    bad = tmp_path / "bad.edgelist"
    bad.write_text("0 1 fast 10\n")
    with pytest.raises(topology.TopologyError):
        topology.build(str(bad), 2, random.Random(0))
    with pytest.raises(topology.TopologyError):
        topology.build(str(tmp_path / "missing.edgelist"), 2, random.Random(0))
