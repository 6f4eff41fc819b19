"""Benchmarks of the node store (PAPER.md §1.4): storage per node for N visits, and write speed.

Run: ``PYTHONPATH=. python -m pytest benchmarks/test_store.py --benchmark-only`` (add ``-m "not
full"`` to skip the 100,000-visit case). Figures land in ``benchmark.extra_info``:

* ``bytes_total`` / ``bytes_by_category`` — one node's database (+ WAL) after N visits, one
  transaction per visit, blocks of 100 IDs (every node keeps everything: no retention);
* ``retention_*`` — the same node (institution 0 of 4) after the paper's retention policy with
  body eviction: it keeps its own institution's bodies and others' from the last 183 days; the
  rest stays fetchable from the health authority's archive. Visits are spread evenly over two
  years, so it keeps ~1/4 + 3/4 x 183/730 ~ 44 % of the bodies (and every block);
* ``overhead`` — bytes on disk / canonical bytes stored, required below 1.5.

Synthetic bodies: random (incompressible) bytes with log-normal sizes, median 1.3 KB, mean
~1.5 KB (a visit record with encrypted fields and two signatures), from a seeded numpy Generator.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medbench.hashing import sha256, sha256_many
from medbench.store import NodeStore, StoredTransaction
from medbench.store.accounting import storage_report
from medbench.store.retention import DAY_US, RetentionPolicy, apply_retention

SEED = 20190801
BLOCK_SIZE = 100
INSTITUTIONS = [sha256(b"hospital %d" % i) for i in range(4)]
BLOCKER = sha256(b"blocker")
SPAN_US = 730 * DAY_US
NOW_US = 1_700_000_000_000_000
MEDIAN_BODY = 1300
SIGMA_BODY = 0.5
OVERHEAD_LIMIT = 1.5


def _visit_blocks(visits: int, seed: int) -> Any:
    """Yield (transactions, block header) per block of 100 visits, oldest first (deterministic)."""
    rng = np.random.default_rng(seed)
    start = NOW_US - SPAN_US
    times = np.sort(rng.integers(start, NOW_US, size=visits, dtype=np.int64))
    sizes = np.clip(rng.lognormal(np.log(MEDIAN_BODY), SIGMA_BODY, size=visits), 200, 64_000)
    producers = rng.integers(0, len(INSTITUTIONS), size=visits)
    for lo in range(0, visits, BLOCK_SIZE):
        hi = min(lo + BLOCK_SIZE, visits)
        bodies = [rng.bytes(int(sizes[i])) for i in range(lo, hi)]
        ids = sha256_many(bodies)
        txs = [
            StoredTransaction(
                ids[k], 1, int(times[lo + k]), INSTITUTIONS[int(producers[lo + k])], bodies[k]
            )
            for k in range(hi - lo)
        ]
        yield txs, int(times[hi - 1])


def write_visits(path: Path, visits: int, seed: int = SEED) -> NodeStore:
    """A node store holding ``visits`` transactions in blocks of 100, as a replica writes them:
    the batch of bodies, then the block (header ~ previous ID, blocker key, Merkle root, time)."""
    store = NodeStore(path)
    prev = bytes(32)
    for height, (txs, ts) in enumerate(_visit_blocks(visits, seed)):
        store.put_transactions(txs)
        header = prev + BLOCKER + sha256(b"".join(t.tx_id for t in txs)) + ts.to_bytes(8, "big")
        block_id = sha256(header)
        store.append_block(height, block_id, prev, header, BLOCKER, ts, [t.tx_id for t in txs])
        prev = block_id
    return store


def _measure(tmp_path: Path, visits: int, benchmark: Any) -> None:
    counter = iter(range(1_000_000))

    def setup() -> tuple[tuple[Path, int], dict[str, Any]]:
        d = tmp_path / f"run{next(counter)}"
        d.mkdir()
        return (d / "node.db", visits), {}

    stores: list[NodeStore] = []

    def run(path: Path, n: int) -> None:
        stores.append(write_visits(path, n))

    benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    full = stores[-1]
    report = storage_report(full)
    assert report.counts["transactions"] == visits and full.check_consistency() == []

    # the same node after the retention policy; the full store plays the authority's archive
    kept_path = full.path.with_name("retained.db")
    shutil.copyfile(full.path, kept_path)
    node = NodeStore(kept_path)
    policy = RetentionPolicy(evict_bodies=True)
    done = apply_retention(
        node, None, policy, own_institution=INSTITUTIONS[0], now_us=NOW_US, archive=full
    )
    assert done.refused == []
    node.vacuum()
    kept = storage_report(node)
    assert node.check_consistency() == []  # evicted bodies are accounted for, not missing
    assert kept.counts["blocks"] == report.counts["blocks"]

    benchmark.extra_info.update(
        {
            "visits": visits,
            "blocks": report.counts["blocks"],
            "canonical_bytes": report.canonical_bytes,
            "bytes_total": report.disk_bytes,
            "bytes_per_visit": report.disk_bytes / visits,
            "bytes_by_category": report.as_dict(),
            "overhead": round(report.overhead, 4),
            "accounting_method": report.method,
            "retention_bytes_total": kept.disk_bytes,
            "retention_bytes_by_category": kept.as_dict(),
            "retention_bodies_kept": kept.counts["transactions"],
            "retention_bodies_evicted": done.bodies_evicted,
            "retention_fraction_of_full": round(kept.disk_bytes / report.disk_bytes, 4),
            "retention_overhead": round(kept.overhead, 4),
        }
    )
    assert report.overhead < OVERHEAD_LIMIT, report.as_dict()
    assert kept.overhead < OVERHEAD_LIMIT, kept.as_dict()
    assert kept.disk_bytes < 0.6 * report.disk_bytes
    node.close()
    full.close()


def test_storage_10k_visits(benchmark: Any, tmp_path: Path) -> None:
    """10,000 visits (fast): write time, bytes per node with and without retention, overhead."""
    _measure(tmp_path, 10_000, benchmark)


@pytest.mark.full
def test_storage_100k_visits(benchmark: Any, tmp_path: Path) -> None:
    """100,000 visits: the figure of PAPER §1.4's storage argument."""
    _measure(tmp_path, 100_000, benchmark)


def test_append_block_of_100(benchmark: Any, tmp_path: Path) -> None:
    """One block of 100 IDs committed atomically (bodies already stored), synchronous=FULL."""
    store = NodeStore(tmp_path / "node.db")
    blocks = list(_visit_blocks(5_000, SEED + 1))
    for txs, _ in blocks:
        store.put_transactions(txs)
    heights = iter(range(len(blocks)))
    prev = [bytes(32)]

    def append_next() -> None:
        h = next(heights)
        txs, ts = blocks[h]
        block_id = sha256(b"block %d" % h)
        store.append_block(h, block_id, prev[0], b"h" * 120, BLOCKER, ts, [t.tx_id for t in txs])
        prev[0] = block_id

    benchmark.pedantic(append_next, rounds=len(blocks), iterations=1)
    assert store.block_count() == len(blocks) and store.check_consistency() == []
    store.close()


def test_snapshot_walk_chain(benchmark: Any, tmp_path: Path) -> None:
    """A verifier's walk over every block and its IDs in one snapshot (10,000 visits)."""
    store = write_visits(tmp_path / "node.db", 10_000)

    def walk() -> int:
        with store.snapshot() as snap:
            return sum(len(b.tx_ids) for b in snap.iter_blocks())

    assert benchmark(walk) == 10_000
    store.close()
