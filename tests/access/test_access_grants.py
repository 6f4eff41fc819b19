"""Grant evaluation equals a small reference model; GrantBook equals evaluation over the list."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from medbench.access.grants import (
    GrantBook,
    GrantRecord,
    GrantStatus,
    RevokeRecord,
    evaluate,
)

KEYS = [bytes([i]) * 32 for i in range(3)]
IDS = [bytes([0xA0 + i]) * 32 for i in range(4)]
OPS = ["read", "add", "modify", "delete", "hide"]
CATS = ["*", "visit", "lab"]
KINDS = ["patient", "authority", "institution"]


def reference(
    events: list[object],
    patient: bytes,
    grantee: bytes,
    op: str,
    category: str,
    at: int,
    kinds: set[str],
) -> GrantStatus:
    """Replay the chain literally as of ``at`` and ask each grant in turn (the paper's words)."""
    statuses = []
    for i, g in enumerate(events):
        if not isinstance(g, GrantRecord):
            continue
        if any(isinstance(e, GrantRecord) and e.grant_id == g.grant_id for e in events[:i]):
            continue  # a reused ID is not a new grant
        if g.recorded_us > at:
            continue  # not on chain as of the request
        if (g.patient, g.grantee) != (patient, grantee) or g.grantor_kind not in kinds:
            continue
        if op not in g.ops:
            continue
        if category == "*":
            if "*" not in g.categories:
                continue
        elif "*" not in g.categories and category not in g.categories:
            continue
        revoked = any(
            isinstance(e, RevokeRecord)
            and e.grant_id == g.grant_id
            and e.revoker == g.grantor
            and e.recorded_us <= at
            for e in events[i + 1 :]
        )
        if revoked:
            statuses.append(GrantStatus.REVOKED)
        elif at < g.not_before_us:
            statuses.append(GrantStatus.NOT_YET_VALID)
        elif at >= g.not_after_us:
            statuses.append(GrantStatus.EXPIRED)
        else:
            statuses.append(GrantStatus.ACTIVE)
    for s in (
        GrantStatus.ACTIVE,
        GrantStatus.REVOKED,
        GrantStatus.EXPIRED,
        GrantStatus.NOT_YET_VALID,
    ):
        if s in statuses:
            return s
    return GrantStatus.NONE


times = st.integers(0, 40)


@st.composite
def grant(draw: st.DrawFn) -> GrantRecord:
    nb = draw(times)
    return GrantRecord(
        grant_id=draw(st.sampled_from(IDS)),
        patient=draw(st.sampled_from(KEYS[:2])),
        grantor=draw(st.sampled_from(KEYS)),
        grantor_kind=draw(st.sampled_from(KINDS)),
        grantee=draw(st.sampled_from(KEYS)),
        ops=frozenset(draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=3))),
        categories=frozenset(draw(st.lists(st.sampled_from(CATS), min_size=1, max_size=2))),
        not_before_us=nb,
        not_after_us=nb + draw(st.integers(1, 20)),
        recorded_us=draw(times),
    )


revoke = st.builds(RevokeRecord, st.sampled_from(IDS), st.sampled_from(KEYS), times)
events = st.lists(st.one_of(grant(), revoke), max_size=12)
queries = st.tuples(
    st.sampled_from(KEYS[:2]),
    st.sampled_from(KEYS),
    st.sampled_from(OPS),
    st.sampled_from(CATS),
    st.integers(0, 60),
    st.sets(st.sampled_from(KINDS), min_size=1),
)


@given(events, queries)
def test_evaluate_equals_reference_model(evs: list[object], q: tuple) -> None:  # type: ignore[type-arg]
    patient, grantee, op, cat, at, kinds = q
    got = evaluate(
        evs,
        patient=patient,
        grantee=grantee,
        op=op,
        category=cat,
        at_us=at,  # type: ignore[arg-type]
        grantor_kinds=frozenset(kinds),
    )
    assert got == reference(evs, patient, grantee, op, cat, at, kinds)


@given(events, queries)
def test_grant_book_index_equals_full_evaluation(evs: list[object], q: tuple) -> None:  # type: ignore[type-arg]
    patient, grantee, op, cat, at, kinds = q
    book = GrantBook()
    for e in evs:
        if isinstance(e, GrantRecord):
            book.add_grant(e)
        else:
            book.add_revoke(e)  # type: ignore[arg-type]
    got = book.status(
        patient=patient,
        grantee=grantee,
        op=op,
        category=cat,
        at_us=at,
        grantor_kinds=frozenset(kinds),
    )
    assert got == evaluate(
        evs,
        patient=patient,
        grantee=grantee,
        op=op,
        category=cat,  # type: ignore[arg-type]
        at_us=at,
        grantor_kinds=frozenset(kinds),
    )


@given(events, queries)
def test_evaluation_is_deterministic_and_input_preserving(evs: list[object], q: tuple) -> None:  # type: ignore[type-arg]
    patient, grantee, op, cat, at, _kinds = q
    snapshot = list(evs)
    a = evaluate(evs, patient=patient, grantee=grantee, op=op, category=cat, at_us=at)  # type: ignore[arg-type]
    b = evaluate(evs, patient=patient, grantee=grantee, op=op, category=cat, at_us=at)  # type: ignore[arg-type]
    assert a == b and evs == snapshot


def _g(gid: bytes, nb: int, na: int, rec: int, **kw: object) -> GrantRecord:
    base = dict(
        grant_id=gid,
        patient=KEYS[0],
        grantor=KEYS[0],
        grantor_kind="patient",
        grantee=KEYS[1],
        ops=frozenset({"read"}),
        categories=frozenset({"*"}),
        not_before_us=nb,
        not_after_us=na,
        recorded_us=rec,
    )
    base.update(kw)
    return GrantRecord(**base)  # type: ignore[arg-type]


def _st(evs: list[object], at: int, cat: str = "visit", op: str = "read") -> GrantStatus:
    return evaluate(evs, patient=KEYS[0], grantee=KEYS[1], op=op, category=cat, at_us=at)  # type: ignore[arg-type]


def test_window_edges_and_revocation_time() -> None:
    g = _g(IDS[0], 10, 20, 5)
    assert _st([g], 4) is GrantStatus.NONE  # not on chain yet
    assert _st([g], 9) is GrantStatus.NOT_YET_VALID
    assert _st([g], 10) is GrantStatus.ACTIVE
    assert _st([g], 19) is GrantStatus.ACTIVE
    assert _st([g], 20) is GrantStatus.EXPIRED  # not_after is exclusive
    r = RevokeRecord(IDS[0], KEYS[0], 15)
    assert _st([g, r], 14) is GrantStatus.ACTIVE  # before the revocation: still valid then
    assert _st([g, r], 15) is GrantStatus.REVOKED
    forged = RevokeRecord(IDS[0], KEYS[2], 12)  # only the grantor revokes
    assert _st([g, forged], 16) is GrantStatus.ACTIVE


def test_scope_categories_and_operations() -> None:
    g = _g(IDS[1], 0, 100, 0, categories=frozenset({"lab"}), ops=frozenset({"read", "add"}))
    assert _st([g], 5, "lab") is GrantStatus.ACTIVE
    assert _st([g], 5, "visit") is GrantStatus.NONE
    assert _st([g], 5, "*") is GrantStatus.NONE  # "all records" needs an all-records grant
    assert _st([g], 5, "lab", "delete") is GrantStatus.NONE
    assert _st([g], 5, "lab", "add") is GrantStatus.ACTIVE


def test_one_active_grant_wins_over_an_expired_one() -> None:
    old = _g(IDS[0], 0, 10, 0)
    new = _g(IDS[1], 20, 40, 19)
    assert _st([old, new], 15) is GrantStatus.EXPIRED
    assert _st([old, new], 25) is GrantStatus.ACTIVE
