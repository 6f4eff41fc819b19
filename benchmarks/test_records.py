"""Benchmarks of the records layer: FHIR validation, association scanning, index resolution.

Run: ``PYTHONPATH=. python -m pytest benchmarks/test_records.py --benchmark-only``. The figures
that matter for docs/medical-chain.md §1.3: what a visit costs the client (FHIR validation +
canonical bytes), what finding her records costs a patient (one X25519 per association on chain, the
price of stealth associations over the paper's clear owner key), and resolving a chain into the
current view.
"""

from __future__ import annotations

import random

import pytest

from medbench.crypto.identity import Identity
from medbench.ledger import Kind, Transaction
from medbench.records import (
    PSEUDONYMOUS_SUBJECT,
    RecordIndex,
    Writer,
    add,
    associate,
    build_visit,
    delete,
    paper_association,
    scan,
    scan_paper,
    update,
)

T0 = 1_546_300_800_000_000
ENCOUNTER = {
    "resourceType": "Encounter",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "period": {"start": "2019-03-01T09:00:00+08:00"},
}
CONDITION = {
    "resourceType": "Condition",
    "subject": PSEUDONYMOUS_SUBJECT,
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
}
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "clinical findings"},
    "valueString": "no acute findings, " * 80,
}
N_ASSOC = 1000


def _ident(rng: random.Random) -> Identity:
    return Identity.generate(seed=rng.randbytes(32))


@pytest.fixture(scope="module")
def world() -> tuple[Identity, Writer, list[Transaction], list[Transaction]]:
    """A patient among 50, and 1000 associations in stealth and in paper form."""
    rng = random.Random(1)
    patients = [_ident(rng) for _ in range(50)]
    writer = Writer(_ident(rng).signing, _ident(rng).signing)
    stealth, paper = [], []
    for k in range(N_ASSOC):
        p = patients[k % len(patients)]
        rid = rng.randbytes(32)
        stealth.append(associate(p.public, rid, T0 + k, writer, randbytes=rng.randbytes))
        content = paper_association(p.public, rid, writer.author.public, randbytes=rng.randbytes)
        paper.append(writer.sign(Kind.ASSOCIATE, content, T0 + k))
    return patients[0], writer, stealth, paper


def test_validate_visit(benchmark) -> None:  # type: ignore[no-untyped-def]
    """One visit: three resources validated and serialised canonically."""
    visit = benchmark(build_visit, [ENCOUNTER, CONDITION, OBSERVATION])
    assert len(visit.resources) == 3


def test_scan_stealth_1000(benchmark, world) -> None:  # type: ignore[no-untyped-def]
    """A patient scans 1000 stealth associations (one X25519 + HMAC each)."""
    patient, _, stealth, _ = world
    found = benchmark(lambda: list(scan(patient, stealth)))
    assert len(found) == N_ASSOC // 50


def test_scan_paper_1000(benchmark, world) -> None:  # type: ignore[no-untyped-def]
    """The paper's form: filter by the owner key in clear, open only her own links."""
    patient, _, _, paper = world
    found = benchmark(lambda: list(scan_paper(patient, paper)))
    assert len(found) == N_ASSOC // 50


def test_associate(benchmark, world) -> None:  # type: ignore[no-untyped-def]
    """Writing one stealth association (ephemeral X25519, HKDF, AES-GCM, two signatures)."""
    patient, writer, _, _ = world
    rng = random.Random(2)
    tx = benchmark(
        lambda: associate(patient.public, bytes(32), T0, writer, randbytes=rng.randbytes)
    )
    assert tx.kind is Kind.ASSOCIATE


def test_index_10000(benchmark) -> None:  # type: ignore[no-untyped-def]
    """Resolving 10,000 record transactions (adds, update pairs, tombstones)."""
    rng = random.Random(3)
    writer = Writer(_ident(rng).signing)
    txs: list[Transaction] = []
    heads: list[bytes] = []
    while len(txs) < 10_000:
        r = rng.random()
        if heads and r < 0.2:
            i = rng.randrange(len(heads))
            new, link = update(heads[i], rng.randbytes(16), T0 + len(txs), writer, "edit")
            heads[i] = new.id
            txs += [new, link]
        elif heads and r < 0.25:
            txs.append(delete(heads.pop(rng.randrange(len(heads))), T0 + len(txs), writer))
        else:
            tx = add(rng.randbytes(16), T0 + len(txs), writer)
            heads.append(tx.id)
            txs.append(tx)
    index = benchmark(RecordIndex.from_transactions, txs)
    assert not index.rejections and len(index.current()) == len(heads)
