"""The referral walk-through of docs/medical-chain.md §1.7, steps 1-3 and the two leak attacks of
step 6."""

from __future__ import annotations

from records_helpers import T0, condition, encounter, medication_request, population, randbytes

from medbench.ledger import Kind, SignerPolicy, verify_transaction
from medbench.records import (
    QueryCondition,
    RecordBook,
    Role,
    StealthAssociation,
    VisitRecord,
    Writer,
    add,
    affiliations,
    associate,
    build_visit,
    grant_view,
    query,
    read_registration,
    scan,
)

DAY = 86_400_000_000


def test_patient_moves_from_hospital_a_to_b_and_sees_doctor_d() -> None:
    pop = population(50, institutions=2, staff_per=1, patients=3)
    h_a, h_b = pop.institutions
    doc_a, doc_d = pop.staff[0][0], pop.staff[1][0]
    patient = pop.patients[0]
    rb = randbytes(51)
    chain = list(pop.registrations)
    policy = SignerPolicy(affiliations(chain))

    # step 1: P's entity transaction — ID number and name sealed, sex and age in clear, key in clear
    reg = read_registration(next(tx for tx in chain if tx.author == patient.key))
    assert reg.profile.role is Role.PATIENT and reg.profile.sex and reg.profile.age_band
    assert b"Patient 0" not in next(tx for tx in chain if tx.id == reg.tx_id).content
    assert reg.open_private(patient).name == "Patient 0"

    # earlier visits at H_A, each a record plus a stealth association
    at_a = Writer(doc_a.signing, h_a.signing)
    for k in range(3):
        rec = add(build_visit([encounter(k), condition(k)]).encode(), T0 + k * DAY, at_a)
        chain += [rec, associate(patient.public, rec.id, T0 + k * DAY, at_a, randbytes=rb)]

    # step 2: P signs a query (logged on chain) and finds her H_A records by her associations
    q = query(QueryCondition(owner=patient.key), T0 + 30 * DAY, patient.signing)
    chain.append(q)
    assert verify_transaction(q, policy=policy).ok and QueryCondition.decode(q.content).owner
    mine = list(scan(patient, chain))
    assert len(mine) == 3
    # ... and shows them to D through a view grant
    grant = grant_view(
        patient, doc_d.public, mine, T0 + 30 * DAY, T0 + 60 * DAY, T0 + 30 * DAY, randbytes=rb
    )
    chain.append(grant)
    seen_by_d = RecordBook.for_grantee(doc_d, grant, chain)
    assert [v.tx.public_keys for v in seen_by_d.current()] == [(doc_a.key, h_a.key)] * 3

    # step 3: D saves a diagnosis: TX1 (add) and TX2 (association), both signed by D and H_B
    at_b = Writer(doc_d.signing, h_b.signing)
    visit = build_visit([encounter(9), condition(9), medication_request(9)])
    tx1 = add(visit.encode(), T0 + 31 * DAY, at_b)
    tx2 = associate(patient.public, tx1.id, T0 + 31 * DAY, at_b, randbytes=rb)
    chain += [tx1, tx2]
    for tx in (tx1, tx2):
        assert tx.public_keys == (doc_d.key, h_b.key)
        assert verify_transaction(tx, policy=policy).ok
    assert tx2.kind is Kind.ASSOCIATE
    book = RecordBook.for_patient(patient, chain)
    assert [v.id for v in book.current()][-1] == tx1.id and len(book.current()) == 4

    # step 6: TX1 leaked — nothing in it ties it to P
    for key in (patient.key, patient.public.encryption):
        assert key not in tx1.content
    assert "Patient 0" not in str(VisitRecord.decode(tx1.content).of_type("Condition"))
    # TX2 leaked — unreadable without P's private key, and it does not even name P
    sa = StealthAssociation.decode(tx2.content)
    assert tx1.id not in tx2.content and patient.key not in tx2.content
    assert all(p.key not in tx2.content for p in pop.patients)
    for other in [*pop.patients[1:], doc_d, h_b]:
        assert list(scan(other, [tx2])) == []
    assert len(sa.link) == 32 + 16  # AES-GCM of the record ID under a key only P can derive
