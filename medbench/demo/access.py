"""The identity and permission story of docs/medical-chain.md §1.6-§1.7 in one run.

Theory of operation
-------------------
Builds a :class:`~medbench.access.scenario.Consortium` from a seed and plays, with real
certificates, signatures, CRLs and grants: the referral of patient P from hospital H_A to doctor D
at H_B (§1.7 steps 1-3), the refused attempt after the grant window (with its blacklist record),
a court reading only after the city health authority's authorization, an emergency key release
through the KMC, a compromised key's revocation (new requests refused, the old ones still valid
as of their time), and finally the §2 contrast: a dictionary of common names against the
central-server system's name-keyed AES and against medbench's X25519 sealing.

:func:`run` returns the report as lines (tests read them); :mod:`medbench.cli.demo` prints them
as ``medbench access-demo``.
"""

from __future__ import annotations

import random
import time

from cryptography import x509

from medbench import codec
from medbench.access.clients import (
    AuthorityClient,
    DoctorClient,
    PatientClient,
    QueryClient,
)
from medbench.access.decision import Decision
from medbench.access.name_key import (
    attack_sealed,
    common_names,
    dictionary_attack,
    encrypt_with_name,
)
from medbench.access.scenario import DAY_US, GENESIS_US, YEAR_US, Consortium
from medbench.access.validator import CertificateRule, EnvelopeRule, SignatureRule, Validator
from medbench.crypto.sealing import seal


def _fmt(decision: Decision) -> str:
    if decision:
        return "allowed"
    return f"refused ({decision.reason.value})"  # type: ignore[union-attr]


def run(seed: int = 0, dictionary_size: int | None = None) -> list[str]:
    """Play the scenario and return the report lines (``dictionary_size`` caps the names)."""
    out: list[str] = []
    w = Consortium.create(seed)
    rng = random.Random(seed + 1)
    t = GENESIS_US + DAY_US
    hz = "cn/zj/hz"
    p_id = w.enroll("330101199001011234", "patient", hz, at_us=t)
    ha = w.enroll("H_A", "institution", hz, institution="H_A", at_us=t)
    hb = w.enroll("H_B", "institution", hz, institution="H_B", at_us=t)
    d2 = w.enroll("doctor-A", "doctor", hz, institution="H_A", at_us=t)
    d = w.enroll("doctor-D", "doctor", hz, institution="H_B", at_us=t)
    court_id = w.enroll("court", "court", hz, at_us=t)
    zj = w.enroll("zj-hc", "health_admin_provincial", "cn/zj", at_us=t)
    hzc = w.enroll("hz-hc", "health_admin_city", hz, at_us=t)
    nha = AuthorityClient(w.national_authority, w.chain, rng)
    nha.delegate(
        zj.public_key, "health_admin_provincial", "cn/zj", not_after_us=t + YEAR_US, at_us=t + 1
    )
    AuthorityClient(zj, w.chain, rng).delegate(
        hzc.public_key, "health_admin_city", hz, not_after_us=t + YEAR_US, at_us=t + 2
    )
    out.append(
        f"consortium: {len(w.cas)} CAs under one root, {len(w.state.identities)} "
        "registered identities, policy loaded from published bytes"
    )

    patient = PatientClient(p_id, w.chain, rng)
    doc_a = DoctorClient(d2, w.chain, rng, countersigner=ha)
    doc = DoctorClient(d, w.chain, rng, countersigner=hb)
    sealed = patient.seal_private(b"id=330101199001011234;name=Li Wei")
    out.append(
        f"1. P's entity record (ID and name sealed): "
        f"{_fmt(patient.add_own('identity', sealed, at_us=t + 10))}"
    )
    patient.grant(
        d2.public_key,
        ["add"],
        categories=["visit"],
        not_before_us=t,
        not_after_us=t + DAY_US,
        at_us=t + 11,
    )
    out.append(
        f"   H_A visit record by doctor A (+ H_A countersignature): "
        f"{_fmt(doc_a.add_record(p_id.public_key, 'visit', b'fever', at_us=t + 12))}"
    )
    dec, _ = doc.read(p_id.public_key, at_us=t + DAY_US)
    out.append(f"2. D reads P's records without a grant: {_fmt(dec)}")
    patient.grant(
        d.public_key,
        ["read", "add"],
        not_before_us=t + DAY_US,
        not_after_us=t + 8 * DAY_US,
        at_us=t + DAY_US + 1,
    )
    dec, recs = doc.read(p_id.public_key, "visit", at_us=t + DAY_US + 2)
    out.append(f"   P grants D read+add for 7 days; D reads: {_fmt(dec)}, {len(recs)} visit(s)")
    dec = doc.add_record(p_id.public_key, "diagnosis", b"pneumonia", at_us=t + DAY_US + 3)
    out.append(f"3. D saves a diagnosis signed by D and H_B: {_fmt(dec)}")
    dec, _ = doc.read(p_id.public_key, at_us=t + 9 * DAY_US)
    out.append(
        f"   D reads after the window: {_fmt(dec)}; blacklist entries for D: "
        f"{w.state.blacklist.get(d.public_key, 0)}"
    )

    court = QueryClient(court_id, w.chain, rng)
    dec, _ = court.read(p_id.public_key, at_us=t + 10 * DAY_US)
    out.append(f"court reads without authorization: {_fmt(dec)}")
    AuthorityClient(hzc, w.chain, rng).authorize(
        court_id.public_key,
        p_id.public_key,
        ["read"],
        not_before_us=t + 10 * DAY_US,
        not_after_us=t + 20 * DAY_US,
        at_us=t + 10 * DAY_US + 1,
    )
    dec, recs = court.read(p_id.public_key, at_us=t + 10 * DAY_US + 2)
    out.append(
        f"court reads after the city authority authorizes: {_fmt(dec)}, {len(recs)} record(s)"
    )
    dec, keys = AuthorityClient(hzc, w.chain, rng).emergency(
        p_id.public_key, "patient unconscious", w.kmc, at_us=t + 11 * DAY_US
    )
    out.append(
        f"emergency key release via the KMC: {_fmt(dec)}, keys match P: "
        f"{keys is not None and keys.signing_public == p_id.public_key}, "
        f"release records on chain: {len(w.state.emergency_releases)}"
    )

    w.revoke("330101199001011234", at_us=t + 12 * DAY_US)
    dec = patient.add_own("visit", b"after compromise", at_us=t + 12 * DAY_US + 1)
    still = Validator(
        [EnvelopeRule(), CertificateRule(), SignatureRule()], access_key=w.access_key
    ).check(next(r for r, _ in w.chain.log if r.requester == p_id.public_key), w.state)
    out.append(
        f"P's key revoked (CRL on chain): new request {_fmt(dec)}; "
        f"P's first transaction re-verified as of its time: {_fmt(still)}"
    )
    out.append(
        f"audit records: {len(w.state.audit)}, refusals by reason: "
        + ", ".join(
            f"{r.value}={n}"
            for r, n in sorted(w.chain.validator.refusals.items(), key=lambda kv: kv[0].value)
        )
    )

    names = common_names(dictionary_size)
    record = codec.encode({"patient": names[-1], "diagnosis": "type 2 diabetes"})
    blob = encrypt_with_name(names[-1], record, rng)
    t0 = time.perf_counter()
    hit = dictionary_attack(blob, names)
    dt = time.perf_counter() - t0
    out.append(
        f"§2 name-keyed AES vs a {len(names)}-name dictionary: key found="
        f"{hit.name is not None} after {hit.tries} tries in {dt * 1e3:.0f} ms"
    )
    sealed_rec = seal(p_id.keys.encryption_public, record, randbytes=rng.randbytes)
    t0 = time.perf_counter()
    miss = attack_sealed(sealed_rec, names)
    dt = time.perf_counter() - t0
    out.append(
        f"   same dictionary vs X25519-sealed field: opened={miss.name is not None} "
        f"after {miss.tries} tries in {dt * 1e3:.0f} ms"
    )
    cert = x509.load_der_x509_certificate(p_id.chain[0])
    out.append(
        f"P's certificate subject: {cert.subject.rfc4514_string()[:40]}... "
        "(ID number hashed, never in clear)"
    )
    return out
