"""Group commit: several write methods, one SQLite transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from medbench.store.errors import StoreError
from medbench.store.node_store import NodeStore

D = bytes(32)


def test_group_commits_once(tmp_path: Path) -> None:
    path = tmp_path / "n.sqlite"
    with NodeStore(path) as store:
        with store.group():
            store.append_log_batch([(1, 0, b"a")])
            store.append_log(2, 0, b"b")
            store.save_checkpoint(2, D, b"cert")
            other = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:  # a second connection sees nothing of the open group yet
                assert other.execute("SELECT count(*) FROM consensus_log").fetchone()[0] == 0
            finally:
                other.close()
        with NodeStore(path) as other:
            assert [e.record for e in other.read_log()] == [b"a", b"b"]
            assert other.load_checkpoint(2) is not None


def test_group_rolls_back_on_error(tmp_path: Path) -> None:
    with NodeStore(tmp_path / "n.sqlite") as store:
        with pytest.raises(RuntimeError), store.group():
            store.append_log(1, 0, b"a")
            raise RuntimeError("crash before the commit")
        assert store.read_log() == []
        store.append_log(1, 0, b"after")  # the store is usable again
        assert [e.record for e in store.read_log()] == [b"after"]


def test_refused_write_inside_group_leaves_the_rest(tmp_path: Path) -> None:
    with NodeStore(tmp_path / "n.sqlite") as store:
        with store.group():
            store.append_log(1, 0, b"kept")
            with pytest.raises(StoreError):
                store.append_log(-1, 0, b"refused")  # invalid sequence: its savepoint rolls back
            store.save_checkpoint(3, D, b"c")
            with pytest.raises(StoreError):
                store.save_checkpoint(3, bytes([1]) * 32, b"c")  # conflict
        assert [e.record for e in store.read_log()] == [b"kept"]


def test_nested_groups_join(tmp_path: Path) -> None:
    with NodeStore(tmp_path / "n.sqlite") as store:
        with store.group():
            with store.group():
                store.append_log(1, 0, b"x")
            assert store._conn.in_transaction
        assert not store._conn.in_transaction
        assert len(store.read_log()) == 1
