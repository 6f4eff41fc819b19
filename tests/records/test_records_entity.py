"""Entity registration: clear public fields, private fields sealed to the entity, affiliations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from records_helpers import T0, identity, population, randbytes

from medbench import codec
from medbench.crypto import SealError
from medbench.ledger import Kind, SignerPolicy, Transaction, verify_transaction
from medbench.records import (
    PrivateProfile,
    PublicProfile,
    RecordDecodeError,
    RecordUsageError,
    Role,
    affiliations,
    read_registration,
    register,
)


def test_private_fields_open_only_with_the_entitys_key() -> None:
    pop = population(1)
    patient = pop.patients[0]
    tx = next(t for t in pop.registrations if t.author == patient.key)
    reg = read_registration(tx)
    private = reg.open_private(patient)
    assert private == PrivateProfile("Patient 0", "110100000000000000", "+86-0")
    for secret in (b"Patient 0", b"110100000000000000", b"+86-0"):
        assert secret not in tx.content
    for other in [*pop.patients[1:], *pop.institutions, pop.staff[0][0]]:
        with pytest.raises(SealError):
            reg.open_private(other)


def test_public_fields_and_keys_are_in_clear() -> None:
    pop = population(2)
    patient = pop.patients[1]
    reg = read_registration(next(t for t in pop.registrations if t.author == patient.key))
    assert reg.key == patient.key and reg.identity == patient.public
    assert reg.identity.is_bound()
    assert reg.profile.role is Role.PATIENT and reg.profile.age_band == "30-39"
    fields = codec.decode(next(t for t in pop.registrations if t.author == patient.key).content)
    assert fields["public"]["sex"] in ("female", "male")
    assert patient.public.encryption in fields["identity"]


def test_box_length_does_not_reveal_name_length() -> None:
    ident = identity(5)
    profile = PublicProfile(Role.PATIENT)
    short = register(ident, profile, PrivateProfile("Li"), T0, randbytes=randbytes(1))
    long = register(
        ident, profile, PrivateProfile("Alexandrina-Maximiliana O."), T0, randbytes=randbytes(1)
    )
    assert len(short.content) == len(long.content)


def test_staff_registration_is_countersigned_and_yields_the_signer_policy() -> None:
    pop = population(3)
    aff = affiliations(pop.registrations)
    assert aff == {m.key: inst.key for m, inst in pop.staff}
    policy = SignerPolicy(aff)
    for tx in pop.registrations:
        assert verify_transaction(tx, policy=policy).ok
        reg = read_registration(tx)
        if reg.profile.role is Role.STAFF:
            assert tx.public_keys == (reg.key, reg.profile.institution)
            assert all(tx.signatures)


def test_affiliation_without_countersignature_is_refused() -> None:
    member, inst = identity(10), identity(11)
    profile = PublicProfile(Role.STAFF, institution=inst.key, department="oncology")
    with pytest.raises(RecordUsageError):
        register(member, profile, PrivateProfile("Dr. X"), T0)
    # a forged registration naming an institution that did not countersign
    good = register(member, profile, PrivateProfile("Dr. X"), T0, institution=inst)
    forged = Transaction.create(Kind.REGISTER, good.content, T0, [member.signing])
    with pytest.raises(RecordDecodeError, match="countersigner"):
        read_registration(forged)
    assert affiliations([forged]) == {}


def test_registration_must_be_authored_by_the_registered_identity() -> None:
    victim, thief = identity(20), identity(21)
    tx = register(victim, PublicProfile(Role.PATIENT), PrivateProfile("V"), T0)
    stolen = Transaction.create(Kind.REGISTER, tx.content, T0, [thief.signing])
    with pytest.raises(RecordDecodeError, match="author"):
        read_registration(stolen)


def test_profile_misuse() -> None:
    ident = identity(30)
    with pytest.raises(RecordUsageError):
        register(ident, PublicProfile(Role.PATIENT, sex="robot"), PrivateProfile("x"), T0)
    with pytest.raises(RecordUsageError):
        register(ident, PublicProfile(Role.PATIENT, institution=b"k" * 32), PrivateProfile("x"), T0)


@given(
    st.dictionaries(
        st.sampled_from(["role", "identity", "institution", "public", "private", "x"]),
        st.none()
        | st.binary(max_size=40)
        | st.text(max_size=10)
        | st.integers(-(2**63), 2**63 - 1)
        | st.lists(st.binary(max_size=40), max_size=4)
        | st.dictionaries(
            st.sampled_from(["sex", "age_band", "department", "level"]),
            st.none() | st.text(max_size=5),
            max_size=4,
        ),
        max_size=6,
    )
)
def test_hostile_registrations_raise_only_decode_error(fields: dict[str, object]) -> None:
    tx = Transaction(Kind.REGISTER, codec.encode(fields), T0, (b"k" * 32,))
    with pytest.raises(RecordDecodeError):
        read_registration(tx)


_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=8,
)
_STAFF = population(40, institutions=1, staff_per=1, patients=0)


@given(
    path=st.sampled_from(
        [
            ("role",),
            ("identity",),
            ("institution",),
            ("private",),
            ("public",),
            ("public", "sex"),
            ("public", "age_band"),
            ("public", "level"),
            ("identity", 2),
        ]
    ),
    value=_ANY,
)
def test_mutated_registrations_parse_or_raise_only_decode_error(
    path: tuple[str | int, ...], value: object
) -> None:
    tx = _STAFF.registrations[-1]  # a countersigned staff registration
    fields = codec.decode(tx.content)
    target = fields
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    mutated = Transaction(Kind.REGISTER, codec.encode(fields), T0, tx.public_keys)
    try:
        reg = read_registration(mutated)
    except RecordDecodeError:
        return
    assert reg.key == tx.author  # whatever parses still names its author


def test_validator_node_registers_under_its_institution() -> None:
    hospital, node = identity(60), identity(61)
    profile = PublicProfile(Role.NODE, institution=hospital.key)
    tx = register(
        node,
        profile,
        PrivateProfile("validator-1", contact="10.0.0.1:7000"),
        T0,
        institution=hospital,
        randbytes=randbytes(62),
    )
    reg = read_registration(tx)
    assert reg.profile == profile and tx.public_keys == (node.key, hospital.key)
    assert reg.open_private(node).contact == "10.0.0.1:7000"
    assert affiliations([tx]) == {node.key: hospital.key}


# --- leaving an institution needs the institution's release ----------------------------------


def _staff_world() -> tuple[object, object, object, list[Transaction]]:
    doctor, hospital, other = identity(70), identity(71), identity(72)
    chain = [
        register(hospital, PublicProfile(Role.INSTITUTION), PrivateProfile("H"), T0),
        register(other, PublicProfile(Role.INSTITUTION), PrivateProfile("O"), T0 + 1),
        register(
            doctor,
            PublicProfile(Role.STAFF, institution=hospital.key),
            PrivateProfile("Dr. D"),
            T0 + 2,
            institution=hospital,
        ),
    ]
    return doctor, hospital, other, chain


def _signs_alone_ok(doctor, chain: list[Transaction]) -> bool:  # type: ignore[no-untyped-def]
    record = Transaction.create(Kind.ADD, b"a record signed alone", T0 + 100, [doctor.signing])
    return verify_transaction(record, policy=SignerPolicy(affiliations(chain))).ok


def test_staff_cannot_drop_their_affiliation_by_re_registering_alone() -> None:
    doctor, hospital, _other, chain = _staff_world()
    assert affiliations(chain) == {doctor.key: hospital.key}
    assert not _signs_alone_ok(doctor, chain)
    # the loophole: re-register as an independent worker, a registration only they sign
    independent = register(doctor, PublicProfile(Role.WORKER), PrivateProfile("Dr. D"), T0 + 3)
    assert read_registration(independent).released_from is None
    chain.append(independent)
    assert affiliations(chain) == {doctor.key: hospital.key}  # still the hospital's
    assert not _signs_alone_ok(doctor, chain)  # records still need the hospital's countersign
    # re-registering as a patient is no way out either
    chain.append(register(doctor, PublicProfile(Role.PATIENT), PrivateProfile("D"), T0 + 4))
    assert affiliations(chain) == {doctor.key: hospital.key}


def test_a_release_countersigned_by_the_institution_ends_the_affiliation() -> None:
    doctor, hospital, _other, chain = _staff_world()
    leave = register(
        doctor,
        PublicProfile(Role.WORKER),
        PrivateProfile("Dr. D"),
        T0 + 3,
        releasing=hospital,
        randbytes=randbytes(73),
    )
    reg = read_registration(leave)
    assert reg.released_from == hospital.key and leave.public_keys == (doctor.key, hospital.key)
    assert verify_transaction(leave).ok
    assert affiliations([*chain, leave]) == {}
    assert _signs_alone_ok(doctor, [*chain, leave])  # now an independent licensed worker


def test_moving_to_another_institution_needs_the_old_ones_release() -> None:
    doctor, hospital, other, chain = _staff_world()
    profile = PublicProfile(Role.STAFF, institution=other.key)
    poached = register(doctor, profile, PrivateProfile("Dr. D"), T0 + 3, institution=other)
    assert affiliations([*chain, poached]) == {doctor.key: hospital.key}
    moved = register(
        doctor, profile, PrivateProfile("Dr. D"), T0 + 4, institution=other, releasing=hospital
    )
    assert moved.public_keys == (doctor.key, other.key, hospital.key)
    assert affiliations([*chain, moved]) == {doctor.key: other.key}


def test_a_forged_release_is_ignored() -> None:
    doctor, hospital, _other, chain = _staff_world()
    mallory = identity(74)
    good = register(
        doctor, PublicProfile(Role.WORKER), PrivateProfile("Dr. D"), T0 + 3, releasing=hospital
    )
    # the hospital's key listed, but its signature made by someone else
    forged = Transaction(good.kind, good.content, good.timestamp_us, good.public_keys)
    forged = forged.with_signature(doctor.signing)
    forged = Transaction(
        forged.kind,
        forged.content,
        forged.timestamp_us,
        forged.public_keys,
        (forged.signatures[0], mallory.signing.sign(forged.id)),
    )
    assert read_registration(forged).released_from == hospital.key  # well-formed...
    assert not verify_transaction(forged).ok  # ...but not signed by the hospital
    assert affiliations([*chain, forged]) == {doctor.key: hospital.key}
    # and a release listing only the doctor is malformed
    lone = Transaction.create(Kind.REGISTER, good.content, T0 + 3, [doctor.signing])
    with pytest.raises(RecordDecodeError, match="leaves last"):
        read_registration(lone)
    assert affiliations([*chain, lone]) == {doctor.key: hospital.key}


def test_release_misuse_and_malformed_release_fields() -> None:
    doctor, hospital, _other, _chain = _staff_world()
    profile = PublicProfile(Role.STAFF, institution=hospital.key)
    with pytest.raises(RecordUsageError, match="releasing"):
        register(doctor, profile, PrivateProfile("D"), T0, institution=hospital, releasing=hospital)
    good = register(
        doctor, PublicProfile(Role.WORKER), PrivateProfile("D"), T0 + 3, releasing=hospital
    )
    fields = codec.decode(good.content)
    for bad in (b"", 7, "key", b"k" * 2000):
        tx = Transaction.create(
            Kind.REGISTER,
            codec.encode({**fields, "releases": bad}),
            T0 + 3,
            [doctor.signing, hospital.signing],
        )
        with pytest.raises(RecordDecodeError):
            read_registration(tx)
