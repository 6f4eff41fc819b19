"""CRUD without rewriting history: tombstones, update links, queries, legacy import, signers."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st
from records_helpers import T0, encounter, identity, observation, population

from medbench import codec
from medbench.ledger import Kind, SignerPolicy, Transaction, verify_transaction
from medbench.ledger.errors import Problem
from medbench.records import (
    QueryCondition,
    Reason,
    RecordDecodeError,
    RecordIndex,
    RecordUsageError,
    Status,
    UpdateLink,
    Writer,
    add,
    affiliations,
    build_visit,
    delete,
    legacy_import,
    query,
    same_writers,
    tombstone_target,
    update,
)

WRITER = Writer(identity(1).signing, identity(2).signing)


def test_update_keeps_the_old_version_and_links_it() -> None:
    v1 = add(b"v1", T0, WRITER)
    v2, link = update(v1.id, b"v2", T0 + 10, WRITER, "typo in dosage")
    assert link.kind is Kind.UPDATE and v2.kind is Kind.ADD
    assert UpdateLink.decode(link.content) == UpdateLink(v1.id, v2.id, T0 + 10, "typo in dosage")
    index = RecordIndex.from_transactions([v1, v2, link])
    assert [v.id for v in index.current()] == [v2.id]
    assert index.head(v1.id) == index.head(v2.id)
    hist = index.history(v2.id)
    assert [(v.id, v.status) for v in hist] == [(v1.id, Status.SUPERSEDED), (v2.id, Status.CURRENT)]
    assert hist[0].superseded_by == v2.id and hist[1].update is not None
    assert hist[1].update.reason == "typo in dosage"


def test_delete_is_a_tombstone_naming_the_id() -> None:
    v1 = add(b"v1", T0, WRITER)
    tomb = delete(v1.id, T0 + 5, WRITER)
    assert tomb.kind is Kind.DELETE and tomb.content == v1.id == tombstone_target(tomb)
    index = RecordIndex.from_transactions([v1, tomb])
    assert index.current() == [] and index.head(v1.id) is None
    (gone,) = index.history(v1.id)
    assert gone.status is Status.DELETED and gone.tombstone == tomb.id and gone.tx == v1
    with pytest.raises(RecordDecodeError):
        tombstone_target(add(b"x", T0, WRITER))


def test_invalid_operations_are_rejected_with_reasons_not_exceptions() -> None:
    v1 = add(b"v1", T0, WRITER)
    v2, link = update(v1.id, b"v2", T0 + 1, WRITER, "r")
    stray = WRITER.sign(Kind.UPDATE, b"\xc1garbage", T0 + 2)
    ghost = delete(bytes(32), T0 + 3, WRITER)
    stale = delete(v1.id, T0 + 4, WRITER)
    relink = WRITER.sign(Kind.UPDATE, UpdateLink(v2.id, v1.id, T0 + 5, "loop").encode(), T0 + 5)
    bad_tomb = WRITER.sign(Kind.DELETE, b"not an id", T0 + 6)
    index = RecordIndex.from_transactions(
        [v1, v2, link, link, stray, ghost, stale, relink, bad_tomb]
    )
    assert [r.reason for r in index.rejections] == [
        Reason.DUPLICATE,
        Reason.MALFORMED,
        Reason.UNKNOWN_TARGET,
        Reason.NOT_CURRENT,
        Reason.NEW_NOT_FRESH,
        Reason.MALFORMED,
    ]
    assert [v.id for v in index.current()] == [v2.id]


def test_query_transactions_carry_their_condition() -> None:
    doctor = identity(3)
    v1 = add(b"v1", T0, WRITER)
    v2, link = update(v1.id, b"v2", T0 + 100, WRITER, "r")
    cond = QueryCondition(record_ids=(v1.id,), include_history=True, from_us=T0, until_us=T0 + 50)
    tx = query(cond, T0 + 200, doctor.signing)
    assert tx.kind is Kind.QUERY and tx.public_keys == (doctor.key,)
    assert QueryCondition.decode(tx.content) == cond  # the audit trail: who asked for what
    index = RecordIndex.from_transactions([v1, v2, link, tx])
    assert [v.id for v in index.answer(cond)] == [v1.id]  # history inside the window
    assert [v.id for v in index.answer(QueryCondition(record_ids=(v1.id,)))] == [v2.id]
    with pytest.raises(RecordUsageError, match="publish"):
        QueryCondition(owner=doctor.key, record_ids=(v1.id,))
    with pytest.raises(RecordDecodeError):
        QueryCondition.decode(codec.encode({"owner": None}))


def test_legacy_import_keeps_original_time_and_is_signed_by_the_institution_alone() -> None:
    pop = population(4)
    hospital = pop.institutions[0]
    old_times = [T0 - 10 * 365 * 86_400_000_000 + k for k in range(3)]  # a decade before
    visits = [build_visit([encounter(k), observation(k)]).encode() for k in range(3)]
    imported = [
        legacy_import(hospital.signing, c, t) for c, t in zip(visits, old_times, strict=True)
    ]
    policy = SignerPolicy(affiliations(pop.registrations))
    for tx, t in zip(imported, old_times, strict=True):
        assert tx.kind is Kind.ADD and tx.timestamp_us == t
        assert tx.public_keys == (hospital.key,) and len(tx.signatures) == 1
        assert verify_transaction(tx, policy=policy).ok
    # imported after newer records, still resolved in chain order, with their own times
    newer = add(visits[0] + b"", T0 + 1, pop.writer(0))
    index = RecordIndex.from_transactions([*pop.registrations, newer, *imported])
    assert [v.tx.timestamp_us for v in index.current()] == [T0 + 1, *old_times]


def test_staff_records_need_staff_and_institution_signatures() -> None:
    pop = population(5)
    policy = SignerPolicy(affiliations(pop.registrations))
    member, inst = pop.staff[0]
    content = build_visit([encounter()]).encode()
    both = add(content, T0, Writer(member.signing, inst.signing))
    assert both.public_keys == (member.key, inst.key)
    assert verify_transaction(both, policy=policy).ok
    alone = add(content, T0, Writer(member.signing))
    problems = verify_transaction(alone, policy=policy).problems
    assert [p.problem for p in problems] == [Problem.SIGNER_NOT_LISTED]
    assert problems[0].public_key == inst.key
    unsigned = Transaction(Kind.ADD, content, T0, (member.key, inst.key))
    half = unsigned.with_signature(member.signing)
    assert [p.problem for p in verify_transaction(half, policy=policy).problems] == [
        Problem.MISSING
    ]
    tomb = delete(both.id, T0 + 1, Writer(member.signing, inst.signing))
    assert verify_transaction(tomb, policy=policy).ok


# ---------------------------------------------------------------------------------------------
# The index against a dictionary model


@dataclass
class _Rec:
    versions: list[bytes] = field(default_factory=list)
    contents: list[bytes] = field(default_factory=list)
    deleted: bool = False


OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "update", "delete", "update_old", "delete_old", "replay"]),
        st.integers(0, 3),
    ),
    max_size=25,
)


@given(OPS)
def test_index_matches_a_dictionary_model(ops: list[tuple[str, int]]) -> None:
    model: list[_Rec] = []
    expected: list[Reason] = []
    chain: list[Transaction] = []
    t = T0
    for n, (op, slot) in enumerate(ops):
        t += 1
        content = f"content {n}".encode()
        if op == "add" or not model:
            tx = add(content, t, WRITER)
            chain.append(tx)
            model.append(_Rec([tx.id], [content]))
            continue
        rec = model[slot % len(model)]
        if op == "replay":
            chain.append(chain[slot % len(chain)])
            expected.append(Reason.DUPLICATE)
            continue
        old = op.endswith("_old")
        if old and len(rec.versions) < 2:
            continue
        target = rec.versions[-2] if old else rec.versions[-1]
        reason = Reason.DELETED_TARGET if rec.deleted else Reason.NOT_CURRENT if old else None
        if op.startswith("update"):
            new, link = update(target, content, t, WRITER, "edit")
            chain += [new, link]
            if reason is None:
                rec.versions.append(new.id)
                rec.contents.append(content)
            else:  # the new version stays on chain as a record of its own
                model.append(_Rec([new.id], [content]))
        else:
            chain.append(delete(target, t, WRITER))
            if reason is None:
                rec.deleted = True
        if reason is not None:
            expected.append(reason)
    index = RecordIndex.from_transactions(chain)
    assert [v.tx.content for v in index.current()] == [
        r.contents[-1] for r in model if not r.deleted
    ]
    assert [r.reason for r in index.rejections] == expected
    for rec in model:
        hist = index.history(rec.versions[0])
        assert [v.id for v in hist] == rec.versions
        assert [v.status for v in hist] == [Status.SUPERSEDED] * (len(rec.versions) - 1) + [
            Status.DELETED if rec.deleted else Status.CURRENT
        ]
        assert all(index.lineage_of(v) == rec.versions[0] for v in rec.versions)
    # a pure function of the chain: rebuilding gives the same view
    again = RecordIndex.from_transactions(chain)
    assert again.current() == index.current() and again.rejections == index.rejections


@given(
    st.lists(
        st.tuples(st.sampled_from([Kind.ADD, Kind.UPDATE, Kind.DELETE]), st.binary(max_size=80)),
        max_size=20,
    )
)
def test_hostile_transactions_never_crash_the_index(items: list[tuple[Kind, bytes]]) -> None:
    txs = [Transaction(k, c, T0 + i, (b"k" * 32,)) for i, (k, c) in enumerate(items)]
    index = RecordIndex.from_transactions(txs)
    assert len(index.current()) <= sum(1 for k, _ in items if k is Kind.ADD)


_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=8,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "old",
                "new",
                "time_us",
                "reason",
                "owner",
                "record_ids",
                "from_us",
                "until_us",
                "include_history",
            ]
        ),
        _ANY,
        max_size=9,
    )
)
def test_hostile_links_and_queries_raise_only_decode_error(fields: dict[str, object]) -> None:
    content = codec.encode(fields)
    for decode in (UpdateLink.decode, QueryCondition.decode):
        with contextlib.suppress(RecordDecodeError):
            decode(content)


def test_an_optional_rule_refuses_changes_by_strangers() -> None:
    stranger = Writer(identity(7).signing, identity(8).signing)
    colleague = Writer(identity(9).signing, WRITER.institution)  # same hospital
    v1 = add(b"v1", T0, WRITER)
    forged_tomb = delete(v1.id, T0 + 1, stranger)
    v2, link = update(v1.id, b"v2", T0 + 2, colleague, "countersigned by the same hospital")
    chain = [v1, forged_tomb, v2, link]
    trusting = RecordIndex.from_transactions(chain)
    # trusting the chain: the stranger's tombstone deletes v1, the update link comes too late
    assert trusting.head(v1.id) is None
    assert [r.reason for r in trusting.rejections] == [Reason.DELETED_TARGET]
    guarded = RecordIndex.from_transactions(chain, may_change=same_writers)
    assert [r.reason for r in guarded.rejections] == [Reason.UNAUTHORIZED]
    assert [v.id for v in guarded.current()] == [v2.id] and guarded.head(v1.id) is not None
