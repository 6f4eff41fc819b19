"""Transactions: IDs, multi-signatures, signer rules, wire round trip and hostile bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbench import codec
from medbench.crypto import Scheme, SigningKey
from medbench.hashing import sha256
from medbench.ledger import (
    Kind,
    LedgerDecodeError,
    Problem,
    SignatureError,
    SignerPolicy,
    Transaction,
    record_signers,
    transaction_id,
    verify_transaction,
)

DOCTOR = SigningKey.generate(Scheme.ED25519, b"D" * 32)
HOSPITAL = SigningKey.generate(Scheme.ED25519, b"H" * 32)
PATIENT = SigningKey.generate(Scheme.ED25519, b"P" * 32)
WORKER = SigningKey.generate(Scheme.ED25519, b"W" * 32)
POLICY = SignerPolicy({DOCTOR.public: HOSPITAL.public})


def record(signers: list[SigningKey], kind: Kind = Kind.ADD) -> Transaction:
    return Transaction.create(kind, b"condition; treatment plan", 1_000_000, signers)


def test_id_is_sha256_of_the_fixed_order_tuple() -> None:
    tx = record([DOCTOR, HOSPITAL])
    want = sha256(
        codec.encode([1, b"condition; treatment plan", 1_000_000, [DOCTOR.public, HOSPITAL.public]])
    )
    assert tx.id == want == transaction_id(Kind.ADD, tx.content, 1_000_000, tx.public_keys)
    # signatures are over the ID and are not part of it
    assert Transaction(tx.kind, tx.content, tx.timestamp_us, tx.public_keys).id == tx.id


def test_two_signers_verify() -> None:
    tx = record([DOCTOR, HOSPITAL])
    v = verify_transaction(tx, Scheme.ED25519, POLICY)
    assert v.ok, v
    v.raise_for_problems()


def test_countersigning_flow() -> None:
    draft = Transaction(Kind.ADD, b"x", 5, (DOCTOR.public, HOSPITAL.public))
    half = draft.with_signature(DOCTOR)
    v = verify_transaction(half)
    assert [(p.index, p.problem) for p in v.problems] == [(1, Problem.MISSING)]
    full = half.with_signature(HOSPITAL)
    assert verify_transaction(full).ok and full.id == draft.id
    with pytest.raises(ValueError):
        draft.with_signature(PATIENT)


def test_missing_institution_countersignature_is_reported() -> None:
    alone = record([DOCTOR])
    v = verify_transaction(alone, Scheme.ED25519, POLICY)
    assert [(p.public_key, p.problem) for p in v.problems] == [
        (HOSPITAL.public, Problem.SIGNER_NOT_LISTED)
    ]
    with pytest.raises(SignatureError) as info:
        v.raise_for_problems()
    assert info.value.verification is v


def test_independent_worker_signs_alone() -> None:
    assert verify_transaction(record([WORKER]), Scheme.ED25519, POLICY).ok
    assert record_signers(WORKER.public, None) == (WORKER.public,)
    assert record_signers(DOCTOR.public, HOSPITAL.public) == (DOCTOR.public, HOSPITAL.public)
    # non-record kinds (a doctor's query) need only the author
    assert verify_transaction(record([DOCTOR], Kind.QUERY), Scheme.ED25519, POLICY).ok


def test_each_signature_problem_is_named() -> None:
    tx = record([DOCTOR, HOSPITAL])
    forged = Transaction(
        tx.kind, tx.content, tx.timestamp_us, tx.public_keys, (PATIENT.sign(tx.id), b"\x01" * 10)
    )
    v = verify_transaction(forged)
    assert [(p.index, p.problem) for p in v.problems] == [
        (0, Problem.INVALID),
        (1, Problem.WRONG_LENGTH),
    ]
    unknown = verify_transaction(tx, "sm2")
    assert {p.problem for p in unknown.problems} == {Problem.UNKNOWN_SCHEME}
    assert "invalid" in str(v)


def test_ecdsa_transactions() -> None:
    a = SigningKey.generate(Scheme.ECDSA_P256, b"a" * 32)
    b = SigningKey.generate(Scheme.ECDSA_P256, b"b" * 32)
    tx = Transaction.create(Kind.GRANT, b"window", 9, [a, b])
    assert verify_transaction(tx, Scheme.ECDSA_P256).ok
    assert not verify_transaction(tx, Scheme.ED25519).ok


@pytest.mark.parametrize(
    "kwargs",
    [
        {"public_keys": ()},
        {"public_keys": (b"k", b"k")},
        {"public_keys": tuple(bytes([i]) * 32 for i in range(5))},
        {"public_keys": [b"k"]},
        {"timestamp_us": -1},
        {"timestamp_us": 1.5},
        {"content": "text"},
        {"signatures": (b"", b"")},
    ],
)
def test_construction_misuse_raises(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "kind": Kind.ADD,
        "content": b"c",
        "timestamp_us": 1,
        "public_keys": (b"k" * 32,),
    }
    fields.update(kwargs)
    with pytest.raises(ValueError):
        Transaction(**fields)  # type: ignore[arg-type]


keys_st = st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=4, unique=True)


@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    keys = tuple(draw(keys_st))
    sigs = tuple(draw(st.binary(max_size=80)) for _ in keys)
    return Transaction(
        draw(st.sampled_from(list(Kind))),
        draw(st.binary(max_size=300)),
        draw(st.integers(0, (1 << 63) - 1)),
        keys,
        sigs,
    )


@given(transactions())
def test_wire_round_trip(tx: Transaction) -> None:
    again = Transaction.from_wire(tx.to_wire())
    assert again == tx and again.id == tx.id


@given(st.binary(max_size=400))
def test_hostile_bytes_raise_only_the_typed_error(data: bytes) -> None:
    try:
        tx = Transaction.from_wire(data)
    except LedgerDecodeError:
        return
    assert tx.to_wire() == data


@given(transactions(), st.data())
def test_mutated_wire_bytes_raise_only_the_typed_error(
    tx: Transaction, data: st.DataObject
) -> None:
    wire = bytearray(tx.to_wire())
    i = data.draw(st.integers(0, len(wire) - 1))
    wire[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(LedgerDecodeError):
        Transaction.from_wire(bytes(wire))


@pytest.mark.parametrize(
    "fields",
    [
        [99, b"c", 1, [b"k"], [b""]],
        [True, b"c", 1, [b"k"], [b""]],
        [1, b"c", 1, [b"k"], [b"", b""]],
        [1, b"c", -5, [b"k"], [b""]],
        [1, b"c", 1, [], []],
        [1, b"c", 1, [b"k", b"k"], [b"", b""]],
        [1, b"c", 1, [b"k"]],
        {"kind": 1},
    ],
)
def test_structurally_bad_fields(fields: object) -> None:
    with pytest.raises(LedgerDecodeError):
        Transaction.from_wire(codec.encode(fields))


def test_oversized_content_refused() -> None:
    with pytest.raises(LedgerDecodeError):
        Transaction.from_wire(codec.encode([1, b"x" * (2 << 20), 1, [b"k"], [b""]]))
