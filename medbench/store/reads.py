"""Read access to a node store: the read API, ``Mapping`` views and consistent snapshots.

Theory of operation
-------------------
:class:`_Reads` holds every read of the node store, written against one ``sqlite3`` connection.
:class:`~medbench.store.node_store.NodeStore` uses it on its writer connection (each read is one
statement or one short read transaction, so it sees the latest commit), and :class:`Snapshot`
uses it on a read-only connection held inside one read transaction: with the WAL journal that
reader sees exactly one commit for as long as it lives, whatever the writer does meanwhile, and
does not block the writer. Long walks (:meth:`_Reads.iter_blocks`, ...) fetch in batches; inside a
snapshot the batches all come from the same commit.

:class:`TransactionMap` and :class:`BodyMap` are read-only ``collections.abc.Mapping`` views keyed
by transaction ID, so a chain verifier from ``medbench.ledger`` can take a store as it would a
dict. Keys that are not 32-byte IDs are simply absent (``KeyError`` / ``False``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from medbench.hashing import sha256
from medbench.store.errors import LogCorrupted
from medbench.store.rows import (
    ID_SIZE,
    BlobRecord,
    Checkpoint,
    LogEntry,
    StoredBlock,
    StoredTransaction,
    check_id,
    check_int,
)

_CHUNK = 500
"""IDs per ``IN (...)`` query: far below SQLite's variable limit, large enough to be cheap."""
_ITER_BATCH = 256
"""Rows fetched per read transaction when the store object itself iterates."""


def _chunks(items: Sequence[bytes], n: int = _CHUNK) -> Iterator[Sequence[bytes]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _tx_from_row(row: Sequence[Any]) -> StoredTransaction:
    return StoredTransaction(row[0], row[1], row[2], row[3], row[4])


def _block_from_row(row: Sequence[Any], tx_ids: Iterable[bytes]) -> StoredBlock:
    return StoredBlock(row[0], row[1], row[2], row[3], row[4], row[5], tuple(tx_ids))


class _Reads:
    """The read API, shared by :class:`NodeStore` and :class:`Snapshot` (one connection each)."""

    _conn: sqlite3.Connection

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction (or the one already open, for a snapshot)."""
        conn = self._conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    # -- transactions ----------------------------------------------------------------------------
    def get_transaction(self, tx_id: bytes) -> StoredTransaction | None:
        """The transaction with ID ``tx_id`` or ``None`` (malformed ID: :class:`InvalidInput`)."""
        tx_id = check_id(tx_id, "transaction ID")
        row = self._conn.execute(
            "SELECT id, kind, timestamp_us, producer, body FROM transactions WHERE id = ?",
            (tx_id,),
        ).fetchone()
        return None if row is None else _tx_from_row(row)

    def get_transactions(self, tx_ids: Iterable[bytes]) -> dict[bytes, StoredTransaction]:
        """The stored ones among ``tx_ids`` (absent IDs are simply missing from the result)."""
        ids = [check_id(t, "transaction ID") for t in tx_ids]
        out: dict[bytes, StoredTransaction] = {}
        with self._read() as conn:
            for part in _chunks(ids):
                for row in conn.execute(
                    "SELECT id, kind, timestamp_us, producer, body FROM transactions "
                    f"WHERE id IN ({_marks(len(part))})",
                    tuple(part),
                ):
                    out[row[0]] = _tx_from_row(row)
        return out

    def has_transaction(self, tx_id: bytes) -> bool:
        """Whether a body with this ID is stored here."""
        tx_id = check_id(tx_id, "transaction ID")
        row = self._conn.execute("SELECT 1 FROM transactions WHERE id = ?", (tx_id,)).fetchone()
        return row is not None

    def transaction_count(self) -> int:
        """Number of transaction bodies stored here."""
        return int(self._conn.execute("SELECT count(*) FROM transactions").fetchone()[0])

    def iter_transactions(self) -> Iterator[StoredTransaction]:
        """Every stored transaction, in insertion order (fetched in batches)."""
        last = 0
        while True:
            rows = self._conn.execute(
                "SELECT rowid, id, kind, timestamp_us, producer, body FROM transactions "
                "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (last, _ITER_BATCH),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _tx_from_row(row[1:])
            last = rows[-1][0]

    def iter_transaction_ids(self) -> Iterator[bytes]:
        """Every stored transaction ID, in insertion order (fetched in batches)."""
        last = 0
        while True:
            rows = self._conn.execute(
                "SELECT rowid, id FROM transactions WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (last, _ITER_BATCH * 8),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield row[1]
            last = rows[-1][0]

    @property
    def transactions(self) -> TransactionMap:
        """Read-only ``Mapping[tx_id, StoredTransaction]`` over this store (for verifiers)."""
        return TransactionMap(self)

    @property
    def bodies(self) -> BodyMap:
        """Read-only ``Mapping[tx_id, bytes]`` of canonical bodies (for verifiers)."""
        return BodyMap(self)

    def evicted_ids(self) -> dict[bytes, int]:
        """IDs whose bodies left this node by the retention policy -> when (microseconds)."""
        return {
            bytes(r[0]): int(r[1])
            for r in self._conn.execute("SELECT id, evicted_at_us FROM evicted ORDER BY id")
        }

    # -- blocks ----------------------------------------------------------------------------------
    def tip(self) -> tuple[int, bytes] | None:
        """(height, block ID) of the last block, or ``None`` on an empty chain."""
        row = self._conn.execute(
            "SELECT height, id FROM blocks ORDER BY height DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def block_count(self) -> int:
        """Number of stored blocks (the chain length L of docs/medical-chain.md §1.5)."""
        return int(self._conn.execute("SELECT count(*) FROM blocks").fetchone()[0])

    def get_block(self, height: int) -> StoredBlock | None:
        """The block at ``height`` with its IDs in order, or ``None``."""
        height = check_int(height, "height")
        with self._read() as conn:
            row = conn.execute(
                "SELECT height, id, prev_id, header, blocker, timestamp_us FROM blocks "
                "WHERE height = ?",
                (height,),
            ).fetchone()
            if row is None:
                return None
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT tx_id FROM block_tx WHERE height = ? ORDER BY position", (height,)
                )
            ]
        return _block_from_row(row, ids)

    def block_headers(self, heights: Iterable[int]) -> dict[int, bytes]:
        """Height -> stored header bytes for those of ``heights`` that are stored (one query per
        :data:`_CHUNK` heights): what a reader re-reads to see a signature filled in later."""
        hs = [check_int(h, "height") for h in heights]
        out: dict[int, bytes] = {}
        with self._read() as conn:
            for i in range(0, len(hs), _CHUNK):
                part = hs[i : i + _CHUNK]
                for h, header in conn.execute(
                    f"SELECT height, header FROM blocks WHERE height IN ({_marks(len(part))})",
                    part,
                ):
                    out[int(h)] = bytes(header)
        return out

    def block_height_of(self, block_id: bytes) -> int | None:
        """Height of the block with ID ``block_id``, or ``None``."""
        block_id = check_id(block_id, "block ID")
        row = self._conn.execute("SELECT height FROM blocks WHERE id = ?", (block_id,)).fetchone()
        return None if row is None else int(row[0])

    def block_of(self, tx_id: bytes) -> int | None:
        """Height of the block that holds transaction ``tx_id``, or ``None`` if none does."""
        tx_id = check_id(tx_id, "transaction ID")
        row = self._conn.execute("SELECT height FROM block_tx WHERE tx_id = ?", (tx_id,)).fetchone()
        return None if row is None else int(row[0])

    def iter_blocks(self, start: int = 0, stop: int | None = None) -> Iterator[StoredBlock]:
        """Blocks with ``start <= height < stop`` in height order, each with its IDs.

        Fetched in batches; inside a :class:`Snapshot` the whole walk sees one commit.
        """
        height = check_int(start, "start")
        end = None if stop is None else check_int(stop, "stop")
        while end is None or height < end:
            upper = height + _ITER_BATCH if end is None else min(end, height + _ITER_BATCH)
            with self._read() as conn:
                heads = conn.execute(
                    "SELECT height, id, prev_id, header, blocker, timestamp_us FROM blocks "
                    "WHERE height >= ? AND height < ? ORDER BY height",
                    (height, upper),
                ).fetchall()
                members: dict[int, list[bytes]] = {}
                for h, tx_id in conn.execute(
                    "SELECT height, tx_id FROM block_tx WHERE height >= ? AND height < ? "
                    "ORDER BY height, position",
                    (height, upper),
                ):
                    members.setdefault(h, []).append(tx_id)
            if not heads:
                return
            for row in heads:
                yield _block_from_row(row, members.get(row[0], ()))
            height = upper

    def iter_block_ids(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes]]:
        """(height, block ID, previous ID) for every block from ``start`` (no headers, no IDs)."""
        height = check_int(start, "start")
        while True:
            rows = self._conn.execute(
                "SELECT height, id, prev_id FROM blocks WHERE height >= ? ORDER BY height LIMIT ?",
                (height, _ITER_BATCH * 8),
            ).fetchall()
            if not rows:
                return
            for h, block_id, prev_id in rows:
                yield int(h), bytes(block_id), bytes(prev_id)
            height = rows[-1][0] + 1

    def missing_transactions(self) -> list[bytes]:
        """IDs that some block lists but whose bodies are neither here nor evicted by policy.

        These are the "lost or deleted on this node" transactions of docs/medical-chain.md §1.2, to
        be fetched from another node or the authority's archive.
        """
        return [
            bytes(r[0])
            for r in self._conn.execute(
                "SELECT b.tx_id FROM block_tx AS b "
                "WHERE NOT EXISTS (SELECT 1 FROM transactions AS t WHERE t.id = b.tx_id) "
                "AND NOT EXISTS (SELECT 1 FROM evicted AS e WHERE e.id = b.tx_id) "
                "ORDER BY b.height, b.position"
            )
        ]

    def check_consistency(self) -> list[str]:
        """Problems with the chain as stored (empty list = consistent).

        Checks: heights contiguous from 0, every previous ID is the block below's ID, membership
        positions contiguous from 0 for every block, every listed ID held here or evicted by
        policy, every consensus-log record's bytes against its digest, and ``PRAGMA
        integrity_check`` / ``foreign_key_check``.
        """
        problems: list[str] = []
        with self._read() as conn:
            integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                problems.extend(f"integrity_check: {m}" for m in integrity)
            for row in conn.execute("PRAGMA foreign_key_check"):
                problems.append(f"foreign_key_check: {tuple(row)}")
            expected_h = 0
            prev: bytes | None = None
            for h, block_id, prev_id in conn.execute(
                "SELECT height, id, prev_id FROM blocks ORDER BY height"
            ):
                if h != expected_h:
                    problems.append(f"height gap: expected {expected_h}, found {h}")
                if prev is not None and prev_id != prev:
                    problems.append(f"block {h} does not link to block {h - 1}")
                prev, expected_h = block_id, h + 1
            for h, n, top in conn.execute(
                "SELECT height, count(*), max(position) FROM block_tx GROUP BY height"
            ):
                if top != n - 1:
                    problems.append(f"block {h}: positions not contiguous ({n} IDs, max {top})")
        for e in self.corrupt_log_entries():
            problems.append(
                f"consensus log record #{e.index} (sequence {e.sequence}) does not match its digest"
            )
        missing = self.missing_transactions()
        if missing:
            problems.append(
                f"{len(missing)} listed transaction(s) missing, e.g. {missing[0].hex()}"
            )
        return problems

    # -- consensus log and checkpoints ------------------------------------------------------------
    def read_log(self, from_sequence: int = 0) -> list[LogEntry]:
        """Consensus-log entries with ``sequence >= from_sequence``, by (sequence, append order).

        Raises :class:`~medbench.store.errors.LogCorrupted` if any record's bytes do not match
        the digest stored with it (:meth:`corrupt_log_entries` lists them without raising).
        """
        entries = self._log_entries(from_sequence)
        bad = [(e.index, e.sequence) for e in entries if sha256(e.record) != e.digest]
        if bad:
            raise LogCorrupted(bad)
        return entries

    def corrupt_log_entries(self) -> list[LogEntry]:
        """The consensus-log records whose bytes do not match their stored digest."""
        return [e for e in self._log_entries(0) if sha256(e.record) != e.digest]

    def _log_entries(self, from_sequence: int) -> list[LogEntry]:
        from_sequence = check_int(from_sequence, "from_sequence")
        return [
            LogEntry(int(r[0]), int(r[1]), int(r[2]), bytes(r[3]), bytes(r[4]))
            for r in self._conn.execute(
                "SELECT idx, sequence, view, digest, record FROM consensus_log "
                "WHERE sequence >= ? ORDER BY sequence, idx",
                (from_sequence,),
            )
        ]

    def load_checkpoint(self, sequence: int | None = None) -> Checkpoint | None:
        """The checkpoint at ``sequence`` (or the highest one when ``None``), or ``None``."""
        if sequence is None:
            row = self._conn.execute(
                "SELECT sequence, state_digest, certificate FROM checkpoints "
                "ORDER BY sequence DESC LIMIT 1"
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT sequence, state_digest, certificate FROM checkpoints WHERE sequence = ?",
                (check_int(sequence, "sequence"),),
            ).fetchone()
        return None if row is None else Checkpoint(int(row[0]), bytes(row[1]), bytes(row[2]))

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint, by sequence."""
        return [
            Checkpoint(int(r[0]), bytes(r[1]), bytes(r[2]))
            for r in self._conn.execute(
                "SELECT sequence, state_digest, certificate FROM checkpoints ORDER BY sequence"
            )
        ]

    # -- blob metadata ---------------------------------------------------------------------------
    def blob_records(self) -> list[BlobRecord]:
        """Metadata of every off-chain blob this node knows (for the retention policy)."""
        return [
            BlobRecord(bytes(r[0]), bytes(r[1]), int(r[2]), int(r[3]))
            for r in self._conn.execute(
                "SELECT digest, producer, produced_at_us, size FROM blobs ORDER BY digest"
            )
        ]


class TransactionMap(Mapping[bytes, StoredTransaction]):
    """``Mapping`` view of the stored transactions by ID (keys that are not IDs are absent)."""

    __slots__ = ("_reads",)

    def __init__(self, reads: _Reads) -> None:
        self._reads = reads

    def __getitem__(self, key: bytes) -> StoredTransaction:
        if not isinstance(key, (bytes, bytearray, memoryview)) or len(key) != ID_SIZE:
            raise KeyError(key)
        tx = self._reads.get_transaction(bytes(key))
        if tx is None:
            raise KeyError(key)
        return tx

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (bytes, bytearray, memoryview)) or len(key) != ID_SIZE:
            return False
        return self._reads.has_transaction(bytes(key))

    def __iter__(self) -> Iterator[bytes]:
        return self._reads.iter_transaction_ids()

    def __len__(self) -> int:
        return self._reads.transaction_count()


class BodyMap(Mapping[bytes, bytes]):
    """``Mapping`` view: transaction ID -> canonical body bytes."""

    __slots__ = ("_tx",)

    def __init__(self, reads: _Reads) -> None:
        self._tx = TransactionMap(reads)

    def __getitem__(self, key: bytes) -> bytes:
        return self._tx[key].body

    def __contains__(self, key: object) -> bool:
        return key in self._tx

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._tx)

    def __len__(self) -> int:
        return len(self._tx)


class Snapshot(_Reads):
    """A consistent, read-only view of a store as of one commit (see :meth:`NodeStore.snapshot`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
