"""The ledger over a real SQLite node store: round trip, tamper localisation, repair from a peer."""

from __future__ import annotations

from pathlib import Path

import pytest

from medbench import codec
from medbench.ledger.chain import FindingKind, repair, verify_chain
from medbench.store import NodeStore
from medbench.store.ledger_store import LedgerStore
from medbench.workload.generator import WorkloadConfig, build_chain, generate


@pytest.fixture(scope="module")
def chain():  # type: ignore[no-untyped-def]
    workload = generate(WorkloadConfig(patients=4, visits=12), seed=7)
    genesis, blocks = build_chain(workload, block_size=8)
    return workload, genesis, blocks


def _node(path: Path, chain) -> LedgerStore:  # type: ignore[no-untyped-def]
    workload, genesis, blocks = chain
    store = LedgerStore(NodeStore(path))
    store.append_genesis(genesis)
    by_id = {t.id: t for t in workload.transactions}
    for block in blocks:
        store.append(block, [by_id[i] for i in block.tx_ids])
    return store


def test_chain_round_trips_through_sqlite(tmp_path: Path, chain) -> None:  # type: ignore[no-untyped-def]
    _, genesis, blocks = chain
    store = _node(tmp_path / "a.sqlite3", chain)
    assert store.genesis() == genesis
    assert store.blocks() == blocks
    assert len(store) == sum(len(b.tx_ids) for b in blocks)
    report = verify_chain(store.genesis(), store.blocks(), store.bodies)
    assert report.ok, report.findings
    assert store.store.check_consistency() == []


def test_deleted_and_altered_bodies_are_localised_and_repaired_from_a_peer(
    tmp_path: Path,
    chain,  # type: ignore[no-untyped-def]
) -> None:
    _, genesis, blocks = chain
    local = _node(tmp_path / "local.sqlite3", chain)
    peer = _node(tmp_path / "peer.sqlite3", chain)
    lost, altered = blocks[0].tx_ids[2], blocks[1].tx_ids[5]
    del local[lost]
    fields = codec.decode(local.store.get_transaction(altered).body)  # type: ignore[union-attr]
    fields[1] = fields[1] + b" (edited)"  # the content: the recomputed ID no longer matches
    local.store.tamper_transaction(altered, codec.encode(fields))

    report = verify_chain(genesis, local.blocks(), local.bodies)
    assert not report.ok
    where = {(f.height, f.tx_index, f.tx_id): f.kind for f in report.findings}
    assert where[(1, 2, lost)] == FindingKind.TRANSACTION_MISSING
    assert where[(2, 5, altered)] == FindingKind.BODY_ALTERED

    result = repair(genesis, local.blocks(), local, [peer])
    assert set(result.restored) == {lost, altered}
    assert result.complete and result.report is not None and result.report.ok
    assert verify_chain(genesis, local.blocks(), local.bodies).ok


def test_a_late_signature_is_filled_in_once_and_only_if_it_verifies(tmp_path: Path, chain) -> None:  # type: ignore[no-untyped-def]
    from medbench.ledger import Block

    workload, genesis, blocks = chain
    store = LedgerStore(NodeStore(tmp_path / "u.sqlite3"))
    store.append_genesis(genesis)
    by_id = {t.id: t for t in workload.transactions}
    for block in blocks:  # every block stored before its signature arrived
        store.append(Block(block.header, b"", block.tx_ids), [by_id[i] for i in block.tx_ids])
    b = blocks[0]
    signer = next(v for v in workload.validators if v.public == b.header.blocker)
    other = next(v for v in workload.validators if v.public != b.header.blocker)
    scheme = genesis.scheme
    assert not store.set_signature(1, other.sign(b.id), scheme)  # not the blocker's
    assert not store.set_signature(1, signer.sign(blocks[1].id), scheme)  # another block's
    assert not store.set_signature(1, bytes(64), scheme)
    assert not store.set_signature(1, b"x" * 600, scheme)  # hostile length: refused, no raise
    assert not store.set_signature(len(blocks) + 1, b.signature, scheme)  # no such block
    assert not store.set_signature(0, b.signature, scheme)  # the genesis has no signature
    assert store.block(1) == Block(b.header, b"", b.tx_ids)
    assert store.set_signature(1, b.signature, scheme)
    assert store.block(1) == b
    # never overwritten, not even by another valid signature of the blocker (Ed25519 is
    # deterministic, so re-signing gives the same bytes: the stored row is left alone)
    assert not store.set_signature(1, signer.sign(b.id), scheme)
    assert store.blocks()[0] == b and store.store.check_consistency() == []
    report = verify_chain(genesis, store.blocks(), store.bodies)
    assert report.ok and {f.kind for f in report.findings} <= {FindingKind.UNSIGNED_TIP}
