"""Fixtures of the Medical Chain node tests: a deployment on the PBFT in-process network."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pbft"))

from pbft_harness import Network  # noqa: E402

from medbench.medchain import Deployment, make_consortium  # noqa: E402


def network(dep: Deployment, seed: int = 0, tick_us: int = 10_000) -> Network:
    """The harness network carrying ``dep``'s nodes and clients."""
    n = dep.config.n
    net = Network(n=n, clients=0, seed=seed, tick_us=tick_us)
    net.nodes = dep.nodes
    net.keyrings = dep.keyrings
    net.config = dep.config
    net.client_ids = [*range(n, 2 * n), *dep.user_ids]
    return net


def deploy(tmp_path: Path, **kw: Any) -> tuple[Deployment, Network]:
    """A four-node deployment (seed 1) and its network."""
    kw.setdefault("n", 4)
    kw.setdefault("seed", 1)
    dep = make_consortium(store_dir=tmp_path, **kw)
    return dep, network(dep)


def crash(dep: Deployment, net: Network, i: int) -> None:
    """Node ``i`` loses everything but its SQLite store."""
    net.crash(i)
    dep.nodes[i].close()


def restart(dep: Deployment, net: Network, i: int) -> None:
    """Node ``i`` comes back from its store and asks its peers for what it missed."""
    node = dep.restart(i, net.now)
    net.crashed.discard(i)
    net._apply(i, node.first)
