"""Helpers of the Medical Chain node tests: a deployment on the PBFT in-process network."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pbft"))

from pbft_harness import Network

from medbench.medchain import Deployment, make_consortium


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


US = 1_000_000


def care_session(dep: Deployment, k: int, records: int, t0: int) -> list[bytes]:
    """Patient ``k`` grants doctor ``k`` care access, the doctor adds ``records`` countersigned
    records, the patient reads them (a query: an audit record follows). Wire bytes, in order."""
    from medbench.access.request import Operation
    from medbench.medchain import request_transaction

    p, d = dep.patient_client(k), dep.doctor_client(k)
    body = {
        "grantee": d.public_key,
        "ops": ["add", "read"],
        "categories": ["*"],
        "not_before_us": t0,
        "not_after_us": t0 + 3600 * US,
    }
    reqs = [p.request(Operation.GRANT, patient=p.public_key, body=body, at_us=t0 + 1)]
    for j in range(records):
        reqs.append(
            d.request(
                Operation.ADD,
                patient=p.public_key,
                category="diagnosis",
                body={"content": b"visit %d of patient %d" % (j, k)},
                at_us=t0 + 2 + j,
                countersign=True,
            )
        )
    reqs.append(p.request(Operation.READ, patient=p.public_key, body={"history": False},
                          at_us=t0 + 3 + records))  # fmt: skip
    return [request_transaction(r).to_wire() for r in reqs]


def stored_chains(dep: Deployment, ids: list[int]) -> list[list[bytes]]:
    """The block IDs in each node's SQLite store, genesis first."""
    out = []
    for i in ids:
        node = dep.nodes[i]
        out.append([node.ledger.genesis().id, *(b.id for b in node.ledger.blocks())])
    return out
