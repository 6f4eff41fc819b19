"""The retention policy end to end at the ledger level (docs/medical-chain.md §1.4).

A node of institution A stores the whole chain of a seeded workload (signed transactions, blocks,
image attachments); everything is synced to the health authority. After the default policy runs,
other institutions' bodies and images have left the node's online tier, A's have not, the chain
still verifies through the archive-backed view, and every image is still fetchable by hash.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medbench.ledger import Block, FindingKind, Genesis, verify_chain
from medbench.ledger.transaction import Transaction
from medbench.store import NodeStore
from medbench.store.archive import ArchiveBackedTransactions, AuthorityArchive
from medbench.store.blobs import BlobStore, Tier
from medbench.store.ledger_store import LedgerStore, blob_records_of, stored
from medbench.store.retention import DAY_US, RetentionPolicy, apply_retention
from medbench.workload.generator import Workload, WorkloadConfig, build_chain, generate

CONFIG = WorkloadConfig(
    institutions=3,
    staff_per_institution=2,
    independent_workers=1,
    patients=5,
    visits=40,
    image_probability=0.6,
    image_median_bytes=4096,
    max_image_bytes=16384,
    mean_gap_us=2 * DAY_US,  # the workload spans about a year: ages on both sides of 183 days
)


@dataclass
class Node:
    wl: Workload
    genesis: Genesis
    blocks: list[Block]
    ledger: LedgerStore
    blobs: BlobStore
    authority: AuthorityArchive
    own: bytes
    producer_of: dict[bytes, bytes]  # image digest -> producing institution (or worker)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    wl = generate(CONFIG, seed=31)
    genesis, blocks = build_chain(wl, block_size=10)
    authority = AuthorityArchive(
        NodeStore(tmp_path / "authority.db"), BlobStore(tmp_path / "authority", fsync=False)
    )
    ledger = LedgerStore(NodeStore(tmp_path / "node.db", synchronous="NORMAL"))
    blobs = BlobStore(tmp_path / "node", archive=authority, fsync=False)
    ledger.append_genesis(genesis)
    by_id = {t.id: t for t in wl.transactions}
    for block in blocks:
        ledger.append(block, [by_id[i] for i in block.tx_ids])
    authority.ingest_transactions(stored(t) for t in wl.transactions)
    for ref in wl.images:  # the producing node's files reach this node and the authority
        assert blobs.put(ref.payload()) == ref.digest == authority.ingest_blob(ref.payload())
    producer_of = {r.digest: r.producer for t in wl.transactions for r in blob_records_of(t)}
    yield Node(wl, genesis, blocks, ledger, blobs, authority, wl.institutions[0].key, producer_of)
    ledger.store.close()
    authority.store.close()


def _end(wl: Workload) -> int:
    return wl.transactions[-1].timestamp_us


def _old_foreign(n: Node, now: int, age: int = 183 * DAY_US) -> set[bytes]:
    return {
        t.id
        for t in n.wl.transactions
        if t.public_keys[-1] != n.own and now - t.timestamp_us >= age
    }


def test_records_carry_their_attachments_metadata(node: Node) -> None:
    recs = {r.digest: r for r in node.ledger.store.blob_records()}
    assert set(recs) == {ref.digest for ref in node.wl.images} and len(recs) >= 10
    adds = {t.id: t for t in node.wl.transactions if blob_records_of(t)}
    for tx in adds.values():
        for r in blob_records_of(tx):
            assert recs[r.digest].producer == tx.public_keys[-1]  # the institution, not the staff
            assert recs[r.digest].produced_at_us == tx.timestamp_us
    sizes = {ref.digest: ref.size for ref in node.wl.images}
    assert all(recs[d].size == sizes[d] for d in recs)


def test_default_policy_retires_other_institutions_data_and_chain_still_verifies(
    node: Node,
) -> None:
    assert RetentionPolicy().evict_bodies  # the paper's policy is the default
    now = _end(node.wl) + 30 * DAY_US
    report = apply_retention(
        node.ledger.store, node.blobs, RetentionPolicy(), own_institution=node.own, now_us=now
    )
    assert report.refused == []
    doomed = _old_foreign(node, now)
    assert 0 < len(doomed) < len(node.wl.transactions)
    assert report.bodies_evicted == len(doomed)
    assert set(node.ledger.store.evicted_ids()) == doomed
    assert set(node.ledger) == {t.id for t in node.wl.transactions} - doomed
    own_ids = {t.id for t in node.wl.transactions if t.public_keys[-1] == node.own}
    assert own_ids and own_ids <= set(node.ledger)  # the node keeps all its institution produced

    # against local bodies only, eviction looks like loss, localised to the evicted IDs...
    local = verify_chain(node.genesis, node.blocks, node.ledger.bodies, policy=node.wl.policy)
    assert local.kinds() == {FindingKind.TRANSACTION_MISSING}
    assert {f.tx_id for f in local.findings} == doomed
    # ...and through the archive-backed view the chain verifies end to end
    view = node.ledger.verifiable_bodies(node.authority)
    report_v = verify_chain(node.genesis, node.blocks, view, policy=node.wl.policy)
    assert report_v.ok, [str(f) for f in report_v.findings]
    assert view.fetched == len(doomed)  # type: ignore[attr-defined]
    rows = ArchiveBackedTransactions(node.ledger.store.transactions, node.authority)
    assert verify_chain(node.genesis, node.blocks, rows, policy=node.wl.policy).ok

    # images: own institution's online; others' older than 183 days near-line; all fetchable
    recs = {r.digest: r for r in node.ledger.store.blob_records()}
    for ref in node.wl.images:
        rec = recs[ref.digest]
        foreign_old = rec.producer != node.own and now - rec.produced_at_us >= 183 * DAY_US
        assert node.blobs.tier_of(ref.digest) is (Tier.NEARLINE if foreign_old else Tier.ONLINE)
        assert node.blobs.get(ref.digest) == ref.payload()
    assert report.blob_moves[("online", "nearline")] > 0


def test_two_years_on_images_are_offline_and_still_fetchable_by_hash(node: Node) -> None:
    now = _end(node.wl) + 800 * DAY_US
    report = apply_retention(
        node.ledger.store, node.blobs, RetentionPolicy(), own_institution=node.own, now_us=now
    )
    assert report.refused == []
    foreign = [ref for ref in node.wl.images if node.producer_of[ref.digest] != node.own]
    own = [ref for ref in node.wl.images if node.producer_of[ref.digest] == node.own]
    assert foreign and own
    assert all(node.blobs.tier_of(ref.digest) is None for ref in foreign)  # gone from the node
    assert all(node.blobs.tier_of(ref.digest) is Tier.ONLINE for ref in own)
    assert all(node.blobs.get(ref.digest) == ref.payload() for ref in node.wl.images)
    assert set(node.ledger.store.evicted_ids()) == _old_foreign(node, now)
    view = node.ledger.verifiable_bodies(node.authority)
    assert verify_chain(node.genesis, node.blocks, view, policy=node.wl.policy).ok


def test_a_lying_archive_is_caught_by_the_verifier(node: Node) -> None:
    now = _end(node.wl) + 30 * DAY_US
    apply_retention(
        node.ledger.store, node.blobs, RetentionPolicy(), own_institution=node.own, now_us=now
    )
    evicted = sorted(node.ledger.store.evicted_ids())
    victim = evicted[0]
    original: Transaction = next(t for t in node.wl.transactions if t.id == victim)
    forged = Transaction(
        original.kind, original.content + b"!", original.timestamp_us, original.public_keys
    )
    node.authority.store.tamper_transaction(victim, forged.to_wire())
    view = node.ledger.verifiable_bodies(node.authority)
    report = verify_chain(node.genesis, node.blocks, view, policy=node.wl.policy)
    [finding] = report.findings
    h = next(b.header.height for b in node.blocks if victim in b.tx_ids)
    assert (finding.kind, finding.height, finding.tx_id) == (FindingKind.BODY_ALTERED, h, victim)


def test_eviction_without_an_archive_is_refused(node: Node) -> None:
    now = _end(node.wl) + 30 * DAY_US
    report = apply_retention(
        node.ledger.store, None, RetentionPolicy(), own_institution=node.own, now_us=now
    )
    assert report.bodies_evicted == 0
    assert {r for _, r in report.refused} == {"no archive"}
    assert len(report.refused) == len(_old_foreign(node, now))
    assert len(node.ledger) == len(node.wl.transactions)


def test_blob_metadata_commits_with_its_record_or_not_at_all(tmp_path: Path) -> None:
    from medbench.store import BlobRecord, DuplicateTransaction, InvalidInput
    from medbench.store.rows import StoredTransaction

    store = NodeStore(tmp_path / "n.db")
    tx = StoredTransaction(bytes([1]) * 32, 1, 5, b"inst", b"body")
    rec = BlobRecord(bytes([9]) * 32, b"inst", 5, 100)
    store.put_transactions([tx], blobs=[rec])
    assert store.blob_records() == [rec]
    # a refused batch (a different body under a stored ID) records no blob either
    clash = StoredTransaction(tx.tx_id, 1, 5, b"inst", b"other body")
    with pytest.raises(DuplicateTransaction):
        store.put_transactions([clash], blobs=[BlobRecord(bytes([8]) * 32, b"x", 0, 1)])
    assert store.blob_records() == [rec]
    # the same scan referenced again keeps its first producer and date
    store.put_transactions([], blobs=[BlobRecord(rec.digest, b"other", 99, 100)])
    assert store.blob_records() == [rec]
    for bad in (
        [b"not a record"],
        BlobRecord(b"short", b"p", 0, 1),
        [BlobRecord(b"s", b"p", 0, 1)],
    ):
        with pytest.raises(InvalidInput):
            store.put_transactions([], blobs=bad)  # type: ignore[arg-type]
    store.close()
