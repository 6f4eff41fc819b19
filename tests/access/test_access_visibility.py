"""Visibility queries: who sees Consents (grants) and the audit trail is the chain's decision
(docs/medical-chain.md §1.6, "Who sees the permissions")."""

from __future__ import annotations

import random

import pytest

from medbench.access.clients import PatientClient, _Client
from medbench.access.decision import Allowed, Reason, Refused
from medbench.access.request import (
    AUDIT_ALL,
    AUDIT_OWN,
    CONSENT_ALL,
    CONSENT_GRANTEE,
    CONSENT_OWN,
    Operation,
    build_request,
)
from medbench.access.scenario import Consortium

from .conftest import T0, Cast

DAY = 86_400_000_000
T = T0 + DAY


def _ask(
    client: _Client, scope: str, patient: bytes = b"", *, at: int = T, history: bool = False
) -> Allowed | Refused:
    req = client.request(
        Operation.READ, patient=patient, category=scope, body={"history": history}, at_us=at
    )
    return client.submit(req)


def _grant_d(cast: Cast) -> None:
    d = cast.patient().grant(
        cast.D.public_key, ["read"], not_before_us=T, not_after_us=T + DAY, at_us=T
    )
    assert isinstance(d, Allowed), d


def _reason(d: Allowed | Refused) -> Reason | None:
    return d.reason if isinstance(d, Refused) else None


def test_patient_sees_own_consents_and_audit_trail_only(cast: Cast) -> None:
    p, q = cast.patient(), cast.patient(cast.Q)
    assert isinstance(_ask(p, CONSENT_OWN, cast.P.public_key), Allowed)
    assert isinstance(_ask(p, AUDIT_OWN, cast.P.public_key, at=T + 1), Allowed)
    assert isinstance(_ask(p, AUDIT_OWN, at=T + 2), Allowed)  # her own acts, no patient named
    # another patient's key in the patient field: refused, typed, and audited like any query
    d = _ask(q, CONSENT_OWN, cast.P.public_key, at=T + 3)
    assert _reason(d) is Reason.NOT_PERMITTED and isinstance(d, Refused) and d.audit
    assert d.blacklist is None
    assert _reason(_ask(q, AUDIT_OWN, cast.P.public_key, at=T + 4)) is Reason.NOT_PERMITTED
    assert _reason(_ask(p, CONSENT_ALL, at=T + 5)) is Reason.NOT_AUTHORITY
    assert _reason(_ask(p, AUDIT_ALL, at=T + 6)) is Reason.NOT_AUTHORITY


def test_grantee_sees_the_consents_naming_them(cast: Cast) -> None:
    doc = cast.doctor()
    # no consent of P names the doctor yet: refused, and no blacklist entry for looking
    d = _ask(doc, CONSENT_GRANTEE, cast.P.public_key)
    assert _reason(d) is Reason.NOT_PERMITTED and isinstance(d, Refused) and d.blacklist is None
    _grant_d(cast)
    assert isinstance(_ask(doc, CONSENT_GRANTEE, cast.P.public_key, at=T + 1), Allowed)
    # ... of that patient only, and never as an owner or an authority
    assert _reason(_ask(doc, CONSENT_GRANTEE, cast.Q.public_key, at=T + 2)) is Reason.NOT_PERMITTED
    assert _reason(_ask(doc, CONSENT_OWN, at=T + 3)) is Reason.NOT_PERMITTED
    # a doctor's own audit trail (the queries she made) is hers to see
    assert isinstance(_ask(doc, AUDIT_OWN, at=T + 6), Allowed)
    assert _reason(_ask(doc, CONSENT_GRANTEE, at=T + 7)) is Reason.INVALID_BODY
    assert cast.world.state.blacklist.get(cast.D.public_key, 0) == 0
    # claiming an authority's view is an attempt beyond one's rights (§1.5): blacklisted
    assert _reason(_ask(doc, CONSENT_ALL, at=T + 4)) is Reason.NOT_AUTHORITY
    assert _reason(_ask(doc, AUDIT_ALL, at=T + 5)) is Reason.NOT_AUTHORITY
    assert cast.world.state.blacklist[cast.D.public_key] == 2


def test_active_authority_sees_everything(cast: Cast) -> None:
    for k, who in enumerate((cast.world.national_authority, cast.HZ, cast.GD)):
        a = cast.authority(who)
        assert isinstance(_ask(a, CONSENT_ALL, cast.P.public_key, at=T + 3 * k), Allowed)
        assert isinstance(_ask(a, AUDIT_ALL, at=T + 3 * k + 1), Allowed)
    court = cast.query(cast.C)  # courts act only through the health administration
    assert _reason(_ask(court, AUDIT_ALL, at=T + 20)) is Reason.NOT_AUTHORITY


def test_visibility_queries_are_audited_on_chain(cast: Cast) -> None:
    before = len(cast.world.state.audit)
    d = _ask(cast.patient(), AUDIT_OWN, cast.P.public_key)
    assert isinstance(d, Allowed) and d.audit is not None
    assert len(cast.world.state.audit) == before + 1
    audit = cast.world.state.audit[-1].content
    assert audit["operation"] == "read" and audit["outcome"] == "allowed"
    assert "sealed" in audit  # the scope and patient are sealed like any read's


@pytest.mark.parametrize(
    "scope", ["consent:everything", "audit:blacklist", "consent:", "audit:OWN", "consent:all "]
)
def test_forged_scopes_are_refused(cast: Cast, scope: str) -> None:
    d = _ask(cast.authority(cast.world.national_authority), scope)
    assert _reason(d) is Reason.INVALID_BODY


def test_visibility_scopes_are_never_record_categories(cast: Cast) -> None:
    p = cast.patient()
    req = p.request(Operation.ADD, patient=cast.P.public_key, category=CONSENT_OWN,
                    body={"content": b"x"}, at_us=T)  # fmt: skip
    assert _reason(p.submit(req)) is Reason.INVALID_BODY
    # a grant cannot confer a visibility scope (a doctor reading all audit records)
    d = p.grant(cast.D.public_key, ["read"], categories=[AUDIT_ALL], not_before_us=T,
                not_after_us=T + DAY, at_us=T + 1)  # fmt: skip
    assert _reason(d) is Reason.INVALID_BODY
    # a "*" grant covers records, not visibility: the doctor still sees only what names her
    assert isinstance(
        p.grant(cast.D.public_key, ["read"], not_before_us=T, not_after_us=T + DAY, at_us=T + 2),
        Allowed,
    )
    assert _reason(_ask(cast.doctor(), AUDIT_ALL, at=T + 3)) is Reason.NOT_AUTHORITY
    assert _reason(_ask(p, AUDIT_OWN, cast.P.public_key, at=T + 4, history=True)) is (
        Reason.INVALID_BODY
    )


def test_clear_and_sealed_requests_decide_alike(cast: Cast) -> None:
    """The cast's chain seals every request (patients sign under one-day pseudonyms); the
    paper's clear form reaches the same decisions."""
    world = Consortium.create(0, private=False)
    p = world.enroll("330101199001011234", "patient", "cn/zj/hz", at_us=T0)
    q = world.enroll("330101198502025678", "patient", "cn/zj/hz", at_us=T0)
    rng = random.Random(3)
    pc, qc = PatientClient(p, world.chain, rng), PatientClient(q, world.chain, rng)
    sealed_p, sealed_q = cast.patient(), cast.patient(cast.Q)
    cases = [
        (CONSENT_OWN, True, True),
        (CONSENT_OWN, False, True),
        (AUDIT_OWN, False, True),
        (AUDIT_ALL, True, False),
        ("consent:forged", True, False),
    ]
    for k, (scope, own, named) in enumerate(cases):
        clear = _ask(pc if own else qc, scope, p.public_key if named else b"", at=T + k)
        sealed = _ask(
            sealed_p if own else sealed_q, scope, cast.P.public_key if named else b"", at=T + k
        )
        assert sealed.request_id and build_request  # judged in full, not refused as malformed
        assert _reason(clear) is _reason(sealed), (scope, clear, sealed)
