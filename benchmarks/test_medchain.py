"""End-to-end throughput of four Medical Chain nodes on the in-process network
(docs/medical-chain.md §1.5).

Every transaction is a real signed access request (Ed25519, X.509 chain checked), validated by the
access rules on each replica, ordered by PBFT, packed by the rotating blocker into a signed ledger
block and written to each node's SQLite store. ``auth`` selects how PBFT messages are
authenticated (Ed25519 on every message, MAC authenticators, or modeled tags); ``synchronous``
the SQLite durability (FULL: every consensus-log write is on disk before the step's messages
leave, as persist-before-send requires across power cuts; NORMAL: durable across process crashes).

Run: ``PYTHONPATH=. python -m pytest benchmarks/test_medchain.py --benchmark-only``.
Wall-clock transactions per second land in ``extra_info["tx_per_s"]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "medchain"))

from medchain_helpers import care_session, deploy

from medbench.access.scenario import GENESIS_US

USERS = 4
RECORDS = 10  # per session: 1 grant + 10 records + 1 read, then 1 audit record per session


@pytest.mark.parametrize(
    ("auth", "synchronous"),
    [("signatures", "FULL"), ("macs", "FULL"), ("modeled", "FULL"), ("signatures", "NORMAL"),
     ("modeled", "NORMAL")],
)  # fmt: skip
def test_end_to_end_throughput(benchmark, tmp_path_factory, auth, synchronous) -> None:  # type: ignore[no-untyped-def]
    def setup():  # type: ignore[no-untyped-def]
        dep, net = deploy(
            tmp_path_factory.mktemp(auth),
            auth=auth,
            synchronous=synchronous,
            block_size=32,
            block_interval_us=50_000,
        )
        ops = [care_session(dep, k, RECORDS, GENESIS_US + 1000 * k) for k in range(USERS)]
        return (dep, net, ops), {}

    def run(dep, net, ops):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        for c, session in zip(dep.user_ids, ops, strict=True):
            for op in session:
                net.submit(c, op)
        assert net.run_until_idle(60_000_000)
        net.run(500_000)
        elapsed = time.perf_counter() - start
        stored = len(dep.nodes[0].ledger)
        assert stored == USERS * (RECORDS + 3)
        benchmark.extra_info["transactions"] = stored
        benchmark.extra_info["tx_per_s"] = round(stored / elapsed, 1)
        benchmark.extra_info["virtual_s"] = net.now / 1e6

    benchmark.pedantic(run, setup=setup, rounds=2, iterations=1)
