"""Validator rules: certificates and CRLs, signatures, countersignatures, replay, delegation."""

from __future__ import annotations

import dataclasses

from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from medbench.access.decision import Allowed, Reason, Refused
from medbench.access.request import Operation, Signature, build_request
from medbench.access.validator import CertificateRule, SignatureRule, Validator
from medbench.pki.ca import crl_draft, der
from medbench.pki.certpath import verify_chain

from .conftest import T0, Cast, make_cast

DAY = 86_400_000_000


def _grant_d(cast: Cast, ops: list[str], *, start: int, days: int = 10) -> bytes:
    d = cast.patient().grant(
        cast.D.public_key,
        ops,
        not_before_us=start,
        not_after_us=start + days * DAY,
        at_us=start,
    )
    assert isinstance(d, Allowed), d
    return d.request_id


def test_revoked_certificate_new_request_refused_old_one_still_valid(cast: Cast) -> None:
    t = T0 + DAY
    _grant_d(cast, ["read", "add"], start=t)
    doc = cast.doctor()
    old = doc.request(
        Operation.ADD,
        patient=cast.P.public_key,
        category="visit",
        body={"content": b"dx"},
        at_us=t + 100,
        countersign=True,
    )
    assert doc.submit(old)
    # the doctor's key is compromised: revoked at t + 1 day, CRL published on chain
    cast.world.revoke("doctor-D", at_us=t + DAY)
    new = doc.request(
        Operation.ADD,
        patient=cast.P.public_key,
        category="visit",
        body={"content": b"later"},
        at_us=t + DAY + 5,
        countersign=True,
    )
    refused = doc.submit(new)
    assert isinstance(refused, Refused) and refused.reason is Reason.CERT_REVOKED
    assert refused.blacklist is None  # identity not established: nothing to blame
    # the earlier transaction still verifies as of its own consensus time
    ident = verify_chain(
        old.signatures[0].cert_chain,
        cast.world.state.anchors,
        old.timestamp_us,
        cast.world.state.revocations,
    )
    assert ident.public_key == cast.D.public_key
    verifier = Validator(rules=[CertificateRule(), SignatureRule()])
    assert isinstance(verifier.check(old, cast.world.state), Allowed)
    # ... and a request dated after the revocation does not
    assert verifier.check(new, cast.world.state).reason is Reason.CERT_REVOKED  # type: ignore[union-attr]


def test_revoked_institution_blocks_countersigned_records(cast: Cast) -> None:
    t = T0 + DAY
    _grant_d(cast, ["add"], start=t)
    cast.world.revoke("H_B", at_us=t + 10_000_000)
    d = cast.doctor().add_record(cast.P.public_key, "visit", b"x", at_us=t + 20_000_000)
    assert isinstance(d, Refused) and d.reason is Reason.CERT_REVOKED


def test_revoked_intermediate_ca_revokes_everything_below(cast: Cast) -> None:
    w = cast.world
    t = T0 + DAY
    prov = w.cas["cn/zj"]
    prov.revoke(w.cas["cn/zj/hz"].cert, t)
    w.state.publish_crl(crl_draft(prov, w.ca_chain("cn/zj"), at_us=t, next_update_us=t + DAY))
    d = cast.patient().add_own("visit", b"x", at_us=t + 1)
    assert isinstance(d, Refused) and d.reason is Reason.CERT_REVOKED
    assert cast.patient().add_own("visit", b"x", at_us=t - 1_000_000)  # before: fine


def test_expired_certificate_is_refused() -> None:
    cast = make_cast(3)
    short = cast.world.enroll("short-lived", "patient", "cn/zj/hz", at_us=T0, lifetime_us=2 * DAY)
    d = cast.patient(short).add_own("visit", b"x", at_us=T0 + 3 * DAY)
    assert isinstance(d, Refused) and d.reason is Reason.CERT_EXPIRED


def test_expired_grant_is_refused_blacklisted_and_audited(cast: Cast) -> None:
    t = T0 + DAY
    _grant_d(cast, ["read"], start=t, days=1)
    doc = cast.doctor()
    ok, _ = doc.read(cast.P.public_key, "visit", at_us=t + DAY - 1)
    assert isinstance(ok, Allowed)
    late, records = doc.read(cast.P.public_key, "visit", at_us=t + DAY)
    assert isinstance(late, Refused) and late.reason is Reason.GRANT_EXPIRED and records == []
    state = cast.world.state
    assert state.blacklist[cast.D.public_key] == 1
    assert state.blacklist_records[-1].content["reason"] == "grant-expired"
    outcomes = [a.content["outcome"] for a in state.audit]
    assert outcomes[-2:] == ["allowed", "grant-expired"]


def test_grant_not_yet_valid(cast: Cast) -> None:
    t = T0 + DAY
    d = cast.patient().grant(
        cast.D.public_key, ["read"], not_before_us=t + DAY, not_after_us=t + 2 * DAY, at_us=t
    )
    assert d
    early, _ = cast.doctor().read(cast.P.public_key, at_us=t + 1)
    assert isinstance(early, Refused) and early.reason is Reason.GRANT_NOT_YET_VALID


def test_forged_signatures_are_refused_and_not_blamed_on_the_named_key(cast: Cast) -> None:
    t = T0 + DAY
    doc = cast.doctor()
    req = doc.request(
        Operation.READ,
        patient=cast.P.public_key,
        category="visit",
        body={"history": False},
        at_us=t,
    )
    sig = req.signatures[0]
    bad = bytes([sig.signature[0] ^ 1]) + sig.signature[1:]
    forged = dataclasses.replace(req, signatures=(Signature(sig.public_key, bad, sig.cert_chain),))
    d = Validator(access_key=cast.world.access_key).check(forged, cast.world.state)
    assert isinstance(d, Refused) and d.reason is Reason.BAD_SIGNATURE
    assert d.blacklist is None and d.audit is not None  # queries are audited even when forged
    # an attacker signs with its own key but presents D's key and certificate
    attacker = cast.Q.keys.signing
    stolen = build_request(
        Operation.READ,
        patient=cast.P.public_key,
        category="visit",
        timestamp_us=t,
        nonce=b"n" * 16,
        body={"history": False},
        signers=[(attacker, cast.D.chain)],
    )
    d2 = Validator(access_key=cast.world.access_key).check(stolen, cast.world.state)
    assert isinstance(d2, Refused) and d2.reason is Reason.IDENTITY_MISMATCH
    # a body changed after signing: in clear it changes the ID, so the signature no longer
    # matches; sealed, the envelope no longer holds it; a flipped envelope byte does not open
    v = Validator(access_key=cast.world.access_key)
    clear = build_request(
        Operation.READ,
        patient=cast.P.public_key,
        category="visit",
        timestamp_us=t,
        nonce=b"c" * 16,
        body={"history": False},
        signers=[(cast.D.keys.signing, cast.D.chain)],
    )
    tampered = dataclasses.replace(clear, body={"history": True})
    d3 = v.check(tampered, cast.world.state)
    assert isinstance(d3, Refused) and d3.reason is Reason.BAD_SIGNATURE
    assert req.sealed
    d4 = v.check(dataclasses.replace(req, body={"history": True}), cast.world.state)
    assert isinstance(d4, Refused) and d4.reason is Reason.SEALED_ENVELOPE
    flipped = req.envelope[:-1] + bytes([req.envelope[-1] ^ 1])
    d5 = v.check(dataclasses.replace(req, envelope=flipped), cast.world.state)
    assert isinstance(d5, Refused) and d5.reason is Reason.SEALED_ENVELOPE
    assert d4.audit is None and d5.audit is None  # nothing trustworthy to audit
    # a validator without the access key cannot judge a sealed request: a typed refusal too
    d6 = Validator().check(req, cast.world.state)
    assert isinstance(d6, Refused) and d6.reason is Reason.SEALED_ENVELOPE


def test_institution_countersignature_required_for_staff_records(cast: Cast) -> None:
    t = T0 + DAY
    _grant_d(cast, ["add", "read"], start=t)
    alone = cast.doctor()
    req = alone.request(
        Operation.ADD,
        patient=cast.P.public_key,
        category="visit",
        body={"content": b"dx"},
        at_us=t + 1,
    )
    d = alone.submit(req)
    assert isinstance(d, Refused) and d.reason is Reason.MISSING_COUNTERSIGNATURE
    wrong = cast.doctor(inst=cast.HA)  # H_A countersigns for a doctor of H_B
    d2 = wrong.add_record(cast.P.public_key, "visit", b"dx", at_us=t + 2)
    assert isinstance(d2, Refused) and d2.reason is Reason.MISSING_COUNTERSIGNATURE
    assert cast.doctor().add_record(cast.P.public_key, "visit", b"dx", at_us=t + 3)
    # reads need no countersignature
    ok, _ = alone.read(cast.P.public_key, at_us=t + 4)
    assert isinstance(ok, Allowed)


def test_independent_licensed_worker_signs_alone(cast: Cast) -> None:
    t = T0 + DAY
    ind = cast.world.enroll("doctor-indep", "doctor", "cn/zj/hz", at_us=T0)
    cast.patient().grant(ind.public_key, ["add"], not_before_us=t, not_after_us=t + DAY, at_us=t)
    d = cast.grantee(ind).add_record(cast.P.public_key, "visit", b"dx", at_us=t + 1)
    assert isinstance(d, Allowed), d


def test_replayed_request_and_reused_nonce_are_refused(cast: Cast) -> None:
    t = T0 + DAY
    pc = cast.patient()
    req = pc.request(
        Operation.ADD, patient=cast.P.public_key, category="visit", body={"content": b"x"}, at_us=t
    )
    assert pc.submit(req)
    again = pc.submit(req)
    assert isinstance(again, Refused) and again.reason is Reason.REPLAYED
    same_nonce = build_request(
        Operation.ADD,
        patient=cast.P.public_key,
        category="visit",
        timestamp_us=t + 5,
        nonce=req.nonce,
        body={"content": b"x"},
        signers=[(cast.P.keys.signing, cast.P.chain)],
    )
    d = pc.submit(same_nonce)
    assert isinstance(d, Refused) and d.reason is Reason.REPLAYED
    assert len(cast.world.state.records.history(cast.P.public_key)) == 1


def test_delegation_stays_inside_the_authority_scope(cast: Cast) -> None:
    t = T0 + DAY
    w = cast.world
    gz = w.enroll("gz-hc", "health_admin_city", "cn/gd/gz", at_us=T0)
    nb = w.enroll("nb-hc", "health_admin_city", "cn/zj/nb", at_us=T0)
    zj = cast.authority(cast.ZJ)
    # Zhejiang cannot appoint Guangzhou's city authority
    d = zj.delegate(gz.public_key, "health_admin_city", "cn/gd/gz", not_after_us=t + DAY, at_us=t)
    assert isinstance(d, Refused) and d.reason is Reason.OUT_OF_SCOPE
    # a provincial authority cannot create another provincial authority
    d = zj.delegate(
        cast.GD.public_key, "health_admin_provincial", "cn/gd", not_after_us=t + DAY, at_us=t + 1
    )
    assert isinstance(d, Refused) and d.reason is Reason.DELEGATION_NOT_PERMITTED
    # a city authority delegates nothing
    d = cast.authority(cast.HZ).delegate(
        nb.public_key, "health_admin_city", "cn/zj/nb", not_after_us=t + DAY, at_us=t + 2
    )
    assert isinstance(d, Refused) and d.reason is Reason.DELEGATION_NOT_PERMITTED
    # an authority certificate without an on-chain delegation holds no authority
    d = cast.authority(nb).authorize(
        cast.C.public_key,
        cast.P.public_key,
        ["read"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 3,
    )
    assert isinstance(d, Refused) and d.reason is Reason.NOT_AUTHORITY
    # Guangdong may not authorize a court on a Zhejiang patient
    d = cast.authority(cast.GD).authorize(
        cast.C.public_key,
        cast.P.public_key,
        ["read"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 4,
    )
    assert isinstance(d, Refused) and d.reason is Reason.OUT_OF_SCOPE
    # Zhejiang can appoint Ningbo; then Ningbo authorizes inside its city only
    assert zj.delegate(
        nb.public_key, "health_admin_city", "cn/zj/nb", not_after_us=t + DAY, at_us=t + 5
    )
    d = cast.authority(nb).authorize(
        cast.C.public_key,
        cast.P.public_key,
        ["read"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 6,
    )
    assert isinstance(d, Refused) and d.reason is Reason.OUT_OF_SCOPE  # P lives in Hangzhou


def test_revoking_a_delegation_cuts_the_authorities_below(cast: Cast) -> None:
    t = T0 + DAY
    hz = cast.authority(cast.HZ)
    ok = hz.authorize(
        cast.C.public_key,
        cast.P.public_key,
        ["read"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t,
    )
    assert isinstance(ok, Allowed)
    nha = cast.authority(cast.world.national_authority)
    zj_delegation = next(
        r.delegation_id
        for r in cast.world.state.delegations.records.values()
        if r.delegate == cast.ZJ.public_key
    )
    assert nha.revoke(b"", zj_delegation, at_us=t + 10)
    d = hz.authorize(
        cast.PO.public_key,
        cast.P.public_key,
        ["read"],
        not_before_us=t,
        not_after_us=t + DAY,
        at_us=t + 20,
    )
    assert isinstance(d, Refused) and d.reason is Reason.NOT_AUTHORITY


def test_blacklisted_staff_is_refused_outright(cast: Cast) -> None:
    t = T0 + DAY
    doc = cast.doctor()
    for i in range(3):
        d, _ = doc.read(cast.P.public_key, at_us=t + i)
        assert isinstance(d, Refused) and d.reason is Reason.NO_GRANT and d.blacklist
    _grant_d(cast, ["read"], start=t + 10)
    d, _ = doc.read(cast.P.public_key, at_us=t + 20)
    assert isinstance(d, Refused) and d.reason is Reason.BLACKLISTED
    assert d.blacklist is None  # the ban itself adds no further entry
    assert cast.world.state.blacklist[cast.D.public_key] == 3


def test_emergency_access_through_the_kmc_is_recorded(cast: Cast) -> None:
    t = T0 + DAY
    w = cast.world
    d, keys = cast.authority(cast.HZ).emergency(
        cast.P.public_key, "patient unconscious", w.kmc, at_us=t
    )
    assert isinstance(d, Allowed) and keys is not None
    assert keys.signing_public == cast.P.public_key
    assert w.state.audit[-1].content["operation"] == "emergency"
    release = w.state.emergency_releases[-1]
    assert release.kind == "query" and release.content["justification"] == d.request_id
    assert release.content["authority"] == cast.HZ.public_key
    d2, keys2 = cast.authority(cast.GD).emergency(cast.P.public_key, "dispute", w.kmc, at_us=t + 1)
    assert isinstance(d2, Refused) and d2.reason is Reason.OUT_OF_SCOPE and keys2 is None
    court = cast.query(cast.C)
    req = court.request(
        Operation.EMERGENCY, patient=cast.P.public_key, body={"reason": "x"}, at_us=t + 2
    )
    d3 = court.submit(req)
    assert isinstance(d3, Refused) and d3.reason is Reason.ROLE_NOT_PERMITTED
    assert len(w.state.emergency_releases) == 1


def test_refusal_counts_by_reason(cast: Cast) -> None:
    t = T0 + DAY
    doc = cast.doctor()
    doc.read(cast.P.public_key, at_us=t)
    doc.read(cast.P.public_key, at_us=t + 1)
    counts = cast.world.chain.validator.refusals
    assert counts[Reason.NO_GRANT] == 2


@st.composite
def _hostile(draw: st.DrawFn) -> tuple[object, ...]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-5, 1 << 40)
        | st.binary(max_size=40)
        | st.text(max_size=10)
    )
    values = st.recursive(
        scalars,
        lambda i: st.lists(i, max_size=3) | st.dictionaries(st.text(max_size=8), i, max_size=4),
        max_leaves=10,
    )
    base = {
        "op": draw(st.sampled_from([o.value for o in Operation] + ["x"])),
        "requester": draw(st.binary(min_size=31, max_size=33)),
        "patient": draw(st.binary(max_size=33)),
        "category": draw(st.text(max_size=70)),
        "nonce": draw(st.binary(min_size=15, max_size=17)),
        "body": draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "history",
                        "content",
                        "record",
                        "grantee",
                        "ops",
                        "categories",
                        "reason",
                        "not_before_us",
                        "not_after_us",
                        "grant",
                        "delegate",
                        "role",
                        "region",
                        "hidden",
                    ]
                ),
                values,
                max_size=5,
            )
        ),
    }
    content = draw(st.just(base) | values)
    kind = draw(st.sampled_from(["query", "add", "update", "delete", "grant", "revoke", "zz"]))
    n = draw(st.integers(0, 2))
    keys = [draw(st.binary(min_size=32, max_size=32)) for _ in range(n)]
    if n and isinstance(content, dict) and draw(st.booleans()):
        keys[0] = content.get("requester", keys[0])  # type: ignore[assignment]
    sigs = [draw(st.binary(min_size=63, max_size=65)) for _ in range(n)]
    chains = [tuple(draw(st.lists(st.binary(max_size=64), max_size=3))) for _ in range(n)]
    ts = draw(st.integers(-1, 1 << 63))
    return kind, content, ts, keys, sigs, chains


_HOSTILE_CAST = make_cast(11)


@given(_hostile())
def test_hostile_transactions_yield_typed_refusals(tx: tuple[object, ...]) -> None:
    kind, content, ts, keys, sigs, chains = tx
    v = Validator(access_key=_HOSTILE_CAST.world.access_key)
    d = v.check_transaction(
        _HOSTILE_CAST.world.state,
        kind,
        content,
        ts,
        keys,
        sigs,  # type: ignore[arg-type]
        chains,
    )  # type: ignore[arg-type]
    assert isinstance(d, Refused)
    assert isinstance(d.reason, Reason)


@given(st.integers(0, 400), st.integers(0, 255))
def test_bit_flips_in_the_certificate_never_crash(pos: int, flip: int) -> None:
    cast = _HOSTILE_CAST
    chain = list(cast.P.chain)
    leaf = bytearray(chain[0])
    leaf[pos % len(leaf)] ^= flip or 1
    chain[0] = bytes(leaf)
    req = build_request(
        Operation.READ,
        patient=cast.P.public_key,
        category="visit",
        timestamp_us=T0 + DAY,
        nonce=b"k" * 16,
        body={"history": False},
        signers=[(cast.P.keys.signing, tuple(chain))],
    )
    d = Validator(access_key=cast.world.access_key).check(req, cast.world.state)
    assert isinstance(d, Refused)
    assert d.reason in {
        Reason.CERT_INVALID,
        Reason.IDENTITY_MISMATCH,
        Reason.CERT_EXPIRED,
        Reason.UNKNOWN_ROLE,
    }


def test_unknown_issuer_certificate_is_refused() -> None:
    other = make_cast(99)  # a different consortium with its own root
    cast = make_cast(5)
    req = build_request(
        Operation.READ,
        patient=cast.P.public_key,
        category="visit",
        timestamp_us=T0 + DAY,
        nonce=b"u" * 16,
        body={"history": False},
        signers=[(other.P.keys.signing, other.P.chain)],
    )
    d = Validator(access_key=cast.world.access_key).check(req, cast.world.state)
    # same root *name* (both consortia are built alike), different root key
    assert isinstance(d, Refused) and d.reason is Reason.CERT_INVALID
    assert "bad-signature" in d.detail
    # a leaf presented without its intermediates does not reach a trust anchor
    bare = build_request(
        Operation.READ,
        patient=cast.P.public_key,
        category="visit",
        timestamp_us=T0 + DAY,
        nonce=b"v" * 16,
        body={"history": False},
        signers=[(cast.P.keys.signing, cast.P.chain[:1])],
    )
    d2 = Validator(access_key=cast.world.access_key).check(bare, cast.world.state)
    assert isinstance(d2, Refused) and d2.reason is Reason.CERT_INVALID
    assert "unknown-issuer" in d2.detail
    assert der(x509.load_der_x509_certificate(other.P.chain[0])) == other.P.chain[0]


@given(
    st.one_of(st.integers(), st.none(), st.binary(max_size=4), st.lists(st.integers(), max_size=2)),
    st.one_of(st.integers(), st.text(max_size=3), st.lists(st.binary(max_size=3), max_size=2)),
)
def test_transaction_fields_of_any_shape_are_refused_not_raised(chain: object, op: object) -> None:
    content = {
        "op": op,
        "requester": b"a" * 32,
        "patient": b"",
        "category": "x",
        "nonce": b"n" * 16,
        "body": {},
    }
    d = Validator().check_transaction(
        _HOSTILE_CAST.world.state, "query", content, 0, [b"a" * 32], [b"b" * 64], [chain]
    )  # type: ignore[list-item]
    assert isinstance(d, Refused) and d.reason is Reason.MALFORMED


_BODY_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 1 << 62),
    st.binary(max_size=33),
    st.text(max_size=5),
    st.lists(
        st.one_of(st.text(max_size=6), st.integers(-100, 1 << 40), st.binary(max_size=3)),
        max_size=3,
    ),
    st.sampled_from(["read", "visit", "*", "cn/zj/hz", "cn/gd/gz", "health_admin_city"]),
)
_BODY_KEYS = st.sampled_from(
    [
        "history",
        "content",
        "record",
        "grantee",
        "ops",
        "categories",
        "reason",
        "not_before_us",
        "not_after_us",
        "grant",
        "delegate",
        "role",
        "region",
        "hidden",
    ]
)


@given(
    st.sampled_from(list(Operation)),
    st.dictionaries(_BODY_KEYS, _BODY_VALUES, max_size=6),
    st.sampled_from(["P", "Q", "D", "HZ", "C", "A", "none"]),
    st.sampled_from(["P", "D", "HZ", "ZJ", "A", "C"]),
    st.sampled_from(["*", "visit", "identity", "lab"]),
    st.integers(0, 400),
)
def test_well_typed_hostile_requests_never_crash_the_validator(
    op: Operation,
    body: dict,
    target: str,
    who: str,
    category: str,
    dt: int,  # type: ignore[type-arg]
) -> None:
    cast = _HOSTILE_CAST
    patient = b"" if target == "none" else getattr(cast, target).public_key
    signer = getattr(cast, who)
    req = build_request(
        op,
        patient=patient,
        category=category,
        timestamp_us=T0 + dt * DAY,
        nonce=dt.to_bytes(16, "big"),
        body=body,
        signers=[(signer.keys.signing, signer.chain), (cast.HB.keys.signing, cast.HB.chain)],
    )
    d = Validator(access_key=cast.world.access_key).check(req, cast.world.state)
    assert isinstance(d, (Allowed, Refused))
