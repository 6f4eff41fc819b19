"""Fixtures of the store tests (builders live in ``storekit``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from storekit import append, make_tx

from medbench.store import NodeStore, StoredTransaction


@pytest.fixture
def store(tmp_path: Path) -> Iterator[NodeStore]:
    """A fresh node store in ``tmp_path``."""
    with NodeStore(tmp_path / "node.db") as s:
        yield s


@pytest.fixture
def chain(store: NodeStore) -> Callable[[int, int], list[StoredTransaction]]:
    """Fill ``store`` with ``blocks`` blocks of ``per`` transactions; return the transactions."""

    def build(blocks: int, per: int) -> list[StoredTransaction]:
        txs = [make_tx(i) for i in range(blocks * per)]
        store.put_transactions(txs)
        for h in range(blocks):
            append(store, h, txs[h * per : (h + 1) * per])
        return txs

    return build
