"""Schema creation, pragmas, versioning and the migration hook of the node store."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from storekit import append, make_tx

from medbench.store import MigrationError, NodeStore, NotANodeStore, SchemaTooNew
from medbench.store import schema as store_schema
from medbench.store.schema import Migration


def test_fresh_store_has_version_wal_and_foreign_keys(tmp_path: Path) -> None:
    with NodeStore(tmp_path / "n.db") as s:
        assert s.schema_found == 0  # created just now
        assert s.schema_version == store_schema.SCHEMA_VERSION
        conn = s._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA application_id").fetchone()[0] == store_schema.APPLICATION_ID
        assert conn.execute("PRAGMA page_size").fetchone()[0] == NodeStore.PAGE_SIZE
    with NodeStore(tmp_path / "n.db", synchronous="NORMAL") as s:
        assert s.schema_found == store_schema.SCHEMA_VERSION
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 1


def test_reopen_keeps_data(tmp_path: Path) -> None:
    txs = [make_tx(i) for i in range(5)]
    with NodeStore(tmp_path / "n.db") as s:
        s.put_transactions(txs)
        append(s, 0, txs)
    with NodeStore(tmp_path / "n.db") as s:
        assert s.tip() is not None and s.tip()[0] == 0  # type: ignore[index]
        assert dict(s.transactions) == {t.tx_id: t for t in txs}


def test_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    with NodeStore(tmp_path / "n.db") as s:
        s._conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNew) as info:
        NodeStore(tmp_path / "n.db")
    assert info.value.found == 99 and info.value.supported == store_schema.SCHEMA_VERSION
    assert "newer" in str(info.value)


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "other.db")
    conn.execute("CREATE TABLE patients (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(NotANodeStore):
        NodeStore(tmp_path / "other.db")
    conn = sqlite3.connect(tmp_path / "other.db")
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_schema")] == ["patients"]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # left as it was
    conn.execute("PRAGMA application_id = 7")
    conn.close()
    with pytest.raises(NotANodeStore, match="application_id"):
        NodeStore(tmp_path / "other.db")
    (tmp_path / "junk.db").write_bytes(b"this is not a database file at all" * 200)
    with pytest.raises(NotANodeStore):
        NodeStore(tmp_path / "junk.db")


class _V2(NodeStore):
    """A future schema version 2 that adds a table, with its migration from 1."""

    SCHEMA_VERSION = 2

    @staticmethod
    def _v1_to_v2(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")

    MIGRATIONS: ClassVar[Mapping[int, Migration]] = {1: _v1_to_v2}
    SCHEMA_DDL = store_schema.SCHEMA_V1 + ";CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)"


def test_migration_hook_upgrades_in_place(tmp_path: Path) -> None:
    txs = [make_tx(i) for i in range(3)]
    with NodeStore(tmp_path / "n.db") as s:
        s.put_transactions(txs)
    with _V2(tmp_path / "n.db") as s:
        assert s.schema_found == 1 and s.schema_version == 2
        s._conn.execute("INSERT INTO notes (text) VALUES ('migrated')")
        assert len(s.transactions) == 3
    # the old code now refuses the upgraded file
    with pytest.raises(SchemaTooNew):
        NodeStore(tmp_path / "n.db")
    with _V2(tmp_path / "fresh.db") as s:  # a fresh file gets version 2 directly
        assert s.schema_found == 0 and s.schema_version == 2


def test_missing_migration_step_rolls_back(tmp_path: Path) -> None:
    class _V3(NodeStore):
        SCHEMA_VERSION = 3
        MIGRATIONS: ClassVar[Mapping[int, Migration]] = {1: _V2._v1_to_v2}  # none from 2 to 3

    with NodeStore(tmp_path / "n.db"):
        pass
    with pytest.raises(MigrationError):
        _V3(tmp_path / "n.db")
    with NodeStore(tmp_path / "n.db") as s:  # still version 1, notes table not half-created
        assert s.schema_version == 1
        names = {r[0] for r in s._conn.execute("SELECT name FROM sqlite_schema")}
        assert "notes" not in names


def test_bad_synchronous_is_refused(tmp_path: Path) -> None:
    from medbench.store import InvalidInput

    with pytest.raises(InvalidInput):
        NodeStore(tmp_path / "n.db", synchronous="OFF")  # type: ignore[arg-type]
