"""The workload generator builds its traffic through the records API."""

from __future__ import annotations

import dataclasses

import pytest

from medbench import codec
from medbench.ledger import Kind, SignerPolicy, verify_chain, verify_transaction
from medbench.records import (
    RecordBook,
    RecordDecodeError,
    RecordIndex,
    Role,
    VisitRecord,
    affiliations,
    is_sealed_grant,
    open_sealed_grant,
    read_registration,
    read_sealed_view,
    read_view,
    scan_paper,
)
from medbench.workload.generator import WorkloadConfig, build_chain, generate

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


def test_sealed_workload_verifies_and_grantees_find_their_grants() -> None:
    cfg = dataclasses.replace(CFG, sealed_access=True, audit_queries=True)
    wl = generate(cfg, seed=7)
    txs = wl.transactions
    policy = SignerPolicy(affiliations(txs))
    assert all(verify_transaction(tx, policy=policy).ok for tx in txs)
    g, blocks = build_chain(wl, block_size=8)
    assert verify_chain(g, blocks, wl.store(), policy=policy).ok
    assert wl.access_key is not None
    patients = {p.key for p in wl.patients}
    grants = [tx for tx in txs if tx.kind is Kind.GRANT]
    assert grants and all(is_sealed_grant(tx) and tx.author not in patients for tx in grants)
    assert len({tx.author for tx in grants}) == len(grants)  # a fresh pseudonym per grant
    books = {p.key: RecordBook.for_patient(p.identity, txs) for p in wl.patients}
    shared = 0
    for grant in grants:
        opened = open_sealed_grant(wl.access_key, grant, wl.pseudonym_anchors)
        # the grantee is found by trying the view box, not by reading a field
        grantees = []
        for s in [*wl.staff, *wl.workers]:
            try:
                cap = read_sealed_view(s.identity, grant)
            except RecordDecodeError:
                continue
            grantees.append(s.key)
            assert cap.patient == opened.patient and cap.grantee == s.key
            book = RecordBook.for_grantee(s.identity, grant, txs)
            assert len(book.associations) == len(cap.entries)
            assert set(book.lineages()) <= set(books[opened.patient].lineages())
            shared += len(cap.entries)
        assert grantees == [opened.grantee]
    assert shared > 0
    # the same seed in clear form holds the same records (the sealing has its own randomness)
    clear = generate(dataclasses.replace(cfg, sealed_access=False), seed=7)
    assert [t.id for t in clear.transactions if t.kind is Kind.ADD] == [
        t.id for t in txs if t.kind is Kind.ADD
    ]
    with pytest.raises(ValueError, match="stealth"):
        generate(dataclasses.replace(cfg, stealth_associations=False), seed=7)
