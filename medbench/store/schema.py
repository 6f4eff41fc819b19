"""The node store's SQLite schema, its version and the migration hook.

Theory of operation
-------------------
The schema version lives in ``PRAGMA user_version`` and the file is tagged with
``PRAGMA application_id`` = :data:`APPLICATION_ID`, so opening some other SQLite file fails clearly
instead of adding tables to it. Both pragmas are written inside the same transaction as the DDL
(SQLite's DDL is transactional), so a crash during creation or migration leaves either the old
schema or the new one, never a mixture.

:func:`prepare` is called on every open:

* version 0 and no tables: a fresh file; create :data:`SCHEMA_VERSION` directly;
* version == the code's: nothing to do;
* version < the code's: run ``migrations[v]`` (each upgrades ``v`` to ``v + 1``) in one
  transaction, then set the new version; a missing step is a :class:`MigrationError`;
* version > the code's: :class:`SchemaTooNew` — an old binary must not write a newer layout.

Layout choices (they set the storage overhead measured in ``benchmarks/test_store.py``):

* ``transactions`` is a rowid table with a unique index on ``id``: bodies of 1-2 KB fit the table
  leaves (a WITHOUT ROWID table would spill every body above ~1 KB into overflow pages);
* ``block_tx`` (block membership) is WITHOUT ROWID keyed by (height, position), with a unique index
  on ``tx_id`` that enforces "one block per transaction ID" and answers "which block holds X";
* ``block_tx`` has no foreign key to ``transactions`` on purpose: a node may lose or evict a body
  (docs/medical-chain.md §1.4 retention, §1.2 "a deleted transaction can be fetched from other
  nodes") while the chain keeps naming it. It does reference ``blocks(height)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping

from medbench.store.errors import MigrationError, NotANodeStore, SchemaTooNew

APPLICATION_ID = 0x4D454443  # "MEDC"
SCHEMA_VERSION = 1

Migration = Callable[[sqlite3.Connection], None]
"""Upgrades the schema by one version, inside the caller's transaction."""

SCHEMA_V1 = """
CREATE TABLE transactions (
    id           BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    kind         INTEGER NOT NULL,
    timestamp_us INTEGER NOT NULL,
    producer     BLOB    NOT NULL,
    body         BLOB    NOT NULL,
    size         INTEGER NOT NULL CHECK (size = length(body))
);
CREATE TABLE blocks (
    height       INTEGER PRIMARY KEY CHECK (height >= 0),
    id           BLOB    NOT NULL UNIQUE CHECK (length(id) = 32),
    prev_id      BLOB    NOT NULL CHECK (length(prev_id) = 32),
    header       BLOB    NOT NULL,
    blocker      BLOB    NOT NULL,
    timestamp_us INTEGER NOT NULL
);
CREATE TABLE block_tx (
    height   INTEGER NOT NULL REFERENCES blocks(height) ON DELETE CASCADE,
    position INTEGER NOT NULL CHECK (position >= 0),
    tx_id    BLOB    NOT NULL CHECK (length(tx_id) = 32),
    PRIMARY KEY (height, position)
) WITHOUT ROWID;
CREATE UNIQUE INDEX block_tx_by_id ON block_tx (tx_id);
CREATE TABLE consensus_log (
    idx      INTEGER PRIMARY KEY,
    sequence INTEGER NOT NULL CHECK (sequence >= 0),
    view     INTEGER NOT NULL CHECK (view >= 0),
    digest   BLOB    NOT NULL CHECK (length(digest) = 32),
    record   BLOB    NOT NULL
);
CREATE INDEX consensus_log_by_sequence ON consensus_log (sequence);
CREATE TABLE checkpoints (
    sequence     INTEGER PRIMARY KEY CHECK (sequence >= 0),
    state_digest BLOB    NOT NULL CHECK (length(state_digest) = 32),
    certificate  BLOB    NOT NULL
);
CREATE TABLE blobs (
    digest         BLOB    NOT NULL PRIMARY KEY CHECK (length(digest) = 32),
    producer       BLOB    NOT NULL,
    produced_at_us INTEGER NOT NULL,
    size           INTEGER NOT NULL CHECK (size >= 0)
) WITHOUT ROWID;
CREATE TABLE evicted (
    id             BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    timestamp_us   INTEGER NOT NULL,
    size           INTEGER NOT NULL,
    evicted_at_us  INTEGER NOT NULL
) WITHOUT ROWID;
"""
"""Version 1. ``evicted`` remembers bodies that left this node by the retention policy (they are
fetchable from the authority's archive), so a verifier can tell "archived" from "lost"; it is kept
lean (no producer key) because a node evicts most of the chain's bodies."""

MIGRATIONS: Mapping[int, Migration] = {}
"""``MIGRATIONS[v]`` upgrades version ``v`` to ``v + 1``. Empty while version 1 is the only one."""


def _user_tables(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchone()
    return int(row[0])


def check_identity(conn: sqlite3.Connection) -> None:
    """Refuse (:class:`NotANodeStore`) a file that is not a node store and not new, before the
    store changes anything in it (not even the journal mode)."""
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        if app_id == APPLICATION_ID:
            return
        if app_id != 0:
            raise NotANodeStore(f"application_id {app_id:#x} is not a medbench node store")
        if int(conn.execute("PRAGMA user_version").fetchone()[0]) != 0 or _user_tables(conn):
            raise NotANodeStore("the file holds tables but is not a medbench node store")
    except sqlite3.DatabaseError as exc:  # e.g. "file is not a database"
        raise NotANodeStore(f"not an SQLite node store: {exc}") from None


def prepare(
    conn: sqlite3.Connection,
    *,
    version: int = SCHEMA_VERSION,
    create: str = SCHEMA_V1,
    migrations: Mapping[int, Migration] = MIGRATIONS,
) -> int:
    """Create or migrate the schema on ``conn`` (autocommit mode); return the version found.

    ``version``, ``create`` and ``migrations`` default to this module's; tests pass others to
    exercise the migration hook. ``create`` is the DDL of ``version`` itself (for fresh files).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        if found == 0 and app_id == 0:
            if _user_tables(conn):
                raise NotANodeStore("the file holds tables but is not a medbench node store")
            for statement in create.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {int(version)}")
        elif app_id != APPLICATION_ID:
            raise NotANodeStore(f"application_id {app_id:#x} is not a medbench node store")
        elif found > version:
            raise SchemaTooNew(found, version)
        elif found < version:
            for v in range(found, version):
                step = migrations.get(v)
                if step is None:
                    raise MigrationError(f"no migration registered from schema version {v}")
                step(conn)
            conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
