"""The workload generator builds its traffic through the records API."""

from __future__ import annotations

from medbench import codec
from medbench.ledger import Kind, SignerPolicy, verify_chain, verify_transaction
from medbench.ledger.workload import WorkloadConfig, build_chain, generate
from medbench.records import (
    RecordBook,
    RecordIndex,
    Role,
    VisitRecord,
    affiliations,
    read_registration,
    read_view,
    scan_paper,
)

CFG = WorkloadConfig(
    institutions=2,
    staff_per_institution=2,
    patients=4,
    visits=24,
    content_median_bytes=400,
    image_probability=0.3,
    image_median_bytes=2048,
    grant_probability=0.4,
    update_probability=0.2,
    delete_probability=0.1,
    stealth_associations=True,
)


def test_stealth_workload_resolves_for_patients_and_grantees() -> None:
    wl = generate(CFG, seed=7)
    txs = wl.transactions
    assert affiliations(txs) == wl.affiliation
    policy = SignerPolicy(affiliations(txs))
    assert all(verify_transaction(tx, policy=policy).ok for tx in txs)
    g, blocks = build_chain(wl, block_size=8)
    assert verify_chain(g, blocks, wl.store(), policy=policy).ok
    index = RecordIndex.from_transactions(txs)
    assert index.rejections == []
    assert any(tx.kind is Kind.UPDATE for tx in txs) and any(tx.kind is Kind.DELETE for tx in txs)
    for tx in txs:
        if tx.kind is Kind.ADD:
            VisitRecord.decode(tx.content)  # valid FHIR R4B on chain
        if tx.kind is Kind.REGISTER:
            assert read_registration(tx).profile.role in set(Role)
    books = {p.key: RecordBook.for_patient(p.identity, txs) for p in wl.patients}
    linked = [root for book in books.values() for root in book.lineages()]
    assert len(linked) == len(set(linked)) == sum(tx.kind is Kind.ASSOCIATE for tx in txs)
    live = {v.lineage for v in index.current()}
    assert {v.lineage for b in books.values() for v in b.current()} == live
    grants = [tx for tx in txs if tx.kind is Kind.GRANT]
    assert grants
    by_key = {e.key: e for e in [*wl.staff, *wl.workers]}
    shared = 0
    for grant in grants:
        grantee = by_key[codec.decode(grant.content)["grantee"]].identity
        cap = read_view(grantee, grant)
        book = RecordBook.for_grantee(grantee, grant, txs)
        assert len(book.associations) == len(cap.entries)  # every entry verifies on chain
        assert set(book.lineages()) <= set(books[grant.author].lineages())
        shared += len(cap.entries)
    assert shared > 0


def test_paper_workload_keeps_the_papers_association_form() -> None:
    wl = generate(WorkloadConfig(patients=3, visits=10), seed=8)
    assocs = [tx for tx in wl.transactions if tx.kind is Kind.ASSOCIATE]
    found = [r for p in wl.patients for r in scan_paper(p.identity, wl.transactions)]
    assert len(found) == len(assocs) == 10
