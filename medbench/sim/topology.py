"""Network topologies for the simulator: per-pair latency, bandwidth and loss from a graph.

Theory of operation
-------------------
A :class:`Topology` is three dense ``n x n`` tables, indexed by *site* (a hospital's data
centre): one-way latency in integer microseconds, bandwidth in bits per second and loss
probability. The simulator reads them on every send, so they are plain nested lists (the fastest
thing to index from Python) computed once from a :mod:`networkx` graph:

* every edge carries ``latency_us`` (int), ``bandwidth_bps`` (int) and optionally ``loss``;
* for a pair of sites that is not an edge (a multi-hop graph with routers), the route is the
  shortest path by latency (all pairs at once by :func:`networkx.floyd_warshall_numpy`; among
  equally short routes a direct edge wins); the route's latency is the sum, its bandwidth the
  bottleneck (minimum) and its loss ``1 - prod(1 - loss_e)``.

Presets place hospitals at random points (from an injected ``random.Random``) and map distance to
latency: :func:`city` (about 1-5 ms one way), :func:`province` (5-20 ms) and :func:`country`
(20-60 ms), with per-edge bandwidth drawn from 100 Mbit/s - 1 Gbit/s. :func:`complete` gives
every pair the same latency and bandwidth, which lets the simulator deliver a broadcast as one
event.

:func:`build` also reads a user's graph from a GraphML file or an edge list (a run's
``topology`` parameter is then the file's path; :func:`load_graph`).

Several nodes may share a site (a PBFT client beside its hospital's replica): :meth:`for_nodes`
expands the site tables to node tables, with ``lan_latency_us`` between co-located nodes.
"""

from __future__ import annotations

import math
import numbers
import random
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import networkx as nx
import numpy as np

GBIT = 1_000_000_000
MBIT = 1_000_000


class TopologyError(ValueError):
    """A graph cannot be turned into a topology (missing attribute, disconnected, ...)."""


MAX_VERTICES = 1024
"""Most vertices (sites and routers) a graph may have: the all-pairs routing holds a few dense
``V x V`` tables (8 MiB each at this size)."""
_INT_NAME = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class Topology:
    """Dense per-pair tables: ``latency_us[a][b]``, ``bandwidth_bps[a][b]``, ``loss[a][b]``."""

    latency_us: tuple[tuple[int, ...], ...]
    bandwidth_bps: tuple[tuple[int, ...], ...]
    loss: tuple[tuple[float, ...], ...]
    name: str = "custom"

    @property
    def size(self) -> int:
        """Number of sites (rows of the tables)."""
        return len(self.latency_us)

    @property
    def lossy(self) -> bool:
        """True when some pair has a non-zero loss probability."""
        return any(p > 0.0 for row in self.loss for p in row)

    def for_nodes(self, sites: Sequence[int], lan_latency_us: int = 100) -> Topology:
        """Node tables for nodes placed at ``sites[i]``; co-located nodes get a LAN link."""
        for s in sites:
            if not 0 <= s < self.size:
                raise TopologyError(f"site {s} outside a topology of {self.size} sites")
        lat, bw, loss = [], [], []
        for i, a in enumerate(sites):
            lat.append(
                tuple(
                    0 if i == j else (lan_latency_us if a == b else self.latency_us[a][b])
                    for j, b in enumerate(sites)
                )
            )
            bw.append(tuple(self.bandwidth_bps[a][b] if a != b else 10 * GBIT for b in sites))
            loss.append(tuple(self.loss[a][b] if a != b else 0.0 for b in sites))
        return Topology(tuple(lat), tuple(bw), tuple(loss), f"{self.name}/nodes")

    def describe(self) -> dict[str, float | int | str]:
        """Summary figures (for metadata): min/mean/max latency and bandwidth off the diagonal."""
        n = self.size
        lats = [self.latency_us[a][b] for a in range(n) for b in range(n) if a != b] or [0]
        bws = [self.bandwidth_bps[a][b] for a in range(n) for b in range(n) if a != b] or [0]
        return {
            "name": self.name,
            "sites": n,
            "latency_us_min": min(lats),
            "latency_us_mean": sum(lats) / len(lats),
            "latency_us_max": max(lats),
            "bandwidth_bps_min": min(bws),
            "bandwidth_bps_max": max(bws),
        }


def from_graph(
    graph: nx.Graph, endpoints: Sequence[Hashable] | None = None, name: str = "custom"
) -> Topology:
    """The topology of ``graph`` between ``endpoints`` (default: all nodes, sorted).

    Edges need ``latency_us`` and ``bandwidth_bps``; ``loss`` defaults to 0. Pairs without a
    direct edge use the shortest path by latency (see the module docstring).
    """
    if endpoints is None:
        endpoints = sorted(graph.nodes)
    index = {v: i for i, v in enumerate(endpoints)}
    if len(index) != len(endpoints):
        raise TopologyError("endpoints must be distinct")
    if graph.number_of_nodes() > MAX_VERTICES:
        raise TopologyError(f"graph has more than {MAX_VERTICES} vertices")
    for u, v, data in graph.edges(data=True):
        for attr in ("latency_us", "bandwidth_bps"):
            if attr not in data:
                raise TopologyError(f"edge ({u}, {v}) lacks {attr!r}")
            if not _finite(data[attr]):
                raise TopologyError(f"edge ({u}, {v}) has a {attr} that is not a finite number")
        if data["latency_us"] < 0 or data["bandwidth_bps"] < 1:
            raise TopologyError(f"edge ({u}, {v}) has a negative latency or no bandwidth")
        loss = data.get("loss", 0.0)
        if not (_finite(loss) and 0.0 <= loss <= 1.0):
            raise TopologyError(f"edge ({u}, {v}) has a loss outside [0, 1]")
    # All-pairs shortest latency: networkx's Floyd-Warshall on numpy (one matrix of distances).
    # A route is then walked hop by hop: from u towards t, the direct edge when it is a shortest
    # route (so direct edges win ties), else the first neighbour v (adjacency order) with
    # w(u, v) + dist(v, t) == dist(u, t).
    vertices = list(graph.nodes)
    pos = {v: i for i, v in enumerate(vertices)}
    dist = nx.floyd_warshall_numpy(graph, nodelist=vertices, weight="latency_us")
    n = len(endpoints)
    lat = [[0] * n for _ in range(n)]
    bw = [[10 * GBIT] * n for _ in range(n)]
    loss = [[0.0] * n for _ in range(n)]
    for a in endpoints:
        i = index[a]
        for b in endpoints:
            j = index[b]
            if a == b:
                continue
            target = pos[b]
            if not np.isfinite(dist[pos[a], target]):
                raise TopologyError(f"no route from {a} to {b}")
            u = a
            total, bottleneck, keep = 0, None, 1.0
            while u != b:
                v = _next_hop(graph, u, b, dist, pos)
                e = graph.edges[u, v]
                total += int(e["latency_us"])
                b_e = int(e["bandwidth_bps"])
                bottleneck = b_e if bottleneck is None else min(bottleneck, b_e)
                keep *= 1.0 - float(e.get("loss", 0.0))
                u = v
            lat[i][j] = total
            bw[i][j] = int(bottleneck) if bottleneck is not None else 10 * GBIT
            loss[i][j] = 1.0 - keep
    return Topology(
        tuple(tuple(r) for r in lat),
        tuple(tuple(r) for r in bw),
        tuple(tuple(r) for r in loss),
        name,
    )


def _finite(x: object) -> bool:
    """A finite real number (not a bool, a string, NaN or infinity, which GraphML can give)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _next_hop(
    graph: nx.Graph, u: Hashable, t: Hashable, dist: np.ndarray, pos: dict[Hashable, int]
) -> Hashable:
    """The next vertex on a shortest route from ``u`` to ``t`` (a direct edge first)."""
    want = float(dist[pos[u], pos[t]])
    slack = 1e-9 * max(1.0, want)  # float latencies: sums may round differently
    succ = graph.succ[u] if graph.is_directed() else graph.adj[u]
    if t in succ and abs(float(succ[t]["latency_us"]) - want) <= slack:
        return t
    for v, data in succ.items():
        if abs(float(data["latency_us"]) + float(dist[pos[v], pos[t]]) - want) <= slack:
            hop: Hashable = v
            return hop
    raise TopologyError(f"no route from {u} to {t}")  # unreachable for a finite distance


def complete_graph(
    n: int, latency_us: int = 1000, bandwidth_bps: int = GBIT, loss: float = 0.0
) -> nx.Graph:
    """A complete graph of ``n`` sites with identical edges."""
    g = nx.complete_graph(n)
    nx.set_edge_attributes(g, int(latency_us), "latency_us")
    nx.set_edge_attributes(g, int(bandwidth_bps), "bandwidth_bps")
    nx.set_edge_attributes(g, float(loss), "loss")
    return g


def complete(
    n: int, latency_us: int = 1000, bandwidth_bps: int = GBIT, loss: float = 0.0
) -> Topology:
    """Every pair of ``n`` sites at the same latency, bandwidth and loss (the default)."""
    return from_graph(complete_graph(n, latency_us, bandwidth_bps, loss), name="complete")


def _geographic_graph(
    n: int,
    rng: random.Random,
    lat_range_us: tuple[int, int],
    bw_range_bps: tuple[int, int],
    loss: float,
) -> nx.Graph:
    """Hospitals at random points of a unit square; latency grows linearly with distance."""
    points = [(rng.random(), rng.random()) for _ in range(n)]
    lo, hi = lat_range_us
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for a in range(n):
        for b in range(a + 1, n):
            d = math.dist(points[a], points[b]) / math.sqrt(2.0)  # in [0, 1]
            g.add_edge(
                a,
                b,
                latency_us=int(lo + (hi - lo) * d),
                bandwidth_bps=rng.randint(*bw_range_bps),
                loss=loss,
            )
    return g


PRESETS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "city": ((1_000, 5_000), (500 * MBIT, GBIT)),
    "province": ((5_000, 20_000), (100 * MBIT, GBIT)),
    "country": ((20_000, 60_000), (100 * MBIT, 500 * MBIT)),
}
"""Preset name -> (one-way latency range in us, bandwidth range in bit/s)."""


def preset_graph(name: str, n: int, rng: random.Random, loss: float = 0.0) -> nx.Graph:
    """The graph of preset ``name`` (``city``, ``province``, ``country``) for ``n`` hospitals."""
    if name not in PRESETS:
        raise TopologyError(f"unknown topology preset {name!r}; expected one of {sorted(PRESETS)}")
    lat_range, bw_range = PRESETS[name]
    return _geographic_graph(n, rng, lat_range, bw_range, loss)


def city(n: int, rng: random.Random, loss: float = 0.0) -> Topology:
    """Hospitals of one city: 1-5 ms one way, 500 Mbit/s - 1 Gbit/s."""
    return from_graph(preset_graph("city", n, rng, loss), name="city")


def province(n: int, rng: random.Random, loss: float = 0.0) -> Topology:
    """Hospitals of one province: 5-20 ms one way, 100 Mbit/s - 1 Gbit/s."""
    return from_graph(preset_graph("province", n, rng, loss), name="province")


def country(n: int, rng: random.Random, loss: float = 0.0) -> Topology:
    """Hospitals of one country: 20-60 ms one way, 100-500 Mbit/s."""
    return from_graph(preset_graph("country", n, rng, loss), name="country")


GRAPH_SUFFIXES = (".graphml", ".edgelist", ".edges")
"""File name endings :func:`build` reads as a user graph (:func:`load_graph`)."""


def load_graph(path: str | Path) -> nx.Graph:
    """A user's network graph from a GraphML file or an edge list.

    GraphML edges carry ``latency_us`` and ``bandwidth_bps`` (and optionally ``loss``) as edge
    data. An edge list has one edge per line, ``u v latency_us bandwidth_bps [loss]`` (``#``
    starts a comment). Node names that are all integers become ints, so sites sort as numbers.
    Raises :class:`TopologyError` for an unreadable file or a malformed line.
    """
    p = Path(path)
    try:
        if p.suffix == ".graphml":
            g = nx.Graph(nx.read_graphml(p))
        else:
            g = nx.Graph()
            for no, raw in enumerate(p.read_text().splitlines(), 1):
                line = raw.split("#", 1)[0].split()
                if not line:
                    continue
                if len(line) not in (4, 5):
                    raise TopologyError(f"{p}:{no}: expected 'u v latency_us bandwidth_bps [loss]'")
                u, v = line[0], line[1]
                data = {"latency_us": int(line[2]), "bandwidth_bps": int(line[3])}
                if len(line) == 5:
                    data["loss"] = float(line[4])  # type: ignore[assignment]
                g.add_edge(u, v, **data)
    except (
        OSError,
        ValueError,
        LookupError,  # an unknown XML encoding or GraphML attribute type
        TypeError,
        nx.NetworkXError,
        ElementTree.ParseError,
    ) as exc:
        if isinstance(exc, TopologyError):
            raise
        raise TopologyError(f"cannot read graph {p}: {exc}") from None
    if g.number_of_nodes() > MAX_VERTICES:
        raise TopologyError(f"graph {p} has more than {MAX_VERTICES} vertices")
    if all(_INT_NAME.fullmatch(str(v)) for v in g.nodes):
        g = nx.relabel_nodes(g, {v: int(v) for v in g.nodes})
    return g


def build(
    kind: str,
    n: int,
    rng: random.Random,
    latency_us: int = 1000,
    bandwidth_bps: int = GBIT,
    loss: float = 0.0,
) -> Topology:
    """A topology by name: ``complete`` (uses latency/bandwidth), a preset, or a graph file.

    A ``kind`` ending in one of :data:`GRAPH_SUFFIXES` (or starting with ``file:``) is read by
    :func:`load_graph`; its nodes, sorted, are the sites 0..n-1, so it must have exactly ``n``.
    """
    if kind == "complete":
        return complete(n, latency_us, bandwidth_bps, loss)
    if kind.startswith("file:") or kind.endswith(GRAPH_SUFFIXES):
        graph = load_graph(kind.removeprefix("file:"))
        if graph.number_of_nodes() != n:
            raise TopologyError(
                f"graph {kind} has {graph.number_of_nodes()} nodes; the run needs {n} sites"
            )
        return from_graph(graph, name=Path(kind.removeprefix("file:")).name)
    return from_graph(preset_graph(kind, n, rng, loss), name=kind)
