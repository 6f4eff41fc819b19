"""Storage accounting: categories sum to the file, dbstat and the estimate agree, overhead."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from storekit import make_tx

from medbench.hashing import sha256
from medbench.store import NodeStore, StoredTransaction
from medbench.store.accounting import DB_CATEGORIES, dbstat_available, storage_report
from medbench.store.blobs import BlobStore, Tier

Chain = Callable[[int, int], list[StoredTransaction]]


def _fill(store: NodeStore, chain: Chain) -> list[StoredTransaction]:
    txs = chain(40, 25)
    store.append_log_batch([(s, 0, b"commit record " * 10) for s in range(200)])
    store.save_checkpoint(128, sha256(b"state"), b"certificate " * 20)
    return txs


def test_categories_sum_to_the_file(store: NodeStore, chain: Chain, tmp_path: Path) -> None:
    _fill(store, chain)
    blobs = BlobStore(tmp_path / "blobs")
    online = blobs.put(b"a" * 10_000)
    blobs.put(b"b" * 5000)
    gone = blobs.put(b"c" * 700)
    store.put_blob_record(gone, producer=b"other", produced_at_us=0, size=700)
    blobs.delete(gone)  # as if archived: known to the store, held offline
    blobs.move(online, Tier.NEARLINE)
    r = storage_report(store, blobs)
    page_size = store._conn.execute("PRAGMA page_size").fetchone()[0]
    page_count = store._conn.execute("PRAGMA page_count").fetchone()[0]
    assert sum(r.categories[c] for c in DB_CATEGORIES) == page_size * page_count
    assert r.categories["wal"] == 0  # checkpointed first
    assert os.path.getsize(store.path) == page_size * page_count
    assert r.disk_bytes == sum(r.categories.values()) == r.as_dict()["total"]
    assert r.categories["blobs_nearline"] >= 10_000 and r.categories["blobs_online"] >= 5000
    assert all(
        r.categories[c] > 0 for c in ("blocks", "transaction_bodies", "indexes", "consensus_log")
    )
    assert r.categories["transaction_bodies"] > r.categories["blocks"]
    canonical = (
        sum(t.size for t in store.iter_transactions())
        + sum(len(b.header) + 32 * len(b.tx_ids) for b in store.iter_blocks())
        + sum(len(e.record) for e in store.read_log())
        + len(b"certificate " * 20)
    )
    assert r.db_canonical_bytes == canonical
    assert r.canonical_bytes == canonical + 15_000
    assert r.overhead == r.disk_bytes / r.canonical_bytes
    assert r.counts["transactions"] == 1000 and r.counts["memberships"] == 1000
    assert r.counts["blobs_online"] == 1 and r.counts["blobs_nearline"] == 1
    assert r.counts["blobs_offline"] == 1 and r.counts["blobs_offline_bytes"] == 700


def test_dbstat_is_used_and_the_estimate_is_close(store: NodeStore, chain: Chain) -> None:
    _fill(store, chain)
    assert dbstat_available(store._conn)  # this SQLite has ENABLE_DBSTAT_VTAB
    exact = storage_report(store)
    guess = storage_report(store, use_dbstat=False)
    assert (exact.method, guess.method) == ("dbstat", "estimate")
    assert sum(exact.categories.values()) == sum(guess.categories.values())
    for c in ("transaction_bodies", "blocks", "indexes"):
        assert guess.categories[c] == pytest.approx(exact.categories[c], rel=0.35), c


def test_eviction_shows_as_free_pages_until_vacuum(store: NodeStore) -> None:
    txs = [make_tx(i) for i in range(3000)]
    store.put_transactions(txs)
    before = storage_report(store)
    store.evict_transactions([t.tx_id for t in txs[:2000]], now_us=1)
    after = storage_report(store)
    assert after.categories["free"] > 0
    assert after.categories["transaction_bodies"] < before.categories["transaction_bodies"]
    store.vacuum()
    packed = storage_report(store)
    assert packed.categories["free"] == 0 and packed.disk_bytes < after.disk_bytes


def test_empty_store(tmp_path: Path) -> None:
    with NodeStore(tmp_path / "n.db") as s:
        r = storage_report(s)
        assert r.canonical_bytes == 0 and r.overhead == float("inf")
        assert r.disk_bytes > 0
