"""Storage accounting for one node: bytes on disk by category, and the storage overhead.

Theory of operation
-------------------
The figure docs/medical-chain.md §1.4 argues about is what each node must keep: every node keeps all
blocks (small: IDs only), its own institution's bodies and blobs, and others' only while recent.
This module measures it for a :class:`NodeStore` (and optionally its :class:`BlobStore`) as a dict
of bytes per category:

``blocks``               headers and membership (the ``blocks`` and ``block_tx`` b-trees);
``transaction_bodies``   the ``transactions`` table (bodies plus their column copies);
``indexes``              every separate index b-tree (ID lookups, "which block holds X", ...);
``consensus_log``        the PBFT log and checkpoints;
``metadata``             schema, blob metadata, eviction marks;
``free``                 free pages inside the file (reused by later writes; ``VACUUM`` drops them);
``wal``                  the write-ahead log file;
``blobs_online``, ``blobs_nearline``  space allocated to blob files per local tier.

*How the split is measured.* When SQLite was built with the ``dbstat`` virtual table (checked via
``PRAGMA compile_options`` and by querying it), the size of every b-tree is exact: the sum of
``pgsize`` over its pages, overflow pages included. Otherwise the split is *estimated*: each
b-tree's payload is computed with ``length()`` over its columns plus a per-row cell overhead,
turned into pages at an assumed 85 % fill (at least one page per b-tree), and the pages in use
(page count minus free pages) are shared out in proportion to those guesses; the total is exact,
the split is typically within 10-30 % per category. :attr:`StorageReport.method` says which
was used.

*Overhead* = bytes on disk / canonical bytes stored, where canonical bytes are what the store was
given: transaction bodies, block headers, 32 bytes per block-membership ID, consensus-log records,
checkpoint certificates and blob contents. IDs that are hashes of a stored body are not counted as
canonical, so indexes and ID columns are overhead.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from medbench.store.blobs import BlobStore, Tier
from medbench.store.node_store import NodeStore

CATEGORY_OF_TABLE = {
    "transactions": "transaction_bodies",
    "blocks": "blocks",
    "block_tx": "blocks",
    "consensus_log": "consensus_log",
    "checkpoints": "consensus_log",
}
"""Tables with a category of their own; every other table (schema, blobs, evicted) is metadata."""

DB_CATEGORIES = ("blocks", "transaction_bodies", "indexes", "consensus_log", "metadata", "free")

# Estimated payload of each b-tree, per row: the columns' bytes plus ~ record header and cell
# pointer/key overhead (SQLite file format §2.3: 2-byte cell pointer, varint sizes, header).
_PAYLOAD_SQL = {
    "transactions": "SELECT coalesce(sum(length(id) + length(producer) + size + 24), 0) "
    "FROM transactions",
    "blocks": "SELECT coalesce(sum(length(id) + length(prev_id) + length(header) "
    "+ length(blocker) + 24), 0) FROM blocks",
    "block_tx": "SELECT coalesce(sum(length(tx_id) + 12), 0) FROM block_tx",
    "consensus_log": "SELECT coalesce(sum(length(digest) + length(record) + 24), 0) "
    "FROM consensus_log",
    "checkpoints": "SELECT coalesce(sum(length(state_digest) + length(certificate) + 16), 0) "
    "FROM checkpoints",
    "blobs": "SELECT coalesce(sum(length(digest) + length(producer) + 20), 0) FROM blobs",
    "evicted": "SELECT coalesce(sum(length(id) + 24), 0) FROM evicted",
}
_FILL = 0.85
"""Typical b-tree page fill assumed by the estimate (SQLite leaves splits ~2/3 to full)."""
_INDEX_PAYLOAD_SQL = {
    # each index entry holds the key plus the rowid / primary key of the table row
    "transactions": "SELECT coalesce(sum(length(id) + 12), 0) FROM transactions",
    "blocks": "SELECT coalesce(sum(length(id) + 12), 0) FROM blocks",
    "block_tx": "SELECT coalesce(sum(length(tx_id) + 14), 0) FROM block_tx",
    "consensus_log": "SELECT coalesce(count(*) * 18, 0) FROM consensus_log",
}


@dataclass(frozen=True, slots=True)
class StorageReport:
    """Bytes per category for one node, and what they store."""

    categories: dict[str, int]
    """Category -> bytes (see the module docstring)."""
    disk_bytes: int
    """Database file + WAL + blob files as allocated on disk."""
    canonical_bytes: int
    """What the store was given (see the module docstring)."""
    db_canonical_bytes: int
    """Canonical bytes held in the database (all but blob contents)."""
    method: str
    """``"dbstat"`` (exact split) or ``"estimate"`` (see the module docstring)."""
    counts: dict[str, int] = field(default_factory=dict)
    """Row counts: transactions, blocks, memberships, log records, evicted bodies, blob files per
    local tier, and ``blobs_offline`` / ``blobs_offline_bytes``: blobs recorded in the store but
    held only by the archive (not on this node's disk)."""

    @property
    def db_bytes(self) -> int:
        """Database file plus WAL."""
        return sum(self.categories[c] for c in (*DB_CATEGORIES, "wal"))

    @property
    def overhead(self) -> float:
        """Bytes on disk / canonical bytes stored (``inf`` for an empty store)."""
        return self.disk_bytes / self.canonical_bytes if self.canonical_bytes else float("inf")

    @property
    def db_overhead(self) -> float:
        """The database's share: (file + WAL) / canonical bytes held in it."""
        return self.db_bytes / self.db_canonical_bytes if self.db_canonical_bytes else float("inf")

    def as_dict(self) -> dict[str, int]:
        """Categories plus ``total`` (= :attr:`disk_bytes`) as one flat dict of bytes."""
        return {**self.categories, "total": self.disk_bytes}


def dbstat_available(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has the ``dbstat`` virtual table (compile option and a live probe)."""
    options = {str(r[0]) for r in conn.execute("PRAGMA compile_options")}
    if "ENABLE_DBSTAT_VTAB" not in options:
        return False
    try:
        conn.execute("SELECT count(*) FROM dbstat WHERE aggregate = TRUE").fetchone()
    except sqlite3.Error:
        return False
    return True


def _category(kind: str, table: str) -> str:
    if kind == "index":
        return "indexes"
    return CATEGORY_OF_TABLE.get(table, "metadata")


def _split_dbstat(conn: sqlite3.Connection) -> dict[str, int]:
    kinds = {
        str(r[0]): (str(r[1]), str(r[2]))
        for r in conn.execute("SELECT name, type, tbl_name FROM sqlite_schema")
    }
    out = dict.fromkeys(DB_CATEGORIES, 0)
    for name, pgsize in conn.execute("SELECT name, pgsize FROM dbstat WHERE aggregate = TRUE"):
        kind, table = kinds.get(str(name), ("table", str(name)))
        out[_category(kind, table)] += int(pgsize)
    return out


def _split_estimate(conn: sqlite3.Connection, page_size: int, used: int) -> dict[str, int]:
    # Pages per b-tree ~ payload / (page size x typical fill), and at least one page each
    # (the root); page 1 holds the schema. The guesses are then scaled to the pages in use.
    pages: dict[str, float] = dict.fromkeys(DB_CATEGORIES, 0.0)
    pages["metadata"] = 1.0
    per_page = page_size * _FILL
    for kind, table in conn.execute("SELECT type, tbl_name FROM sqlite_schema WHERE rootpage > 0"):
        sql = (_INDEX_PAYLOAD_SQL if kind == "index" else _PAYLOAD_SQL).get(str(table))
        payload = int(conn.execute(sql).fetchone()[0]) if sql else 0
        pages[_category(str(kind), str(table))] += max(1.0, payload / per_page)
    total = sum(pages.values())
    out = dict.fromkeys(DB_CATEGORIES, 0)
    order = [c for c in DB_CATEGORIES if c != "free"]
    for c in order:
        out[c] = int(used * pages[c] / total) // page_size * page_size
    out["metadata"] += used - sum(out.values())  # rounding remainder
    return out


def _scalar(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def storage_report(
    store: NodeStore,
    blobs: BlobStore | None = None,
    *,
    checkpoint: bool = True,
    use_dbstat: bool | None = None,
) -> StorageReport:
    """Measure a node's storage (see the module docstring).

    ``checkpoint`` folds the WAL into the file first so the file size equals its pages;
    ``use_dbstat=False`` forces the estimate (``None`` uses dbstat when available).
    """
    if checkpoint:
        store.checkpoint_wal()
    with store.snapshot() as snap:
        conn = snap._conn
        page_size = _scalar(conn, "PRAGMA page_size")
        page_count = _scalar(conn, "PRAGMA page_count")
        free_pages = _scalar(conn, "PRAGMA freelist_count")
        exact = dbstat_available(conn) if use_dbstat is None else use_dbstat
        if exact:
            cats = _split_dbstat(conn)
        else:
            cats = _split_estimate(conn, page_size, (page_count - free_pages) * page_size)
        cats["free"] = free_pages * page_size
        db_canonical = (
            _scalar(conn, "SELECT coalesce(sum(size), 0) FROM transactions")
            + _scalar(conn, "SELECT coalesce(sum(length(header)), 0) FROM blocks")
            + 32 * _scalar(conn, "SELECT count(*) FROM block_tx")
            + _scalar(conn, "SELECT coalesce(sum(length(record)), 0) FROM consensus_log")
            + _scalar(conn, "SELECT coalesce(sum(length(certificate)), 0) FROM checkpoints")
        )
        counts = {
            "transactions": _scalar(conn, "SELECT count(*) FROM transactions"),
            "blocks": _scalar(conn, "SELECT count(*) FROM blocks"),
            "memberships": _scalar(conn, "SELECT count(*) FROM block_tx"),
            "log_records": _scalar(conn, "SELECT count(*) FROM consensus_log"),
            "evicted": _scalar(conn, "SELECT count(*) FROM evicted"),
        }
    path = Path(store.path)
    wal = Path(f"{path}-wal")
    cats["wal"] = wal.stat().st_size if wal.exists() else 0
    db_file = path.stat().st_size
    blob_content = 0
    for tier in (Tier.ONLINE, Tier.NEARLINE):
        key = f"blobs_{tier.name.lower()}"
        if blobs is None:
            cats[key] = 0
            continue
        files, size, disk = blobs.usage(tier)
        cats[key] = disk
        counts[key] = files
        blob_content += size
    if blobs is not None:
        # blobs this node knows of but holds in no local tier: at the authority (offline tier)
        offline = [r for r in store.blob_records() if blobs.tier_of(r.digest) is None]
        counts["blobs_offline"] = len(offline)
        counts["blobs_offline_bytes"] = sum(r.size for r in offline)
    disk = db_file + cats["wal"] + cats["blobs_online"] + cats["blobs_nearline"]
    return StorageReport(
        categories=cats,
        disk_bytes=disk,
        canonical_bytes=db_canonical + blob_content,
        db_canonical_bytes=db_canonical,
        method="dbstat" if exact else "estimate",
        counts=counts,
    )
