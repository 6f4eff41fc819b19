"""Client API end to end: the referral walk-through, history, hiding, grants by each grantor."""

from __future__ import annotations

from medbench import codec
from medbench.access.decision import Allowed, Reason, Refused
from medbench.access.request import Operation
from medbench.access.state import RecordStatus
from medbench.crypto.envelope import open_record

from .conftest import T0, Cast

DAY = 86_400_000_000


def test_referral_walk_through(cast: Cast) -> None:
    """docs/medical-chain.md §1.7 steps 1-3: P moves from H_A to H_B and sees doctor D."""
    t = T0 + DAY
    pc = cast.patient()
    # 1. P's entity transaction: ID number and name sealed to P's key, sex and age in clear
    sealed = pc.seal_private(b"id=330101199001011234;name=Li Wei")
    entity = pc.add_own("identity", sealed, at_us=t)
    assert isinstance(entity, Allowed)
    # earlier care at H_A, under a grant P gave D2
    assert pc.grant(
        cast.D2.public_key,
        ["add"],
        categories=["visit"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 1,
    )
    assert cast.doctor(cast.D2, cast.HA).add_record(
        cast.P.public_key, "visit", b"H_A: fever, rest", at_us=t + 2
    )
    # 2. P reads their own entity record (and only P can open the sealed fields)
    d, own = pc.read_own("identity", at_us=t + 10 * 1_000_000)
    assert d and pc.open_private(own[0].content) == b"id=330101199001011234;name=Li Wei"
    # P shows the H_A visits to D by granting read + add for the referral window
    assert pc.grant(
        cast.D.public_key,
        ["read", "add"],
        not_before_us=t + DAY,
        not_after_us=t + 8 * DAY,
        at_us=t + DAY,
    )
    doc = cast.doctor()
    d, visits = doc.read(cast.P.public_key, "visit", at_us=t + DAY + 5)
    assert d and [v.content for v in visits] == [b"H_A: fever, rest"]
    # 3. D saves a diagnosis: two keys, two signatures (D and H_B)
    tx1 = doc.add_record(
        cast.P.public_key, "diagnosis", b"pneumonia; antibiotics", at_us=t + DAY + 6
    )
    assert isinstance(tx1, Allowed)
    req = cast.world.chain.log[-1][0]
    assert req.public_keys == [cast.D.public_key, cast.HB.public_key]
    assert req.kind == "add" and len(req.signatures) == 2
    # the query of step 2 was logged: D signed in clear, the patient is sealed to the validators
    (audit,) = [a for a in cast.world.state.audit if a.content.get("signer") == cast.D.public_key]
    assert "patient" not in audit.content and cast.P.public_key not in codec.encode(audit.content)
    private = open_record(cast.world.access_key, "audit", audit.content["request"],
                          audit.content["sealed"])  # fmt: skip
    assert private == {"requester": cast.D.public_key, "patient": cast.P.public_key,
                       "category": "visit"}  # fmt: skip
    # once the window closes, D is refused (and blacklisted)
    late, _ = doc.read(cast.P.public_key, at_us=t + 8 * DAY)
    assert isinstance(late, Refused) and late.reason is Reason.GRANT_EXPIRED
    assert cast.world.state.blacklist[cast.D.public_key] == 1


def test_patient_history_keeps_updated_deleted_and_hidden_versions(cast: Cast) -> None:
    t = T0 + DAY
    pc = cast.patient()
    a = pc.add_own("visit", b"v1", at_us=t)
    b = pc.add_own("lab", b"glucose 5.1", at_us=t + 1)
    c = pc.add_own("visit", b"embarrassing", at_us=t + 2)
    assert a and b and c
    e = pc.edit_own(a.request_id, b"v1 corrected", "typo", at_us=t + 3)
    assert isinstance(e, Allowed)
    assert pc.delete_own(b.request_id, at_us=t + 4)
    assert pc.hide(c.request_id, at_us=t + 5)
    d, hist = pc.read_history(at_us=t + 6)
    assert d
    got = [(v.content, s) for v, s in hist]
    assert got == [
        (b"v1", RecordStatus.UPDATED),
        (b"glucose 5.1", RecordStatus.DELETED),
        (b"embarrassing", RecordStatus.HIDDEN),
        (b"v1 corrected", RecordStatus.CURRENT),
    ]
    new = hist[3][0]
    assert new.supersedes == a.request_id and new.reason == "typo"
    # a grantee sees only current, visible versions and cannot ask for history
    assert pc.grant(cast.D.public_key, ["read"], not_before_us=t, not_after_us=t + DAY, at_us=t + 7)
    doc = cast.doctor()
    d, seen = doc.read(cast.P.public_key, at_us=t + 8)
    assert d and [v.content for v in seen] == [b"v1 corrected"]
    req = doc.request(
        Operation.READ, patient=cast.P.public_key, body={"history": True}, at_us=t + 9
    )
    refused = doc.submit(req)
    assert isinstance(refused, Refused) and refused.reason is Reason.ROLE_NOT_PERMITTED
    # a deleted record cannot be modified again
    again = pc.edit_own(b.request_id, b"x", "undo", at_us=t + 10)
    assert isinstance(again, Refused) and again.reason is Reason.UNKNOWN_RECORD
    # the patient unhides
    assert pc.hide(c.request_id, hidden=False, at_us=t + 11)
    d, seen = doc.read(cast.P.public_key, at_us=t + 12)
    assert {v.content for v in seen} == {b"v1 corrected", b"embarrassing"}


def test_doctor_modifies_and_deletes_only_inside_the_grant(cast: Cast) -> None:
    t = T0 + DAY
    pc = cast.patient()
    rec = pc.add_own("visit", b"bp 150/95", at_us=t)
    assert rec
    doc = cast.doctor()
    no = doc.modify(cast.P.public_key, rec.request_id, b"bp 130/85", "remeasured", at_us=t + 1)
    assert isinstance(no, Refused) and no.reason is Reason.NO_GRANT and no.blacklist
    g = pc.grant(
        cast.D.public_key, ["modify", "delete"], not_before_us=t, not_after_us=t + DAY, at_us=t + 2
    )
    assert g
    m = doc.modify(cast.P.public_key, rec.request_id, b"bp 130/85", "remeasured", at_us=t + 3)
    assert isinstance(m, Allowed)
    assert doc.delete(cast.P.public_key, m.request_id, at_us=t + 4)
    assert pc.revoke(g.request_id, at_us=t + 5)
    rec2 = pc.add_own("visit", b"again", at_us=t + 6)
    no = doc.delete(cast.P.public_key, rec2.request_id, at_us=t + 7)
    assert isinstance(no, Refused) and no.reason is Reason.GRANT_REVOKED


def test_grants_only_by_the_patient_and_revocation_only_by_the_grantor(cast: Cast) -> None:
    t = T0 + DAY
    q = cast.patient(cast.Q)
    d = q.request(
        Operation.GRANT,
        patient=cast.P.public_key,
        body={
            "grantee": cast.D.public_key,
            "ops": ["read"],
            "categories": ["*"],
            "not_before_us": t,
            "not_after_us": t + DAY,
        },
        at_us=t,
    )
    refused = q.submit(d)
    assert isinstance(refused, Refused) and refused.reason is Reason.NOT_GRANTOR
    g = cast.patient().grant(
        cast.D.public_key, ["read"], not_before_us=t, not_after_us=t + DAY, at_us=t + 1
    )
    assert g
    stolen = q.request(
        Operation.REVOKE, patient=cast.P.public_key, body={"grant": g.request_id}, at_us=t + 2
    )
    r = q.submit(stolen)
    assert isinstance(r, Refused) and r.reason is Reason.NOT_GRANTOR
    # nobody may be granted beyond the policy: a patient cannot hand the police a grant
    p = cast.patient().grant(
        cast.PO.public_key, ["read"], not_before_us=t, not_after_us=t + DAY, at_us=t + 3
    )
    assert isinstance(p, Refused) and p.reason is Reason.GRANT_NOT_PERMITTED
    assert p.blacklist is None  # patients are not staff
    # ... nor a doctor the right to hide
    h = cast.patient().grant(
        cast.D.public_key, ["hide"], not_before_us=t, not_after_us=t + DAY, at_us=t + 4
    )
    assert isinstance(h, Refused) and h.reason is Reason.GRANT_NOT_PERMITTED


def test_courts_and_police_read_only_after_an_authority_authorizes(cast: Cast) -> None:
    t = T0 + DAY
    assert cast.patient().add_own("visit", b"injury report", at_us=t)
    court = cast.query(cast.C)
    d, _ = court.read(cast.P.public_key, at_us=t + 1)
    assert isinstance(d, Refused) and d.reason is Reason.NO_GRANT
    hz = cast.authority(cast.HZ)
    auth = hz.authorize(
        cast.C.public_key,
        cast.P.public_key,
        ["read"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 2,
    )
    assert isinstance(auth, Allowed) and auth.grantor_kind == "authority"
    d, recs = court.read(cast.P.public_key, at_us=t + 3)
    assert d and [r.content for r in recs] == [b"injury report"]
    write = court.request(
        Operation.ADD,
        patient=cast.P.public_key,
        category="visit",
        body={"content": b"x"},
        at_us=t + 4,
    )
    w = court.submit(write)
    assert isinstance(w, Refused) and w.reason is Reason.ROLE_NOT_PERMITTED
    # an authority cannot give the police more than reading
    more = hz.authorize(
        cast.PO.public_key,
        cast.P.public_key,
        ["read", "modify"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 5,
    )
    assert isinstance(more, Refused) and more.reason is Reason.GRANT_NOT_PERMITTED
    assert hz.revoke(cast.P.public_key, auth.request_id, at_us=t + 6)
    d, _ = court.read(cast.P.public_key, at_us=t + 7)
    assert isinstance(d, Refused) and d.reason is Reason.GRANT_REVOKED


def test_family_under_patient_grant_or_authority_when_incapacitated(cast: Cast) -> None:
    t = T0 + DAY
    rec = cast.patient().add_own("visit", b"x", at_us=t)
    fam = cast.grantee(cast.F)
    assert cast.authority(cast.HZ).authorize(
        cast.F.public_key,
        cast.P.public_key,
        ["read", "hide"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 1,
    )
    d, recs = fam.read(cast.P.public_key, at_us=t + 2)
    assert d and len(recs) == 1
    h = fam.request(
        Operation.HIDE,
        patient=cast.P.public_key,
        category="visit",
        body={"record": rec.request_id, "hidden": True},
        at_us=t + 3,
    )
    assert isinstance(fam.submit(h), Allowed)


def test_admin_staff_authorize_their_own_staff_for_non_private_data(cast: Cast) -> None:
    t = T0 + DAY
    q = cast.patient(cast.Q)
    assert q.add_own("lab", b"hb 13.2", at_us=t)
    assert q.add_own("identity", b"sealed-id", at_us=t + 1)
    admin = cast.admin()
    g = admin.authorize_staff(
        cast.N.public_key,
        cast.Q.public_key,
        ["lab"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 2,
    )
    assert isinstance(g, Allowed) and g.grantor_kind == "institution"
    nurse = cast.doctor(cast.N)
    d, recs = nurse.read(cast.Q.public_key, "lab", at_us=t + 3)
    assert d and [r.content for r in recs] == [b"hb 13.2"]
    d, _ = nurse.read(cast.Q.public_key, "identity", at_us=t + 4)
    assert isinstance(d, Refused) and d.reason is Reason.NO_GRANT
    # private categories are out of reach, and so is another hospital's doctor
    p = admin.authorize_staff(
        cast.N.public_key,
        cast.Q.public_key,
        ["identity"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 5,
    )
    assert isinstance(p, Refused) and p.reason is Reason.GRANT_NOT_PERMITTED
    o = admin.authorize_staff(
        cast.D2.public_key,
        cast.Q.public_key,
        ["lab"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 6,
    )
    assert isinstance(o, Refused) and o.reason is Reason.OUT_OF_SCOPE
    assert o.blacklist is not None  # administrative staff are staff too (§1.5)
    assert admin.revoke(cast.Q.public_key, g.request_id, at_us=t + 7)
    d, _ = nurse.read(cast.Q.public_key, "lab", at_us=t + 8)
    assert isinstance(d, Refused) and d.reason is Reason.GRANT_REVOKED
