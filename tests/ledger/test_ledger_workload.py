"""The seeded workload generator: determinism, population shape, sealed links, images."""

from __future__ import annotations

import numpy as np

from medbench import codec
from medbench.hashing import sha256
from medbench.ledger import Kind, verify_chain, verify_transaction
from medbench.workload.generator import WorkloadConfig, build_chain, generate

SMALL = WorkloadConfig(institutions=3, staff_per_institution=2, patients=5, visits=25)


def test_same_seed_same_bytes() -> None:
    a, b = generate(SMALL, seed=42), generate(SMALL, seed=42)
    assert [t.to_wire() for t in a.transactions] == [t.to_wire() for t in b.transactions]
    assert build_chain(a)[1] == build_chain(b)[1]
    c = generate(SMALL, seed=43)
    assert [t.id for t in c.transactions] != [t.id for t in a.transactions]


def test_population_and_order() -> None:
    wl = generate(SMALL, seed=1)
    assert len(wl.validators) == 4  # at least 4 validators (PBFT, docs/medical-chain.md §1.1)
    assert len(wl.staff) == 6 and len(wl.patients) == 5
    ts = [t.timestamp_us for t in wl.transactions]
    assert ts == sorted(ts) and ts[0] > SMALL.start_us
    kinds = [t.kind for t in wl.transactions]
    assert kinds.count(Kind.ADD) == kinds.count(Kind.ASSOCIATE) == 25
    assert kinds.count(Kind.REGISTER) == 3 + 6 + 1 + 5


def test_records_follow_the_signer_rule() -> None:
    wl = generate(SMALL, seed=2)
    for tx in wl.transactions:
        assert verify_transaction(tx, policy=wl.policy).ok
        if tx.kind is Kind.ADD:
            author = tx.author
            inst = wl.affiliation.get(author)
            assert tx.public_keys == ((author, inst) if inst else (author,))
    g, blocks = build_chain(wl, block_size=10)
    assert verify_chain(g, blocks, wl.store(), policy=wl.policy).ok


def test_association_is_sealed_to_the_patient() -> None:
    wl = generate(SMALL, seed=3)
    by_key = {p.key: p for p in wl.patients}
    records = {t.id for t in wl.transactions if t.kind is Kind.ADD}
    assoc = [t for t in wl.transactions if t.kind is Kind.ASSOCIATE]
    for tx in assoc:
        content = codec.decode(tx.content)
        patient = by_key[content["owner"]]
        link = codec.decode(patient.identity.open(content["link"], b"associate"))
        assert link["record"] in records
        assert link["record"] not in tx.content  # the record ID is not readable in clear


def test_register_private_fields_sealed() -> None:
    wl = generate(SMALL, seed=4)
    reg = next(t for t in wl.transactions if t.kind is Kind.REGISTER)
    content = codec.decode(reg.content)
    owner = next(e for e in wl.institutions if e.key == reg.author)
    assert owner.name.encode() not in reg.content
    assert codec.decode(owner.identity.open(content["private"], b"register"))["name"] == owner.name


def test_sizes_and_images() -> None:
    cfg = WorkloadConfig(patients=10, visits=200, image_probability=0.5, image_median_bytes=8192)
    wl = generate(cfg, seed=5)
    sizes = np.array([len(t.content) for t in wl.transactions if t.kind is Kind.ADD])
    assert sizes.min() >= 64 and sizes.max() <= cfg.max_content_bytes + 4096
    # log-normal: median near the configured one, long right tail
    assert 0.6 * cfg.content_median_bytes < np.median(sizes) < 1.6 * cfg.content_median_bytes
    assert sizes.max() > 2.5 * np.median(sizes)
    assert 60 < len(wl.images) < 140
    for ref in wl.images[:5]:
        payload = ref.payload()
        assert len(payload) == ref.size and sha256(payload) == ref.digest
    digests = {
        img["sha256"]
        for t in wl.transactions
        if t.kind is Kind.ADD
        for img in codec.decode(t.content)["images"]
    }
    assert digests == {r.digest for r in wl.images}
