"""Routes come from networkx's shortest paths: the topology's tables equal a Dijkstra walk."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from medbench.sim import topology


def expected(g: nx.Graph) -> tuple[list[list[int]], list[list[int]], list[list[float]]]:
    """Latency, bottleneck bandwidth and loss along networkx's Dijkstra shortest paths."""
    nodes = sorted(g.nodes)
    n = len(nodes)
    lat = [[0] * n for _ in range(n)]
    bw = [[10 * topology.GBIT] * n for _ in range(n)]
    loss = [[0.0] * n for _ in range(n)]
    for i, a in enumerate(nodes):
        _dist, paths = nx.single_source_dijkstra(g, a, weight="latency_us")
        for j, b in enumerate(nodes):
            if a == b:
                continue
            edges = [g.edges[u, v] for u, v in zip(paths[b], paths[b][1:], strict=False)]
            lat[i][j] = sum(int(e["latency_us"]) for e in edges)
            bw[i][j] = min(int(e["bandwidth_bps"]) for e in edges)
            keep = 1.0
            for e in edges:
                keep *= 1.0 - float(e.get("loss", 0.0))
            loss[i][j] = 1.0 - keep
    return lat, bw, loss


@pytest.mark.parametrize("seed", range(12))
def test_routes_match_networkx_dijkstra(seed: int) -> None:
    r = random.Random(seed)
    g = nx.connected_watts_strogatz_graph(24, 4, 0.3, seed=seed)
    for u, v in g.edges:  # distinct latencies: one shortest route per pair
        g.edges[u, v].update(
            latency_us=r.randint(1, 10**6), bandwidth_bps=r.randint(1, 10**9), loss=r.random() / 10
        )
    t = topology.from_graph(g)
    lat, bw, loss = expected(g)
    assert [list(row) for row in t.latency_us] == lat
    assert [list(row) for row in t.bandwidth_bps] == bw
    got = [p for row in t.loss for p in row]
    assert got == pytest.approx([p for row in loss for p in row])


@pytest.mark.parametrize("name", ["city", "province", "country"])
def test_presets_and_complete_graph(name: str) -> None:
    g = topology.preset_graph(name, 12, random.Random(5))
    t = topology.from_graph(g)
    lat, bw, _loss = expected(g)
    assert [list(row) for row in t.latency_us] == lat
    assert [list(row) for row in t.bandwidth_bps] == bw
    c = topology.complete(5, latency_us=1000)
    assert all(c.latency_us[a][b] == 1000 for a in range(5) for b in range(5) if a != b)


def test_a_direct_edge_wins_a_tie() -> None:
    g = nx.Graph()
    g.add_edge(0, 1, latency_us=10, bandwidth_bps=100)
    g.add_edge(1, 2, latency_us=10, bandwidth_bps=100)
    g.add_edge(0, 2, latency_us=20, bandwidth_bps=7)  # as short as the route through 1
    t = topology.from_graph(g)
    assert t.latency_us[0][2] == 20 and t.bandwidth_bps[0][2] == 7
