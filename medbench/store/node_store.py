"""One node's durable store: transactions, blocks, the consensus log and checkpoints in SQLite.

Theory of operation
-------------------
docs/medical-chain.md §1.4: each node keeps structured data (transactions, blocks) in an ordinary
relational database; blocks hold transaction IDs only and bodies live in the node's database keyed
by ID (§1.2). :class:`NodeStore` is that database for one node, on the standard library's
``sqlite3``.

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
from typing import ClassVar, Literal

from medbench.hashing import sha256
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
from medbench.store.reads import (
    Snapshot,
    _chunks,
    _marks,
    _Reads,
    _tx_from_row,
)
from medbench.store.rows import (
    INT64_MIN,
    MAX_KEY_BYTES,
    BlobRecord,
    StoredBlock,
    StoredTransaction,
    check_blob,
    check_id,
    check_int,
)


def _check_records(txs: Iterable[StoredTransaction]) -> list[StoredTransaction]:
    if isinstance(txs, (bytes, str, StoredTransaction)):
        raise InvalidInput("expected an iterable of StoredTransaction")
    batch = list(txs)
    for tx in batch:
        if not isinstance(tx, StoredTransaction):
            raise InvalidInput(f"expected StoredTransaction, got {type(tx).__name__}")
    return batch


def _check_blob_records(recs: Iterable[BlobRecord]) -> list[BlobRecord]:
    if isinstance(recs, (bytes, str, BlobRecord)):
        raise InvalidInput("expected an iterable of BlobRecord")
    out = []
    for rec in recs:
        if not isinstance(rec, BlobRecord):
            raise InvalidInput(f"expected BlobRecord, got {type(rec).__name__}")
        out.append(
            BlobRecord(
                check_id(rec.digest, "blob digest"),
                check_blob(rec.producer, "producer", max_len=MAX_KEY_BYTES),
                check_int(rec.produced_at_us, "produced_at_us", INT64_MIN),
                check_int(rec.size, "size"),
            )
        )
    return out


Synchronous = Literal["FULL", "NORMAL", "EXTRA"]


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
        self._group_depth = 0
        self._conn = _connect(self.path, read_only=False)
        try:
            schema.check_identity(self._conn)
            # Only takes effect on a new, empty file (before WAL is on): see PAGE_SIZE.
            self._conn.execute(f"PRAGMA page_size = {int(self.PAGE_SIZE)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"could not switch {self.path} to WAL (journal_mode={mode})")
            # FULL by default: a commit is on stable storage when the call returns, so the node
            # never reports committed what a power cut could take back ("Durability" above).
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
        """One write transaction: commit on success, roll back on any exception.

        Inside :meth:`group` it is a savepoint of the group's transaction instead: a refused
        write still leaves the store as it was, and nothing is on disk before the group commits.
        """
        conn = self._conn
        if self._group_depth:
            conn.execute("SAVEPOINT w")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK TO w")
                conn.execute("RELEASE w")
                raise
            conn.execute("RELEASE w")
            return
        if conn.in_transaction:
            raise StoreError("write methods are not re-entrant (a transaction is already open)")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def group(self) -> Iterator[None]:
        """Group commit: every write method called inside is one SQLite transaction, committed
        (one fsync under ``synchronous=FULL``) when the block ends, rolled back if it raises.

        A driver that persists several steps' records before sending any of their messages
        (``medbench.runtime``) pays one commit for the batch instead of one per step. Nested
        groups join the outermost one.
        """
        if self._group_depth:
            self._group_depth += 1
            try:
                yield
            finally:
                self._group_depth -= 1
            return
        conn = self._conn
        if conn.in_transaction:
            raise StoreError("a transaction is already open")
        conn.execute("BEGIN IMMEDIATE")
        self._group_depth = 1
        try:
            yield
        except BaseException:
            self._group_depth = 0
            conn.execute("ROLLBACK")
            raise
        self._group_depth = 0
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
        self,
        txs: Iterable[StoredTransaction],
        *,
        skip_identical: bool = False,
        blobs: Iterable[BlobRecord] = (),
    ) -> int:
        """Store a batch atomically; return how many were new.

        An ID already stored (or repeated in the batch) raises :class:`DuplicateTransaction` and
        nothing of the batch is written, unless ``skip_identical`` and the record is byte-equal,
        which is then skipped (a re-delivered transaction). Storing an ID that the retention policy
        had evicted brings it back (the eviction mark is dropped).

        ``blobs`` are the metadata of the attachments these transactions reference, recorded in
        the same commit (see :meth:`_insert_blob_records`), so a record and what retention needs
        to age its images never exist one without the other.
        """
        batch = _check_records(txs)
        recs = _check_blob_records(blobs)
        with self._write() as conn:
            added = self._insert_transactions(conn, batch, skip_identical)
            self._insert_blob_records(conn, recs)
            return added

    def _insert_transactions(
        self, conn: sqlite3.Connection, batch: list[StoredTransaction], skip_identical: bool
    ) -> int:
        sql = (
            "INSERT OR IGNORE INTO transactions (id, kind, timestamp_us, producer, body, size) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        )
        added = 0
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
        """Remove a body and return it (simulates local loss or a deleting attacker,
        docs/medical-chain.md §1.7).

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
        """Overwrite a body under the same ID (simulates local alteration, docs/medical-chain.md
        §1.7 attack 3)."""
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
        transactions: Iterable[StoredTransaction] = (),
        blobs: Iterable[BlobRecord] = (),
    ) -> StoredBlock:
        """Commit a block and its transaction IDs atomically; return the stored block.

        ``transactions`` (optional) are bodies to store in the same commit, e.g. a block and its
        batch arriving together: one fsync instead of two. They are stored as by
        :meth:`put_transactions` with ``skip_identical=True`` (a differing record under a stored
        ID is :class:`DuplicateTransaction`) and count for the ``require_transactions`` check;
        ``blobs`` are their attachments' metadata, as in :meth:`put_transactions`.

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
        bodies = _check_records(transactions)
        recs = _check_blob_records(blobs)
        with self._write() as conn:
            self._insert_transactions(conn, bodies, True)
            self._insert_blob_records(conn, recs)
            self._check_block(conn, block, require_transactions)
            self._insert_block_row(conn, block)
            self._insert_membership(conn, block)
        return block

    def replace_block_header(
        self, height: int, block_id: bytes, expected: bytes, header_bytes: bytes
    ) -> bool:
        """Swap the header bytes of the stored block ``(height, block_id)`` from ``expected`` to
        ``header_bytes``, atomically; False (store unchanged) if the row is not exactly that.

        A compare-and-set for :meth:`medbench.store.LedgerStore.set_signature`, which fills in a
        late blocker signature; the block ID, links and membership rows never change, and the
        caller checks that the new bytes hold the same header.
        """
        height = check_int(height, "height")
        block_id = check_id(block_id, "block ID")
        expected = check_blob(expected, "expected header")
        header_bytes = check_blob(header_bytes, "header")
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE blocks SET header = ? WHERE height = ? AND id = ? AND header = ?",
                (header_bytes, height, block_id, expected),
            )
            return cur.rowcount == 1

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
    def append_log(self, sequence: int, view: int, record: bytes) -> int:
        """Append one consensus-log record; return its append index."""
        return self.append_log_batch([(sequence, view, record)])[0]

    def append_log_batch(self, entries: Iterable[tuple[int, int, bytes]]) -> list[int]:
        """Append several records in one commit (a replica's ``Ready.persist``); return indexes.

        Each record is stored with its SHA-256, which :meth:`read_log` checks: a record changed
        on disk is refused there, never replayed (a replica restarted from a log that lost or
        altered one of its votes could vote twice).
        """
        rows = []
        for entry in entries:
            if not isinstance(entry, tuple) or len(entry) != 3:
                raise InvalidInput("a log entry is a tuple (sequence, view, record)")
            seq, view, record = entry
            record = check_blob(record, "record")
            rows.append(
                (check_int(seq, "sequence"), check_int(view, "view"), sha256(record), record)
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
    def _insert_blob_records(self, conn: sqlite3.Connection, recs: list[BlobRecord]) -> None:
        """Record attachment metadata inside the caller's write transaction.

        A digest already recorded keeps its first record: the same scan referenced again (by an
        update, or by another institution) does not re-date or re-attribute it, and a re-delivered
        block is not refused over it.
        """
        conn.executemany(
            "INSERT OR IGNORE INTO blobs (digest, producer, produced_at_us, size) "
            "VALUES (?, ?, ?, ?)",
            ((r.digest, r.producer, r.produced_at_us, r.size) for r in recs),
        )

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
