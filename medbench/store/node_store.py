"""One node's durable store: transactions, blocks, the consensus log and checkpoints in SQLite.

Theory of operation
-------------------
PAPER §1.4: each node keeps structured data (transactions, blocks) in an ordinary relational
database; blocks hold transaction IDs only and bodies live in the node's database keyed by ID
(§1.2). :class:`NodeStore` is that database for one node, on the standard library's ``sqlite3``.

*Interface.* The store works on bytes: the ledger hands it canonical transaction bodies and block
headers plus the few columns it indexes (IDs, height, previous ID, producer, timestamps); the PBFT
replica hands it opaque log records and checkpoint certificates. It checks what it can check
without knowing the ledger: ID lengths, heights, the previous-ID link, one block per transaction
ID, and (optionally) that every listed ID has a body here.

*Atomicity.* Every write method is one SQLite transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``):
:meth:`NodeStore.append_block` commits the block row and all its ID rows together, a batch of
transactions goes in whole or not at all, and any refusal (a typed error from
:mod:`medbench.store.errors`) or exception rolls back first. A refused call leaves the store as it
was.

*Durability.* The journal is WAL and ``synchronous=FULL`` by default: in WAL mode FULL fsyncs the
WAL at every commit, so once a write method has returned its data survives a process kill *and* an
OS crash or power cut. ``NORMAL`` would fsync only at checkpoints: it survives a process kill but a
power cut may roll back the last commits. A PBFT replica persists before it sends (see
:mod:`medbench.node`), and a replica that "forgets" a block it already voted for or reported to a
client would contradict itself, so what the node reports committed must be on stable storage:
FULL. ``synchronous="NORMAL"`` is accepted for simulations that model only process crashes.

*Readers.* :meth:`NodeStore.snapshot` opens a separate read-only connection inside one read
transaction: thanks to WAL it sees the state of one commit, however many writes follow, and it does
not block the writer. Reads through the store object itself see the latest commit; each such read
is one statement or one short read transaction.

*Schema.* :mod:`medbench.store.schema` (``PRAGMA user_version``, a migration hook, a clear
:class:`~medbench.store.errors.SchemaTooNew` for files from a newer medbench).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal

from medbench.store import schema
from medbench.store.errors import (
    AlreadyInBlock,
    CheckpointConflict,
    DuplicateBlockId,
    DuplicateTransaction,
    InvalidInput,
    MissingTransactions,
    PreviousIdMismatch,
    StoreError,
    TransactionNotFound,
    WrongHeight,
)
from medbench.store.records import (
    ID_SIZE,
    INT64_MIN,
    MAX_KEY_BYTES,
    BlobRecord,
    Checkpoint,
    LogEntry,
    StoredBlock,
    StoredTransaction,
    check_blob,
    check_id,
    check_int,
)

_CHUNK = 500
"""IDs per ``IN (...)`` query: far below SQLite's variable limit, large enough to be cheap."""
_ITER_BATCH = 256
"""Rows fetched per read transaction when the store object itself iterates."""

Synchronous = Literal["FULL", "NORMAL", "EXTRA"]


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
        """Number of stored blocks (the chain length L of PAPER §1.5)."""
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

        These are the "lost or deleted on this node" transactions of PAPER §1.2, to be fetched
        from another node or the authority's archive.
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
        policy, and ``PRAGMA integrity_check`` / ``foreign_key_check``.
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
        missing = self.missing_transactions()
        if missing:
            problems.append(
                f"{len(missing)} listed transaction(s) missing, e.g. {missing[0].hex()}"
            )
        return problems

    # -- consensus log and checkpoints ------------------------------------------------------------
    def read_log(self, from_sequence: int = 0) -> list[LogEntry]:
        """Consensus-log entries with ``sequence >= from_sequence``, by (sequence, append order)."""
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


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rwc'}"
    # isolation_level=None: autocommit; every transaction below is an explicit BEGIN ... COMMIT.
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class NodeStore(_Reads):
    """The SQLite store of one node (see the module docstring for the guarantees).

    Open with ``NodeStore(path)`` (creates the file) and close with :meth:`close` or a ``with``
    block. One ``NodeStore`` object is the node's single writer; any number of
    :meth:`snapshot` readers may run beside it.
    """

    SCHEMA_VERSION: ClassVar[int] = schema.SCHEMA_VERSION
    SCHEMA_DDL: ClassVar[str] = schema.SCHEMA_V1
    MIGRATIONS: ClassVar[Mapping[int, schema.Migration]] = schema.MIGRATIONS
    PAGE_SIZE: ClassVar[int] = 16384
    """Page size of new files. Bodies of 1-2 KB are a third to half of a 4 KiB page, so whole rows
    leave much of each page empty; 16 KiB pages hold ~10 rows and keep the fill near full
    (5,000 log-normal bodies of median 1.3 KB: storage overhead 1.42x at 4 KiB, 1.27x at 8 KiB,
    1.21x at 16 KiB, 1.20x at 32 KiB)."""

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise InvalidInput(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self._conn = _connect(self.path, read_only=False)
        try:
            # Only takes effect on a new, empty file (before WAL is on): see PAGE_SIZE.
            self._conn.execute(f"PRAGMA page_size = {int(self.PAGE_SIZE)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"could not switch {self.path} to WAL (journal_mode={mode})")
            self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self.schema_found = schema.prepare(
                self._conn,
                version=self.SCHEMA_VERSION,
                create=self.SCHEMA_DDL,
                migrations=self.MIGRATIONS,
            )
        except BaseException:
            self._conn.close()
            raise

    # -- life cycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the writer connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> NodeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (``PRAGMA user_version``)."""
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """A read-only view fixed at the latest commit, for as long as the ``with`` block lasts."""
        conn = _connect(self.path, read_only=True)
        try:
            conn.execute("BEGIN")
            # A WAL read transaction starts at its first read: take the snapshot now.
            conn.execute("SELECT count(*) FROM blocks").fetchone()
            yield Snapshot(conn)
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: commit on success, roll back on any exception."""
        conn = self._conn
        if conn.in_transaction:
            raise StoreError("write methods are not re-entrant (a transaction is already open)")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def checkpoint_wal(self) -> None:
        """Fold the WAL into the main file and truncate it (for accounting and backups)."""
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def vacuum(self) -> None:
        """Rebuild the file without free pages (after a large eviction; needs 2x the space)."""
        self.checkpoint_wal()
        self._conn.execute("VACUUM")
        self.checkpoint_wal()

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check`` rows (``["ok"]`` when the file is sound)."""
        return [str(r[0]) for r in self._conn.execute("PRAGMA integrity_check")]

    # -- transactions ----------------------------------------------------------------------------
    def put_transaction(self, tx: StoredTransaction, *, skip_identical: bool = False) -> bool:
        """Store one transaction; return whether it was new (see :meth:`put_transactions`)."""
        return self.put_transactions([tx], skip_identical=skip_identical) == 1

    def put_transactions(
        self, txs: Iterable[StoredTransaction], *, skip_identical: bool = False
    ) -> int:
        """Store a batch atomically; return how many were new.

        An ID already stored (or repeated in the batch) raises :class:`DuplicateTransaction` and
        nothing of the batch is written, unless ``skip_identical`` and the record is byte-equal,
        which is then skipped (a re-delivered transaction). Storing an ID that the retention policy
        had evicted brings it back (the eviction mark is dropped).
        """
        batch = list(txs)
        for tx in batch:
            if not isinstance(tx, StoredTransaction):
                raise InvalidInput(f"expected StoredTransaction, got {type(tx).__name__}")
        sql = (
            "INSERT OR IGNORE INTO transactions (id, kind, timestamp_us, producer, body, size) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        )
        added = 0
        with self._write() as conn:
            for tx in batch:
                cur = conn.execute(
                    sql, (tx.tx_id, tx.kind, tx.timestamp_us, tx.producer, tx.body, tx.size)
                )
                if cur.rowcount == 1:
                    added += 1
                    continue
                row = conn.execute(
                    "SELECT id, kind, timestamp_us, producer, body FROM transactions WHERE id = ?",
                    (tx.tx_id,),
                ).fetchone()
                identical = row is not None and _tx_from_row(row) == tx
                if not (identical and skip_identical):
                    raise DuplicateTransaction(tx.tx_id, identical)
            for part in _chunks([tx.tx_id for tx in batch]):
                conn.execute(f"DELETE FROM evicted WHERE id IN ({_marks(len(part))})", tuple(part))
        return added

    def delete_transaction(self, tx_id: bytes) -> StoredTransaction:
        """Remove a body and return it (simulates local loss or a deleting attacker, PAPER §1.7).

        The chain still lists the ID, so :meth:`missing_transactions` reports it. Put the returned
        record back with :meth:`restore_transaction`.
        """
        tx_id = check_id(tx_id, "transaction ID")
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, kind, timestamp_us, producer, body FROM transactions WHERE id = ?",
                (tx_id,),
            ).fetchone()
            if row is None:
                raise TransactionNotFound(tx_id)
            conn.execute("DELETE FROM transactions WHERE id = ?", (tx_id,))
        return _tx_from_row(row)

    def restore_transaction(self, tx: StoredTransaction) -> bool:
        """Put back a lost or evicted body (from :meth:`delete_transaction`, a peer or the archive).

        Returns whether it was absent; an identical copy already here is fine, a different one
        with the same ID is :class:`DuplicateTransaction`. Verifying that ``tx`` is genuine (its
        recomputed ID) is the ledger's job before calling this.
        """
        return self.put_transaction(tx, skip_identical=True)

    def tamper_transaction(self, tx_id: bytes, body: bytes) -> None:
        """Overwrite a body under the same ID (simulates local alteration, PAPER §1.7 attack 3)."""
        tx_id = check_id(tx_id, "transaction ID")
        body = check_blob(body, "body")
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE transactions SET body = ?, size = ? WHERE id = ?", (body, len(body), tx_id)
            )
            if cur.rowcount != 1:
                raise TransactionNotFound(tx_id)

    def evict_transactions(self, tx_ids: Iterable[bytes], *, now_us: int) -> int:
        """Drop bodies that the retention policy moved off this node; remember them as evicted.

        Returns how many were removed (IDs not stored here are skipped). The caller (see
        :mod:`medbench.store.retention`) must first make sure the archive holds them.
        """
        ids = [check_id(t, "transaction ID") for t in tx_ids]
        now_us = check_int(now_us, "now_us", INT64_MIN)
        removed = 0
        with self._write() as conn:
            for part in _chunks(ids):
                q = tuple(part)
                conn.execute(
                    "INSERT OR REPLACE INTO evicted "
                    "(id, timestamp_us, size, evicted_at_us) "
                    "SELECT id, timestamp_us, size, ? FROM transactions "
                    f"WHERE id IN ({_marks(len(q))})",
                    (now_us, *q),
                )
                cur = conn.execute(f"DELETE FROM transactions WHERE id IN ({_marks(len(q))})", q)
                removed += cur.rowcount
        return removed

    # -- blocks ----------------------------------------------------------------------------------
    def append_block(
        self,
        height: int,
        block_id: bytes,
        prev_id: bytes,
        header_bytes: bytes,
        blocker: bytes,
        timestamp: int,
        tx_ids: Sequence[bytes],
        *,
        require_transactions: bool = True,
    ) -> StoredBlock:
        """Commit a block and its transaction IDs atomically; return the stored block.

        Refuses, before writing and with the store unchanged:

        * :class:`InvalidInput` — malformed arguments (ID lengths, a repeated ID, types);
        * :class:`WrongHeight` — ``height`` is not tip + 1 (0 on an empty chain);
        * :class:`PreviousIdMismatch` — ``prev_id`` is not the ID of the block at ``height - 1``
          (the genesis block's ``prev_id`` is whatever the ledger chose);
        * :class:`DuplicateBlockId` — another block already has ``block_id``;
        * :class:`AlreadyInBlock` — some ID is already in an earlier block;
        * :class:`MissingTransactions` — some ID has no body here (only if
          ``require_transactions``; a node that evicted or lost bodies still follows the chain).
        """
        block = StoredBlock(
            height, block_id, prev_id, header_bytes, blocker, timestamp, tuple(tx_ids)
        )
        with self._write() as conn:
            self._check_block(conn, block, require_transactions)
            self._insert_block_row(conn, block)
            self._insert_membership(conn, block)
        return block

    def _check_block(
        self, conn: sqlite3.Connection, block: StoredBlock, require_transactions: bool
    ) -> None:
        tip = conn.execute("SELECT height, id FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
        expected = 0 if tip is None else int(tip[0]) + 1
        if block.height != expected:
            raise WrongHeight(expected, block.height)
        if tip is not None and block.prev_id != tip[1]:
            raise PreviousIdMismatch(block.height, bytes(tip[1]), block.prev_id)
        row = conn.execute("SELECT height FROM blocks WHERE id = ?", (block.block_id,)).fetchone()
        if row is not None:
            raise DuplicateBlockId(block.block_id, int(row[0]))
        where: dict[bytes, int] = {}
        present: set[bytes] = set()
        for part in _chunks(block.tx_ids):
            q = tuple(part)
            for tx_id, h in conn.execute(
                f"SELECT tx_id, height FROM block_tx WHERE tx_id IN ({_marks(len(q))})", q
            ):
                where[bytes(tx_id)] = int(h)
            if require_transactions:
                present.update(
                    bytes(r[0])
                    for r in conn.execute(
                        f"SELECT id FROM transactions WHERE id IN ({_marks(len(q))})", q
                    )
                )
        if where:
            raise AlreadyInBlock(where)
        if require_transactions:
            missing = [t for t in block.tx_ids if t not in present]
            if missing:
                raise MissingTransactions(missing)

    def _insert_block_row(self, conn: sqlite3.Connection, block: StoredBlock) -> None:
        conn.execute(
            "INSERT INTO blocks (height, id, prev_id, header, blocker, timestamp_us) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                block.height,
                block.block_id,
                block.prev_id,
                block.header,
                block.blocker,
                block.timestamp_us,
            ),
        )

    def _insert_membership(self, conn: sqlite3.Connection, block: StoredBlock) -> None:
        conn.executemany(
            "INSERT INTO block_tx (height, position, tx_id) VALUES (?, ?, ?)",
            ((block.height, i, t) for i, t in enumerate(block.tx_ids)),
        )

    # -- consensus log and checkpoints ------------------------------------------------------------
    def append_log(self, sequence: int, view: int, digest: bytes, record: bytes) -> int:
        """Append one consensus-log record; return its append index."""
        return self.append_log_batch([(sequence, view, digest, record)])[0]

    def append_log_batch(self, entries: Iterable[tuple[int, int, bytes, bytes]]) -> list[int]:
        """Append several records in one commit (a replica's ``Ready.persist``); return indexes."""
        rows = []
        for entry in entries:
            if not isinstance(entry, tuple) or len(entry) != 4:
                raise InvalidInput("a log entry is a tuple (sequence, view, digest, record)")
            seq, view, digest, record = entry
            rows.append(
                (
                    check_int(seq, "sequence"),
                    check_int(view, "view"),
                    check_id(digest, "digest"),
                    check_blob(record, "record"),
                )
            )
        out = []
        with self._write() as conn:
            for row in rows:
                cur = conn.execute(
                    "INSERT INTO consensus_log (sequence, view, digest, record) "
                    "VALUES (?, ?, ?, ?)",
                    row,
                )
                assert cur.lastrowid is not None
                out.append(int(cur.lastrowid))
        return out

    def truncate_log_below(self, sequence: int) -> int:
        """Delete log records with ``sequence`` below the argument (garbage collection after a
        stable checkpoint, Castro & Liskov §4.3); return how many were deleted."""
        sequence = check_int(sequence, "sequence")
        with self._write() as conn:
            cur = conn.execute("DELETE FROM consensus_log WHERE sequence < ?", (sequence,))
        return int(cur.rowcount)

    def save_checkpoint(self, sequence: int, state_digest: bytes, certificate: bytes) -> None:
        """Store a checkpoint; saving the same one again is a no-op, and a later certificate for
        the same (sequence, digest) replaces the earlier; a different digest is
        :class:`CheckpointConflict`."""
        sequence = check_int(sequence, "sequence")
        state_digest = check_id(state_digest, "state digest")
        certificate = check_blob(certificate, "certificate")
        with self._write() as conn:
            row = conn.execute(
                "SELECT state_digest FROM checkpoints WHERE sequence = ?", (sequence,)
            ).fetchone()
            if row is not None and bytes(row[0]) != state_digest:
                raise CheckpointConflict(sequence)
            conn.execute(
                "INSERT OR REPLACE INTO checkpoints (sequence, state_digest, certificate) "
                "VALUES (?, ?, ?)",
                (sequence, state_digest, certificate),
            )

    def delete_checkpoints_below(self, sequence: int) -> int:
        """Drop checkpoints older than ``sequence``; return how many."""
        sequence = check_int(sequence, "sequence")
        with self._write() as conn:
            cur = conn.execute("DELETE FROM checkpoints WHERE sequence < ?", (sequence,))
        return int(cur.rowcount)

    # -- blob metadata ---------------------------------------------------------------------------
    def put_blob_record(
        self, digest: bytes, *, producer: bytes, produced_at_us: int, size: int
    ) -> None:
        """Record who produced an off-chain blob and when (idempotent for the same values)."""
        rec = BlobRecord(
            check_id(digest, "blob digest"),
            check_blob(producer, "producer", max_len=MAX_KEY_BYTES),
            check_int(produced_at_us, "produced_at_us", INT64_MIN),
            check_int(size, "size"),
        )
        with self._write() as conn:
            row = conn.execute(
                "SELECT producer, produced_at_us, size FROM blobs WHERE digest = ?", (rec.digest,)
            ).fetchone()
            if row is not None:
                if (bytes(row[0]), int(row[1]), int(row[2])) != (
                    rec.producer,
                    rec.produced_at_us,
                    rec.size,
                ):
                    raise InvalidInput(f"blob {rec.digest.hex()[:16]} already recorded differently")
                return
            conn.execute(
                "INSERT INTO blobs (digest, producer, produced_at_us, size) VALUES (?, ?, ?, ?)",
                (rec.digest, rec.producer, rec.produced_at_us, rec.size),
            )

    # -- archive role ----------------------------------------------------------------------------
    def fetch_transaction(self, tx_id: bytes) -> StoredTransaction:
        """Archive protocol: the stored transaction or :class:`TransactionNotFound`."""
        tx = self.get_transaction(tx_id)
        if tx is None:
            raise TransactionNotFound(bytes(tx_id))
        return tx
