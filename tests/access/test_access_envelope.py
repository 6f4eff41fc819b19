"""Sealed requests and pseudonyms: what an outside observer sees, what the validators open.

The world of :mod:`conftest` seals every request to the consortium access key and lets P sign
under one-day pseudonyms. These tests check the envelope and the pseudonym machinery directly,
including hostile envelopes and pseudonyms that lie about whom they stand for.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench import codec
from medbench.access.decision import Allowed, Reason, Refused
from medbench.access.request import Operation, build_request, from_transaction_fields
from medbench.access.validator import Validator
from medbench.crypto.envelope import (
    EnvelopeError,
    envelope_aad,
    open_envelope,
    open_record,
    pad,
    seal_envelope,
    seal_record,
)
from medbench.crypto.sealing import EncryptionKey
from medbench.pki.ca import IssuanceError, der
from medbench.pki.pseudonym import (
    LINK_OID,
    PSEUDONYM_ROLE,
    PseudonymError,
    PseudonymLink,
    certify_pseudonym,
    possession_message,
    read_link,
)
from medbench.pki.subject import SubjectInfo

from .conftest import T0, Cast, make_cast

DAY = 86_400_000_000


def _grant(cast: Cast, at: int) -> Allowed:
    d = cast.patient().grant(
        cast.D.public_key, ["read"], not_before_us=at, not_after_us=at + DAY, at_us=at
    )
    assert isinstance(d, Allowed), d
    return d


def test_padding_is_a_power_of_two_and_round_trips() -> None:
    sizes = set()
    for n in (0, 1, 100, 400, 600, 5000):
        plain = pad({"x": b"a" * n})
        assert len(plain) & (len(plain) - 1) == 0 and len(plain) >= 512
        sizes.add(len(plain))
        key = EncryptionKey.generate(bytes(32))
        box = seal_envelope(
            key.public, {"x": b"a" * n}, b"aad", randbytes=random.Random(n).randbytes
        )
        assert open_envelope(key, box, b"aad") == {"x": b"a" * n}
    assert min(sizes) == 512 and len(sizes) == 3  # 512, 1024, 8192


def test_an_envelope_opens_only_with_the_access_key_and_its_own_clear_fields() -> None:
    key, other = EncryptionKey.generate(bytes(32)), EncryptionKey.generate(b"\x01" * 32)
    aad = envelope_aad("grant", "grant", b"s" * 32, b"n" * 16)
    box = seal_envelope(key.public, {"patient": b"p" * 32}, aad)
    assert open_envelope(key, box, aad) == {"patient": b"p" * 32}
    for k, b, a in (
        (other, box, aad),  # another key
        (key, box[:-1] + bytes([box[-1] ^ 1]), aad),  # a flipped bit
        (key, box, envelope_aad("grant", "grant", b"t" * 32, b"n" * 16)),  # another signer
        (None, box, aad),  # a node without the key
        (key, "not bytes", aad),
    ):
        with pytest.raises(EnvelopeError):
            open_envelope(k, b, a)  # type: ignore[arg-type]


def test_record_seals_are_the_same_on_every_replica_and_open_only_with_the_key() -> None:
    key = EncryptionKey.generate(bytes(32))
    replica = EncryptionKey.from_raw(key.private_raw())  # another validator's copy
    rid = b"r" * 32
    a = seal_record(key, "audit", rid, {"patient": b"p" * 32})
    assert a == seal_record(replica, "audit", rid, {"patient": b"p" * 32})
    assert a != seal_record(key, "audit", b"q" * 32, {"patient": b"p" * 32})
    assert a != seal_record(key, "blacklist", rid, {"patient": b"p" * 32})
    assert b"p" * 32 not in a
    assert open_record(replica, "audit", rid, a) == {"patient": b"p" * 32}
    with pytest.raises(EnvelopeError):
        open_record(EncryptionKey.generate(b"\x02" * 32), "audit", rid, a)
    with pytest.raises(EnvelopeError):
        open_record(key, "blacklist", rid, a)


def test_the_patient_signs_under_fresh_pseudonyms_and_validators_see_her(cast: Cast) -> None:
    t = T0 + DAY
    _grant(cast, t)
    req, decision = cast.world.chain.log[-1]
    assert isinstance(decision, Allowed)
    # outside view: the wire form names neither P's key nor D's (the grantee)
    wire = req.content_bytes + b"".join(req.public_keys)
    for key in (cast.P.public_key, cast.D.public_key, cast.P.keys.encryption_public):
        assert key not in wire
    assert set(req.content) == {"op", "signer", "nonce", "envelope"}
    assert req.signer != cast.P.public_key and req.requester == cast.P.public_key
    # the chain state is what a clear grant would have left
    (g,) = cast.world.state.grants.by_id.values()
    assert (g.patient, g.grantor, g.grantee) == (cast.P.public_key,) * 2 + (cast.D.public_key,)
    # every request gets its own pseudonym, and the pseudonym certificate hides its holder
    _grant(cast, t + 1)
    second = cast.world.chain.log[-1][0]
    assert second.signer != req.signer
    cert = __import__("cryptography.x509", fromlist=["x"]).load_der_x509_certificate(
        req.signatures[0].cert_chain[0]
    )
    info = SubjectInfo.from_certificate(cert)
    assert info.role == PSEUDONYM_ROLE and info.region == "cn" and info.institution == ""
    assert info.id_hash != cast.P.info.id_hash and cast.P.public_key not in der(cert)
    link = read_link(cert, cast.world.access_key)
    assert link == PseudonymLink(cast.P.public_key, cast.P.info.id_hash)
    with pytest.raises(PseudonymError):
        read_link(cert, EncryptionKey.generate(b"\x03" * 32))


def test_validators_with_the_key_decide_alike_and_without_it_refuse(cast: Cast) -> None:
    t = T0 + DAY
    _grant(cast, t)
    req = cast.doctor().request(
        Operation.READ, patient=cast.P.public_key, body={"history": False}, at_us=t + 5
    )
    replica = Validator(access_key=EncryptionKey.from_raw(cast.world.access_key.private_raw()))
    a = Validator(access_key=cast.world.access_key).check(req, cast.world.state)
    b = replica.check(req, cast.world.state)
    assert isinstance(a, Allowed) and a == b and a.audit == b.audit
    sigs, chains = [s.signature for s in req.signatures], [s.cert_chain for s in req.signatures]
    back = from_transaction_fields(
        req.kind_code, req.content_bytes, req.timestamp_us, req.public_keys, sigs, chains,
        access_key=cast.world.access_key,
    )  # fmt: skip
    assert back == req
    refused = Validator().check_transaction(
        cast.world.state, req.kind, req.content_bytes, req.timestamp_us, req.public_keys, sigs,
        chains,
    )  # fmt: skip
    assert isinstance(refused, Refused) and refused.reason is Reason.SEALED_ENVELOPE


def test_a_pseudonym_that_stands_for_someone_else_is_refused(cast: Cast) -> None:
    t = T0 + DAY
    _grant(cast, t)
    issuer = cast.world.pseudonyms
    rng = random.Random(5)
    # Q mints an honest pseudonym of her own, then claims to be P behind it
    q_nym = issuer.mint(cast.Q.keys.signing, cast.Q.chain, t, rng)
    lie = build_request(
        Operation.READ,
        patient=cast.P.public_key,
        category="*",
        timestamp_us=t + 1,
        nonce=b"q" * 16,
        body={"history": True},
        signers=[(q_nym.signing, q_nym.chain)],
        access_public=cast.world.access_key.public,
        requester=cast.P.public_key,
        principal_chain=cast.P.chain,
    )
    d = Validator(access_key=cast.world.access_key).check(lie, cast.world.state)
    assert isinstance(d, Refused) and d.reason is Reason.PSEUDONYM_INVALID
    # ... or names her own chain behind P's pseudonym she does not hold: no proof, no pseudonym
    with pytest.raises(IssuanceError):
        issuer.issue(cast.P.chain, q_nym.public_key, b"e" * 32, b"x" * 64, t)
    # staff, courts and authorities get no pseudonym: they sign in clear
    with pytest.raises(IssuanceError, match="signs in clear"):
        issuer.mint(cast.D.keys.signing, cast.D.chain, t, rng)
    # a pseudonym certificate living longer than a day is refused by the validators
    long = _long_lived(cast, t, rng)
    req = build_request(
        Operation.READ,
        patient=cast.P.public_key,
        category="*",
        timestamp_us=t + 2,
        nonce=b"l" * 16,
        body={"history": False},
        signers=long,
        access_public=cast.world.access_key.public,
        requester=cast.P.public_key,
        principal_chain=cast.P.chain,
    )
    d2 = Validator(access_key=cast.world.access_key).check(req, cast.world.state)
    assert isinstance(d2, Refused) and d2.reason is Reason.PSEUDONYM_INVALID
    assert "one day" in d2.detail


def _long_lived(cast: Cast, t: int, rng: random.Random) -> list:  # type: ignore[type-arg]
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    issuer = cast.world.pseudonyms
    key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
    pub = key.public_key().public_bytes_raw()
    good = certify_pseudonym(
        issuer.ca,
        issuer.access_public,
        PseudonymLink(cast.P.public_key, cast.P.info.id_hash),
        pub,
        b"e" * 32,
        at_us=t,
    )
    link = good.extensions.get_extension_for_oid(LINK_OID).value
    info = SubjectInfo(PSEUDONYM_ROLE, "", "cn", rng.randbytes(32), b"e" * 32)
    cert = issuer.ca.issue(
        info, pub, not_before_us=t, not_after_us=t + 30 * DAY,
        extensions=[x509.UnrecognizedExtension(LINK_OID, link.value)],
    )  # fmt: skip
    return [(key, (der(cert), *issuer.ca_chain))]


def test_a_pseudonym_on_a_clear_request_is_refused(cast: Cast) -> None:
    nym = cast.world.pseudonyms.mint(cast.P.keys.signing, cast.P.chain, T0, random.Random(1))
    clear = build_request(
        Operation.READ,
        patient=b"",
        category="*",
        timestamp_us=T0 + 1,
        nonce=b"c" * 16,
        body={"history": False},
        signers=[(nym.signing, nym.chain)],
    )
    d = Validator(access_key=cast.world.access_key).check(clear, cast.world.state)
    assert isinstance(d, Refused) and d.reason is Reason.PSEUDONYM_INVALID
    msg = possession_message(nym.public_key, cast.P.public_key, T0)
    assert msg != possession_message(nym.public_key, cast.P.public_key, T0 + 1)


_HOSTILE = make_cast(13)
_SAMPLE = _HOSTILE.doctor().request(
    Operation.READ, patient=_HOSTILE.P.public_key, body={"history": False}, at_us=T0 + 1
)


@settings(max_examples=60, deadline=None)
@given(
    envelope=st.one_of(
        st.binary(max_size=200),
        st.integers(0, 600).map(lambda i: _SAMPLE.envelope[:i]),
        st.tuples(st.integers(0, len(_SAMPLE.envelope) - 1), st.integers(1, 255)).map(
            lambda p: (
                _SAMPLE.envelope[: p[0]]
                + bytes([_SAMPLE.envelope[p[0]] ^ p[1]])
                + _SAMPLE.envelope[p[0] + 1 :]
            )
        ),
        st.integers(-(1 << 63), (1 << 63) - 1),
        st.none(),
    ),
    signer=st.one_of(st.just(_SAMPLE.signer), st.binary(max_size=40), st.integers(0, 9)),
)
def test_hostile_envelopes_get_typed_refusals_never_raise(envelope: object, signer: object) -> None:
    content = {**_SAMPLE.content, "envelope": envelope, "signer": signer}
    sigs = [s.signature for s in _SAMPLE.signatures]
    chains = [s.cert_chain for s in _SAMPLE.signatures]
    d = Validator(access_key=_HOSTILE.world.access_key).check_transaction(
        _HOSTILE.world.state, "query", codec.encode(content), T0 + 1, _SAMPLE.public_keys, sigs,
        chains,
    )  # fmt: skip
    assert isinstance(d, Refused)
    if envelope == _SAMPLE.envelope and signer == _SAMPLE.signer:
        assert d.reason is Reason.NO_GRANT  # the untouched request, judged as usual
        return
    assert d.reason in (Reason.SEALED_ENVELOPE, Reason.MALFORMED, Reason.BAD_SIGNATURE)
    assert d.audit is None and d.blacklist is None


def test_swapping_in_another_requests_envelope_is_refused(cast: Cast) -> None:
    doc = cast.doctor()
    a = doc.request(Operation.READ, patient=cast.P.public_key, body={"history": False}, at_us=T0)
    b = doc.request(Operation.READ, patient=cast.Q.public_key, body={"history": False}, at_us=T0)
    swapped = dataclasses.replace(a, envelope=b.envelope, patient=cast.Q.public_key)
    d = Validator(access_key=cast.world.access_key).check(swapped, cast.world.state)
    assert isinstance(d, Refused) and d.reason is Reason.SEALED_ENVELOPE  # nonce differs (aad)


def test_a_pseudonym_from_another_consortium_ca_is_refused(cast: Cast) -> None:
    """Defect 1 of issue 13: the validator checked a pseudonym's chain to the root, its lifetime
    and its sealed link, but not that the consortium's pseudonym issuer signed it; a city CA
    that certifies doctors could mint a pseudonym for any patient and sign grants in her name.
    Only the CAs the published policy names as pseudonym issuers are believed."""
    t = T0 + DAY
    city = cast.world.cas["cn/zj/hz"]
    rng = random.Random(11)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
    cert = certify_pseudonym(
        city,  # not the pseudonym CA: the city CA of Hangzhou
        cast.world.access_key.public,
        PseudonymLink(cast.P.public_key, cast.P.info.id_hash),  # it claims to be P
        key.public_key().public_bytes_raw(),
        b"e" * 32,
        at_us=t,
    )
    forged_chain = (der(cert), *cast.world.ca_chain("cn/zj/hz"))
    grant = build_request(
        Operation.GRANT,
        patient=cast.P.public_key,
        category="*",
        timestamp_us=t + 1,
        nonce=b"g" * 16,
        body={
            "grantee": cast.Q.public_key,
            "ops": ["read"],
            "not_before_us": t,
            "not_after_us": t + DAY,
        },
        signers=[(key, forged_chain)],
        access_public=cast.world.access_key.public,
        requester=cast.P.public_key,
        principal_chain=cast.P.chain,
    )
    d = Validator(access_key=cast.world.access_key).check(grant, cast.world.state)
    assert isinstance(d, Refused) and d.reason is Reason.PSEUDONYM_INVALID, d
    assert "pseudonym CA" in d.detail
    # the same grant under a pseudonym the real issuer certified passes this rule
    nym = cast.world.pseudonyms.mint(cast.P.keys.signing, cast.P.chain, t, rng)
    ok = build_request(
        Operation.GRANT,
        patient=cast.P.public_key,
        category="*",
        timestamp_us=t + 2,
        nonce=b"h" * 16,
        body={
            "grantee": cast.Q.public_key,
            "ops": ["read"],
            "not_before_us": t,
            "not_after_us": t + DAY,
        },
        signers=[(nym.signing, nym.chain)],
        access_public=cast.world.access_key.public,
        requester=cast.P.public_key,
        principal_chain=cast.P.chain,
    )
    d2 = Validator(access_key=cast.world.access_key).check(ok, cast.world.state)
    assert not (isinstance(d2, Refused) and d2.reason is Reason.PSEUDONYM_INVALID), d2


def test_a_policy_without_pseudonym_issuers_accepts_no_pseudonym(cast: Cast) -> None:
    from medbench.access.rbac import Policy, PolicyError, default_policy_document

    assert not Policy.from_document(default_policy_document()).is_pseudonym_issuer(b"k" * 32)
    doc = default_policy_document(pseudonym_issuers=[b"k" * 32])
    assert Policy.from_document(doc).is_pseudonym_issuer(b"k" * 32)
    doc["pseudonym_issuers"] = [b"short"]
    with pytest.raises(PolicyError, match="pseudonym_issuers"):
        Policy.from_document(doc)
