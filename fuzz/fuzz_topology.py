"""Topology files (``medbench.sim.topology.load_graph`` and ``from_graph``, what ``build`` does
with a run's ``topology=FILE``): GraphML or an edge list from the user's disk.

The first byte picks the format (``.graphml`` or ``.edgelist``); the rest is the file. Allowed: a
topology, or :class:`~medbench.sim.topology.TopologyError`. Checked on a topology: every table
is square, latencies are non-negative integers, bandwidths positive integers and losses in
[0, 1] (what the simulator indexes and draws with on every send).
"""

from __future__ import annotations

import math
import warnings

import networkx as nx

from fuzz import samples
from fuzz.common import ByteReader, Harness, OneInput, expect
from medbench.sim.topology import TopologyError, complete_graph, from_graph, load_graph


def setup() -> OneInput:
    directory = samples.scratch_dir()
    paths = (directory / "g.graphml", directory / "g.edgelist")

    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        path = paths[r.u8() % 2]
        path.write_bytes(r.rest())
        with warnings.catch_warnings():  # networkx warns about GraphML keys without a type
            warnings.simplefilter("ignore", UserWarning)
            graph = load_graph(path)
        topo = from_graph(graph)
        n = topo.size
        for table in (topo.latency_us, topo.bandwidth_bps, topo.loss):
            expect(len(table) == n and all(len(row) == n for row in table), "table not square")
        for a in range(n):
            for b in range(n):
                lat, bw, loss = topo.latency_us[a][b], topo.bandwidth_bps[a][b], topo.loss[a][b]
                expect(type(lat) is int and lat >= 0, f"latency {lat!r}")
                expect(type(bw) is int and bw > 0, f"bandwidth {bw!r}")
                expect(math.isfinite(loss) and 0.0 <= loss <= 1.0, f"loss {loss!r}")

    return one_input


def seeds() -> list[bytes]:
    directory = samples.scratch_dir()
    g = complete_graph(3, 1500, 10**9, 0.01)
    nx.write_graphml(g, directory / "c.graphml")
    line = nx.path_graph(4)
    nx.set_edge_attributes(line, 700, "latency_us")
    nx.set_edge_attributes(line, 10**8, "bandwidth_bps")
    nx.write_graphml(line, directory / "l.graphml")
    edges = b"# u v latency_us bandwidth_bps [loss]\n0 1 1000 1000000000\n1 2 2500 500000000 0.01\n"
    return [
        b"\x00" + (directory / "c.graphml").read_bytes(),
        b"\x00" + (directory / "l.graphml").read_bytes(),
        b"\x01" + edges,
        b"\x01" + b"a b 5 7\nb c 1 1 0.5\nc a 9 2\n",
    ]


HARNESS = Harness(
    name="topology",
    summary="sim.topology.load_graph + from_graph (GraphML and edge-list files)",
    allowed=(TopologyError,),
    setup=setup,
    seeds=seeds,
    max_len=4096,
)
