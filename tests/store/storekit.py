"""Builders shared by the store tests: deterministic transactions and test chains."""

from __future__ import annotations

from typing import Any

from medbench.hashing import sha256
from medbench.store import NodeStore, StoredBlock, StoredTransaction

INSTITUTIONS = [sha256(b"institution %d" % i) for i in range(4)]
BLOCKER = sha256(b"blocker key")


def make_tx(
    i: int, *, producer: bytes = INSTITUTIONS[0], t: int | None = None
) -> StoredTransaction:
    """Transaction number ``i``: its ID is the SHA-256 of its body, like the ledger's."""
    body = b"visit record %d " % i + bytes([i % 251]) * (i % 97 + 10)
    return StoredTransaction(sha256(body), 1, i if t is None else t, producer, body)


def block_id(h: int) -> bytes:
    """The ID of block ``h`` in the test chains."""
    digest: bytes = sha256(b"block %d" % h)
    return digest


def prev_of(h: int) -> bytes:
    """The previous-block ID of block ``h`` (genesis names 32 zero bytes)."""
    return bytes(32) if h == 0 else block_id(h - 1)


def append(store: NodeStore, h: int, txs: list[StoredTransaction], **kw: Any) -> StoredBlock:
    """Append block ``h`` of the test chain holding ``txs``' IDs."""
    return store.append_block(
        h,
        block_id(h),
        prev_of(h),
        b"header %d" % h,
        BLOCKER,
        1000 + h,
        [t.tx_id for t in txs],
        **kw,
    )
