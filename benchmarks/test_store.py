"""Benchmarks of the node store (docs/medical-chain.md §1.4): storage per node for N visits, and
write speed.

Run: ``PYTHONPATH=. python -m pytest benchmarks/test_store.py --benchmark-only -s`` (add ``-m
"not full"`` to skip the 100,000-visit case). Each storage case prints one line and puts its
figures in ``benchmark.extra_info``.

The traffic is the project's own workload generator (:func:`medbench.workload.generator.generate`):
real signed transactions — registrations, FHIR visit records signed by staff and institution,
sealed associations, grants, queries, tombstones — spread over two years, with image attachments
referenced by hash. One node (institution 0 of 4) stores it as a replica does, through
:class:`~medbench.store.ledger_store.LedgerStore`: each block of 100 IDs commits with its bodies
and its attachments' metadata in one SQLite transaction (``synchronous=FULL``), and the images
go to its blob store, online. Figures:

* ``bytes_by_category`` — the node keeping everything: blocks, transaction bodies, indexes,
  metadata, free pages, WAL, blobs per tier;
* ``retention_bytes_by_category`` — the same node after the paper's retention policy with the
  defaults (:class:`~medbench.store.retention.RetentionPolicy`: others' bodies evicted and their
  images near-line after 183 days, offline after 730 — at the health authority, which here is an
  in-memory archive serving the workload's own bytes), then ``VACUUM``;
* ``overhead`` / ``retention_overhead`` — bytes on disk / canonical bytes held, required < 1.5.

Images are smaller than the generator's default (median 8 KiB instead of 128 KiB) so the 10,000
visit case fits in ``make bench-check``; their share of the bytes is reported, not hidden.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from medbench.ledger import Block, Genesis
from medbench.store import NodeStore, StoredTransaction
from medbench.store.accounting import StorageReport, storage_report
from medbench.store.blobs import BlobStore
from medbench.store.errors import BlobNotFound, TransactionNotFound
from medbench.store.ledger_store import LedgerStore, blob_records_of, stored
from medbench.store.retention import DAY_US, RetentionPolicy, apply_retention, keep_body
from medbench.workload.generator import Workload, WorkloadConfig, build_chain, generate

SEED = 20190801
BLOCK_SIZE = 100
SPAN_US = 730 * DAY_US
TX_PER_VISIT = 2.65
"""Expected transactions per visit of CONFIG: record + association + 0.3 grant + 0.3 query +
0.05 delete (registrations come on top)."""
OVERHEAD_LIMIT = 1.5
CONFIG = WorkloadConfig(
    institutions=4,
    staff_per_institution=5,
    independent_workers=2,
    patients=200,
    image_probability=0.3,
    image_median_bytes=8 * 1024,
    image_sigma=1.0,
    max_image_bytes=256 * 1024,
)


@functools.cache
def workload(visits: int) -> tuple[Workload, Genesis, tuple[Block, ...]]:
    """The generated traffic of ``visits`` visits over about two years, packed into blocks."""
    gap = int(SPAN_US / (visits * TX_PER_VISIT))
    wl = generate(replace(CONFIG, visits=visits, mean_gap_us=gap), seed=SEED)
    genesis, blocks = build_chain(wl, block_size=BLOCK_SIZE)
    return wl, genesis, tuple(blocks)


class WorkloadArchive:
    """The health authority's copy of everything, served from the workload (no disk)."""

    def __init__(self, wl: Workload) -> None:
        self._txs = {t.id: t for t in wl.transactions}
        self._images = {ref.digest: ref for ref in wl.images}

    def fetch_blob(self, digest: bytes) -> bytes:
        """Archive protocol: the image bytes, regenerated from their seed."""
        ref = self._images.get(digest)
        if ref is None:
            raise BlobNotFound(digest)
        return ref.payload()

    def fetch_transaction(self, tx_id: bytes) -> StoredTransaction:
        """Archive protocol: the store row of the transaction."""
        tx = self._txs.get(tx_id)
        if tx is None:
            raise TransactionNotFound(tx_id)
        return stored(tx)


def write_node(
    root: Path, visits: int, archive: WorkloadArchive | None = None, *, images: bool = True
) -> tuple[LedgerStore, BlobStore]:
    """One node's store after the whole workload, written block by block as a replica does
    (``images=False`` skips the blob files, for cases that only read the chain)."""
    wl, genesis, blocks = workload(visits)
    by_id = {t.id: t for t in wl.transactions}
    refs = {ref.digest: ref for ref in wl.images} if images else {}
    ledger = LedgerStore(NodeStore(root / "node.db"))
    blobs = BlobStore(root / "blobs", archive=archive, fsync=False)
    ledger.append_genesis(genesis)
    for block in blocks:
        txs = [by_id[i] for i in block.tx_ids]
        for tx in txs:  # the producing node's files arrive with its records
            for rec in blob_records_of(tx):
                if rec.digest in refs:  # bytes regenerated from the seed: not all held in memory
                    blobs.put(refs[rec.digest].payload())
        ledger.append(block, txs)
    return ledger, blobs


def _summary(label: str, visits: int, report: StorageReport) -> str:
    c = report.categories
    mib = 1 << 20
    return (
        f"{label:>9s} {visits:>7d} visits: total {report.disk_bytes / mib:7.1f} MiB = "
        f"blocks {c['blocks'] / mib:.2f} + bodies {c['transaction_bodies'] / mib:.1f} + "
        f"indexes {c['indexes'] / mib:.2f} + meta {c['metadata'] / mib:.2f} + "
        f"free {c['free'] / mib:.2f} + wal {c['wal'] / mib:.2f} + "
        f"blobs online {c['blobs_online'] / mib:.1f} / near-line {c['blobs_nearline'] / mib:.1f}"
        f" (offline {report.counts.get('blobs_offline', 0)} at the authority); "
        f"overhead {report.overhead:.3f}x (db {report.db_overhead:.3f}x)"
    )


def _measure(tmp_path: Path, visits: int, benchmark: Any, capsys: Any) -> None:
    wl, _genesis, blocks = workload(visits)
    archive = WorkloadArchive(wl)
    own = wl.institutions[0].key
    counter = iter(range(1_000))
    nodes: list[tuple[LedgerStore, BlobStore]] = []

    def setup() -> tuple[tuple[Path], dict[str, Any]]:
        d = tmp_path / f"run{next(counter)}"
        d.mkdir()
        return (d,), {}

    def run(root: Path) -> None:
        nodes.append(write_node(root, visits, archive))

    benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    ledger, blobs = nodes[-1]
    store = ledger.store
    full = storage_report(store, blobs)
    assert full.counts["transactions"] == len(wl.transactions)
    assert full.counts["blocks"] == len(blocks) + 1  # and the genesis
    assert full.counts["blobs_online"] == len(wl.images) > 0
    assert store.check_consistency() == []

    end_us = wl.transactions[-1].timestamp_us
    done = apply_retention(store, blobs, RetentionPolicy(), own_institution=own, now_us=end_us)
    assert done.refused == []
    store.vacuum()
    kept = storage_report(store, blobs)
    assert store.check_consistency() == []  # evicted bodies are accounted for, not missing
    expected_evicted = sum(
        not keep_body(
            RetentionPolicy(),
            own_institution=own,
            producer=t.public_keys[-1],
            timestamp_us=t.timestamp_us,
            now_us=end_us,
        )
        for t in wl.transactions
    )
    assert done.bodies_evicted == kept.counts["evicted"] == expected_evicted > 0
    assert kept.counts["blocks"] == full.counts["blocks"]  # every node keeps every block
    moved = sum(done.blob_moves.values())
    assert moved > 0 and kept.counts["blobs_nearline"] + kept.counts["blobs_offline"] == moved

    lines = [_summary("full", visits, full), _summary("retained", visits, kept)]
    with capsys.disabled():
        print()
        for line in lines:
            print(f"store: {line}")
    benchmark.extra_info.update(
        {
            "visits": visits,
            "transactions": full.counts["transactions"],
            "blocks": full.counts["blocks"],
            "images": len(wl.images),
            "canonical_bytes": full.canonical_bytes,
            "bytes_total": full.disk_bytes,
            "bytes_per_visit": round(full.disk_bytes / visits, 1),
            "bytes_by_category": full.as_dict(),
            "overhead": round(full.overhead, 4),
            "db_overhead": round(full.db_overhead, 4),
            "accounting_method": full.method,
            "retention_bytes_total": kept.disk_bytes,
            "retention_bytes_by_category": kept.as_dict(),
            "retention_bodies_kept": kept.counts["transactions"],
            "retention_bodies_evicted": done.bodies_evicted,
            "retention_blob_moves": {f"{a}->{b}": n for (a, b), n in done.blob_moves.items()},
            "retention_fraction_of_full": round(kept.disk_bytes / full.disk_bytes, 4),
            "retention_overhead": round(kept.overhead, 4),
        }
    )
    assert full.overhead < OVERHEAD_LIMIT, full.as_dict()
    assert kept.overhead < OVERHEAD_LIMIT, kept.as_dict()
    assert kept.disk_bytes < full.disk_bytes
    store.close()


def test_storage_10k_visits(benchmark: Any, tmp_path: Path, capsys: Any) -> None:
    """10,000 generated visits: write time, bytes per node with and without retention, overhead."""
    _measure(tmp_path, 10_000, benchmark, capsys)


@pytest.mark.full
def test_storage_100k_visits(benchmark: Any, tmp_path: Path, capsys: Any) -> None:
    """100,000 generated visits: the figure of docs/medical-chain.md §1.4's storage argument."""
    _measure(tmp_path, 100_000, benchmark, capsys)


def test_append_block_of_100(benchmark: Any, tmp_path: Path) -> None:
    """One block of 100 generated transactions committed with its bodies (synchronous=FULL)."""
    wl, genesis, blocks = workload(10_000)
    by_id = {t.id: t for t in wl.transactions}
    ledger = LedgerStore(NodeStore(tmp_path / "node.db"))
    ledger.append_genesis(genesis)
    heights = iter(range(len(blocks)))

    def append_next() -> None:
        block = blocks[next(heights)]
        ledger.append(block, [by_id[i] for i in block.tx_ids])

    rounds = min(len(blocks), 200)
    benchmark.pedantic(append_next, rounds=rounds, iterations=1)
    # Under --benchmark-disable (a smoke run) pedantic calls the function once.
    appended = next(heights)
    assert ledger.store.block_count() == appended + 1 and ledger.store.check_consistency() == []
    ledger.store.close()


def test_snapshot_walk_chain(benchmark: Any, tmp_path: Path) -> None:
    """A verifier's walk over every block and its IDs in one snapshot (10,000 visits)."""
    ledger, _blobs = write_node(tmp_path, 10_000, images=False)
    wl, _genesis, _blocks = workload(10_000)
    store = ledger.store

    def walk() -> int:
        with store.snapshot() as snap:
            return sum(len(b.tx_ids) for b in snap.iter_blocks(start=1))

    assert benchmark(walk) == len(wl.transactions)
    store.close()
