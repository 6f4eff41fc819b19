"""The gateway's store index picks up a block signature the node filled in after storing the block
(integrated mode, docs/medical-chain.md §1.5)."""

from __future__ import annotations

from pathlib import Path

from medbench.crypto.keys import Scheme, SigningKey
from medbench.crypto.sealing import EncryptionKey
from medbench.gateway.index import StoreIndex
from medbench.ledger import Block, Genesis
from medbench.store import NodeStore
from medbench.store.ledger_store import LedgerStore


def test_refresh_picks_up_a_late_signature(tmp_path: Path) -> None:
    keys = [SigningKey.generate(Scheme.ED25519, seed=bytes([i]) * 32) for i in range(4)]
    genesis = Genesis("t", Scheme.ED25519, tuple(k.public for k in keys), b"root", 1)
    path = tmp_path / "node.sqlite3"
    ledger = LedgerStore(NodeStore(path))
    ledger.append_genesis(genesis)
    b1 = Block.make(1, genesis.id, keys[1], (), 2)
    b2 = Block.make(2, b1.id, keys[2], (), 3)
    ledger.append(Block(b1.header, b"", ()))  # stored before its signature arrived
    ledger.append(b2)
    index = StoreIndex(path, EncryptionKey.generate(bytes(32)), {})
    assert index.refresh() == 2
    assert index.block(1) == Block(b1.header, b"", ()) and index.unsigned == {1: None}
    assert index.refresh() == 2 and index.block(1).signature == b""  # type: ignore[union-attr]
    assert ledger.set_signature(1, b1.signature, genesis.scheme)
    assert index.refresh() == 2
    assert index.block(1) == b1 and index.block(2) == b2 and index.unsigned == {}
    index.close()
