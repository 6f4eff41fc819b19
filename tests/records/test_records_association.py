"""Stealth associations: the patient finds all and only hers; grantees through view grants."""

from __future__ import annotations

import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from records_helpers import (
    T0,
    Population,
    condition,
    encounter,
    medication_request,
    population,
    randbytes,
)

from medbench import codec
from medbench.ledger import Kind, SignerPolicy, Transaction, verify_transaction
from medbench.records import (
    FoundAssociation,
    QueryCondition,
    RecordBook,
    RecordDecodeError,
    Status,
    StealthAssociation,
    add,
    affiliations,
    associate,
    build_visit,
    delete,
    grant_view,
    open_with_secret,
    paper_association,
    read_view,
    resolve,
    scan,
    scan_one,
    scan_paper,
    update,
)


def _visits(pop: Population, n: int, seed: int) -> tuple[list[Transaction], dict[bytes, bytes]]:
    """n visits of random patients by random staff: record + stealth association each.
    Returns the chain and the ground truth record ID -> patient key."""
    rng = random.Random(seed)
    chain = list(pop.registrations)
    truth = {}
    t = T0 + 1_000_000
    for k in range(n):
        patient = rng.choice(pop.patients)
        writer = pop.writer(rng.randrange(len(pop.staff)))
        t += rng.randrange(1, 10_000_000)
        record = add(build_visit([encounter(k), condition(k)]).encode(), t, writer)
        assoc = associate(patient.public, record.id, t, writer, randbytes=rng.randbytes)
        chain += [record, assoc]
        truth[record.id] = patient.key
    return chain, truth


def test_patient_finds_all_and_only_her_associations() -> None:
    pop = population(10, patients=5)
    chain, truth = _visits(pop, 40, seed=11)
    policy = SignerPolicy(affiliations(pop.registrations))
    assert all(verify_transaction(tx, policy=policy).ok for tx in chain)
    seen: set[bytes] = set()
    by_id = {tx.id: tx for tx in chain}
    for patient in pop.patients:
        found = list(scan(patient, chain))
        mine = {r for r, p in truth.items() if p == patient.key}
        assert {f.record_id for f in found} == mine
        assert all(by_id[f.association_id].kind is Kind.ASSOCIATE for f in found)
        seen |= {f.record_id for f in found}
    assert seen == set(truth)
    outsider = pop.staff[0][0]
    assert list(scan(outsider, chain)) == []


def test_tampered_or_hostile_associations_are_skipped() -> None:
    pop = population(12, patients=1)
    patient = pop.patients[0]
    writer = pop.writer(0)
    record = add(b"r", T0, writer)
    good = associate(patient.public, record.id, T0, writer, randbytes=randbytes(1))
    sa = StealthAssociation.decode(good.content)
    flipped = StealthAssociation(sa.ephemeral, sa.tag, sa.link[:-1] + bytes([sa.link[-1] ^ 1]))
    low_order = StealthAssociation(bytes(32), sa.tag, sa.link)
    for content in (flipped.encode(), low_order.encode(), b"\xc1", codec.encode({"owner": 1})):
        tx = writer.sign(Kind.ASSOCIATE, content, T0 + 1)
        assert scan_one(patient, tx) is None
    assert scan_one(patient, good) is not None
    assert scan_one(patient, record) is None


_SMALL = population(13, patients=1, institutions=1, staff_per=1)


@given(st.binary(max_size=120))
def test_scanning_hostile_content_never_raises(content: bytes) -> None:
    tx = Transaction(Kind.ASSOCIATE, content, T0, (b"w" * 32,))
    assert scan_one(_SMALL.patients[0], tx) is None
    assert open_with_secret(tx, bytes(32)) is None


def test_grantee_finds_the_granted_associations_and_a_non_grantee_cannot() -> None:
    pop = population(14, patients=3)
    chain, truth = _visits(pop, 30, seed=15)
    patient = pop.patients[0]
    doctor, other_doctor = pop.staff[0][0], pop.staff[1][0]
    found = list(scan(patient, chain))
    shared = found[: len(found) // 2 + 1]
    grant = grant_view(
        patient, doctor.public, shared, T0, T0 + 86_400_000_000, T0 + 2, randbytes=randbytes(16)
    )
    assert grant.kind is Kind.GRANT and grant.public_keys == (patient.key,)
    chain.append(grant)
    cap = read_view(doctor, grant)
    assert cap.patient == patient.key and cap.in_window(T0 + 1) and not cap.in_window(T0 - 1)
    got = resolve(cap, {tx.id: tx for tx in chain})
    assert [g.record_id for g in got] == [f.record_id for f in shared]
    assert all(truth[g.record_id] == patient.key for g in got)
    # the capability opens those associations only: nothing else of hers
    assert not {f.record_id for f in found[len(shared) :]} & {g.record_id for g in got}
    # a non-grantee (or the grantee's own key) cannot read the capability or scan her links
    with pytest.raises(RecordDecodeError):
        read_view(other_doctor, grant)
    assert list(scan(doctor, chain)) == []
    book = RecordBook.for_grantee(doctor, grant, chain)
    assert [v.id for v in book.current()] == [f.record_id for f in shared]


def test_capability_is_bound_to_its_grant() -> None:
    pop = population(17, patients=2)
    chain, _ = _visits(pop, 10, seed=18)
    alice, mallory = pop.patients
    doctor = pop.staff[0][0]
    found = list(scan(alice, chain))
    grant = grant_view(alice, doctor.public, found, T0, T0 + 10, T0, randbytes=randbytes(2))
    # Mallory copies Alice's box into a grant of her own: it no longer opens
    c = codec.decode(grant.content)
    lifted = Transaction.create(Kind.GRANT, grant.content, T0 + 1, [mallory.signing])
    with pytest.raises(RecordDecodeError):
        read_view(doctor, lifted)
    longer = codec.encode({**c, "until_us": T0 + 10**12})
    with pytest.raises(RecordDecodeError):
        read_view(doctor, Transaction.create(Kind.GRANT, longer, T0 + 1, [alice.signing]))
    # a wrong secret in a capability entry is dropped by resolve
    cap = read_view(doctor, grant)
    forged = type(cap)(
        cap.patient,
        cap.grantee,
        cap.from_us,
        cap.until_us,
        tuple((a, bytes(32)) for a, _ in cap.entries),
    )
    assert resolve(forged, {tx.id: tx for tx in chain}) == []


def test_capability_size_hides_the_exact_number_of_records() -> None:
    pop = population(19, patients=1)
    chain, _ = _visits(pop, 6, seed=20)
    patient, doctor = pop.patients[0], pop.staff[0][0]
    found = list(scan(patient, chain))
    sizes = {
        len(grant_view(patient, doctor.public, found[:k], T0, T0 + 1, T0).content)
        for k in range(len(found) + 1)
    }
    assert len(sizes) == 1


def test_patient_book_follows_updates_and_keeps_deleted_history() -> None:
    pop = population(21, patients=2)
    patient = pop.patients[0]
    writer = pop.writer(1)
    rb = randbytes(22)
    r1 = add(build_visit([encounter(1)]).encode(), T0, writer)
    r2 = add(build_visit([condition(2)]).encode(), T0 + 1, writer)
    r3 = add(build_visit([medication_request(3)]).encode(), T0 + 2, writer)
    chain = [*pop.registrations, r1, r2, r3]
    chain += [associate(patient.public, r.id, T0 + 3, writer, randbytes=rb) for r in (r1, r2)]
    chain.append(associate(pop.patients[1].public, r3.id, T0 + 3, writer, randbytes=rb))
    r1b, link = update(r1.id, build_visit([encounter(9)]).encode(), T0 + 4, writer, "wrong date")
    chain += [r1b, link, delete(r2.id, T0 + 5, writer)]
    book = RecordBook.for_patient(patient, chain)
    assert [v.id for v in book.current()] == [r1b.id]  # updated, and r2 deleted
    history = book.history()
    assert [[(v.id, v.status) for v in lineage] for lineage in history] == [
        [(r1.id, Status.SUPERSEDED), (r1b.id, Status.CURRENT)],
        [(r2.id, Status.DELETED)],
    ]
    assert [v.id for v in book.answer(QueryCondition(include_history=True))] == [
        r1.id,
        r1b.id,
        r2.id,
    ]
    assert [v.id for v in book.answer(QueryCondition(from_us=T0 + 4))] == [r1b.id]
    assert book.answer(QueryCondition(record_ids=(r3.id,))) == []  # not hers
    first = book.associations[0]
    assert first.link_secret.hex()[:8] not in repr(first) and "link_secret" not in repr(first)
    other = RecordBook.for_patient(pop.patients[1], chain)
    assert [v.id for v in other.current()] == [r3.id]


def test_paper_form_is_found_by_owner_key() -> None:
    pop = population(23, patients=2)
    writer = pop.writer(0)
    p = pop.patients[0]
    record = add(b"r", T0, writer)
    content = paper_association(p.public, record.id, writer.author.public, randbytes=randbytes(3))
    tx = writer.sign(Kind.ASSOCIATE, content, T0)
    assert list(scan_paper(p, [tx])) == [record.id]
    assert list(scan_paper(pop.patients[1], [tx])) == []
    assert p.key in tx.content  # the paper's form shows the owner: see test_unlinkability


def test_found_association_carries_provenance() -> None:
    pop = population(24, patients=1)
    writer = pop.writer(0)
    record = add(b"r", T0, writer)
    tx = associate(pop.patients[0].public, record.id, T0 + 7, writer, randbytes=randbytes(4))
    f = scan_one(pop.patients[0], tx)
    assert isinstance(f, FoundAssociation)
    assert (f.association_id, f.record_id, f.timestamp_us) == (tx.id, record.id, T0 + 7)
    assert f.writers == writer.keys
    assert open_with_secret(tx, f.link_secret) == f


_GRANT_POP = population(25, patients=1, institutions=1, staff_per=1)


@given(
    key=st.sampled_from(["grantee", "from_us", "until_us", "view"]),
    value=st.none()
    | st.integers(-(2**63), 2**63 - 1)
    | st.binary(max_size=600)
    | st.lists(st.binary(max_size=8), max_size=3),
)
def test_mutated_grants_raise_only_decode_error(key: str, value: object) -> None:
    patient, doctor = _GRANT_POP.patients[0], _GRANT_POP.staff[0][0]
    grant = grant_view(patient, doctor.public, [], T0, T0 + 1, T0, randbytes=randbytes(5))
    fields = codec.decode(grant.content)
    assume(fields[key] != value)
    fields[key] = value
    mutated = Transaction.create(Kind.GRANT, codec.encode(fields), T0, [patient.signing])
    with pytest.raises(RecordDecodeError):
        read_view(doctor, mutated)


def test_a_strangers_association_cannot_slip_a_record_into_her_book() -> None:
    pop = population(26, patients=2)
    patient = pop.patients[0]
    author, stranger = pop.writer(0), pop.writer(3)  # different hospitals
    theirs = add(b"someone else's record", T0, author)
    planted = associate(patient.public, theirs.id, T0 + 1, stranger, randbytes=randbytes(6))
    genuine = associate(patient.public, theirs.id, T0 + 2, author, randbytes=randbytes(7))
    assert len(list(scan(patient, [theirs, planted]))) == 1  # she can open it ...
    assert RecordBook.for_patient(patient, [theirs, planted]).lineages() == []  # ... not count it
    assert RecordBook.for_patient(patient, [theirs, planted, genuine]).lineages() == [theirs.id]
