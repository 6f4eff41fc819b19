"""PKI: CA tree, identity extension, chain validation as of a time, path length, region, CRLs."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from medbench.pki.ca import CertificateAuthority, IssuanceError, crl_draft, der, to_datetime
from medbench.pki.certpath import CertificateError, CertReason, RevocationRegistry, verify_chain
from medbench.pki.kmc import KeyBundle
from medbench.pki.subject import SubjectInfo, hash_identifier

US = 1_000_000
DAY = 86_400 * US
T0 = 1_700_000_000 * US


class Tree:
    """root > national > zj > hz, plus gd for out-of-region checks."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        w = {"not_before_us": T0, "not_after_us": T0 + 3650 * DAY}
        self.root = CertificateAuthority.create_root(self.rng, "cn", **w)  # type: ignore[arg-type]
        self.nat = self.root.create_subordinate("nat", "cn", **w)
        self.zj = self.nat.create_subordinate("zj", "cn/zj", **w)
        self.gd = self.nat.create_subordinate("gd", "cn/gd", **w)
        self.hz = self.zj.create_subordinate("hz", "cn/zj/hz", **w)
        self.reg = RevocationRegistry()

    def leaf(
        self, ca: CertificateAuthority, region: str, ident: str = "p1", role: str = "patient"
    ) -> tuple[KeyBundle, x509.Certificate]:
        keys = KeyBundle.generate(self.rng)
        info = SubjectInfo(role, "", region, hash_identifier(ident), keys.encryption_public)
        cert = ca.issue(info, keys.signing_public, not_before_us=T0, not_after_us=T0 + 365 * DAY)
        return keys, cert

    def chain(self, cert: x509.Certificate, *cas: CertificateAuthority) -> tuple[bytes, ...]:
        return (der(cert), *(c.cert_der for c in cas))

    def verify(self, chain: tuple[bytes, ...], at: int = T0 + DAY):
        return verify_chain(chain, [self.root.cert], at, self.reg)


def _reason(fn, *a) -> CertReason:
    with pytest.raises(CertificateError) as e:
        fn(*a)
    return e.value.reason


def test_leaf_chain_verifies_and_carries_identity() -> None:
    t = Tree()
    keys, cert = t.leaf(t.hz, "cn/zj/hz", ident="330101199001011234")
    v = t.verify(t.chain(cert, t.hz, t.zj, t.nat))
    assert v.public_key == keys.signing_public
    assert v.info.role == "patient" and v.info.region == "cn/zj/hz"
    assert v.info.enc_key == keys.encryption_public
    # the ID number never appears in the certificate, only its hash
    assert b"330101199001011234" not in der(cert)
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == hash_identifier("330101199001011234").hex()
    # the root may be included at the end of the chain
    assert t.verify(t.chain(cert, t.hz, t.zj, t.nat, t.root)).public_key == keys.signing_public


def test_same_seed_same_certificates() -> None:
    a, b = Tree(3), Tree(3)
    assert a.root.cert_der == b.root.cert_der and a.hz.cert_der == b.hz.cert_der
    assert der(a.leaf(a.hz, "cn/zj/hz")[1]) == der(b.leaf(b.hz, "cn/zj/hz")[1])


def test_validity_window_against_consensus_time() -> None:
    t = Tree()
    _, cert = t.leaf(t.hz, "cn/zj/hz")
    ch = t.chain(cert, t.hz, t.zj, t.nat)
    assert _reason(t.verify, ch, T0 - 1) is CertReason.NOT_YET_VALID
    assert t.verify(ch, T0 + 365 * DAY + 999_999)  # notAfter inclusive to its second
    assert _reason(t.verify, ch, T0 + 365 * DAY + US) is CertReason.EXPIRED


def test_city_ca_cannot_issue_a_ca() -> None:
    t = Tree()
    with pytest.raises(IssuanceError):
        t.hz.create_subordinate("rogue", "cn/zj/hz", not_before_us=T0, not_after_us=T0 + DAY)
    # forge one anyway with the city CA's key, bypassing the CA object's own check
    rogue_keys = KeyBundle.generate(t.rng)
    info = SubjectInfo("ca", "rogue", "cn/zj/hz", hash_identifier("rogue"))
    rogue_cert = (
        x509.CertificateBuilder()
        .subject_name(info.subject_name())
        .issuer_name(t.hz.cert.subject)
        .public_key(rogue_keys.signing.public_key())
        .serial_number(77)
        .not_valid_before(to_datetime(T0))
        .not_valid_after(to_datetime(T0 + 10 * DAY))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(info.to_extension(), critical=False)
        .sign(t.hz.key, None)
    )
    rogue = CertificateAuthority(rogue_keys.signing, rogue_cert, info, t.rng)
    _, leaf = t.leaf(rogue, "cn/zj/hz")
    ch = (der(leaf), der(rogue_cert), t.hz.cert_der, t.zj.cert_der, t.nat.cert_der)
    assert _reason(t.verify, ch) is CertReason.PATH_TOO_LONG


def test_region_scope_is_enforced_by_issuer_and_verifier() -> None:
    t = Tree()
    keys = KeyBundle.generate(t.rng)
    info = SubjectInfo("patient", "", "cn/gd", hash_identifier("x"), keys.encryption_public)
    with pytest.raises(IssuanceError):
        t.hz.issue(info, keys.signing_public, not_before_us=T0, not_after_us=T0 + DAY)
    forged = (
        x509.CertificateBuilder()
        .subject_name(info.subject_name())
        .issuer_name(t.hz.cert.subject)
        .public_key(keys.signing.public_key())
        .serial_number(78)
        .not_valid_before(to_datetime(T0))
        .not_valid_after(to_datetime(T0 + 10 * DAY))
        .add_extension(info.to_extension(), critical=False)
        .sign(t.hz.key, None)
    )
    ch = (der(forged), t.hz.cert_der, t.zj.cert_der, t.nat.cert_der)
    assert _reason(t.verify, ch) is CertReason.OUT_OF_REGION


def test_ca_certificate_cannot_sign_requests_and_foreign_chains_fail() -> None:
    t = Tree()
    assert (
        _reason(t.verify, (t.hz.cert_der, t.zj.cert_der, t.nat.cert_der)) is CertReason.LEAF_IS_CA
    )
    _, cert = t.leaf(t.gd, "cn/gd")
    # wrong intermediate: gd's leaf presented with zj as its issuer
    assert _reason(t.verify, t.chain(cert, t.zj, t.nat)) is CertReason.BAD_SIGNATURE
    assert _reason(t.verify, (der(cert),)) is CertReason.UNKNOWN_ISSUER
    assert _reason(t.verify, (b"not a certificate",)) is CertReason.MALFORMED
    assert _reason(t.verify, ()) is CertReason.MALFORMED


def test_certificate_without_identity_or_with_other_key_types() -> None:
    t = Tree()
    keys = KeyBundle.generate(t.rng)
    plain = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")]))
        .issuer_name(t.hz.cert.subject)
        .public_key(keys.signing.public_key())
        .serial_number(79)
        .not_valid_before(to_datetime(T0))
        .not_valid_after(to_datetime(T0 + 10 * DAY))
        .sign(t.hz.key, None)
    )
    assert (
        _reason(t.verify, (der(plain), t.hz.cert_der, t.zj.cert_der, t.nat.cert_der))
        is CertReason.NO_IDENTITY
    )
    ecdsa = ec.generate_private_key(ec.SECP256R1())
    info = SubjectInfo("patient", "", "cn/zj/hz", hash_identifier("e"), keys.encryption_public)
    ec_cert = (
        x509.CertificateBuilder()
        .subject_name(info.subject_name())
        .issuer_name(t.hz.cert.subject)
        .public_key(ecdsa.public_key())
        .serial_number(80)
        .not_valid_before(dt.datetime.fromtimestamp(T0 // US, tz=dt.UTC))
        .not_valid_after(to_datetime(T0 + 10 * DAY))
        .add_extension(info.to_extension(), critical=False)
        .sign(t.hz.key, None)
    )
    assert (
        _reason(t.verify, (der(ec_cert), t.hz.cert_der, t.zj.cert_der, t.nat.cert_der))
        is CertReason.UNSUPPORTED_KEY
    )


def test_crl_revocation_applies_from_its_date_only() -> None:
    t = Tree()
    _, cert = t.leaf(t.hz, "cn/zj/hz")
    ch = t.chain(cert, t.hz, t.zj, t.nat)
    r = T0 + 5 * DAY
    t.hz.revoke(cert, r)
    draft = crl_draft(
        t.hz, (t.hz.cert_der, t.zj.cert_der, t.nat.cert_der), at_us=r, next_update_us=r + DAY
    )
    assert draft.kind == "revoke" and draft.type == "crl"
    assert t.reg.publish(draft.content["crl"], draft.content["issuer_chain"], [t.root.cert]) == 1
    assert t.verify(ch, r - 1)  # earlier transactions remain valid as of their time
    assert _reason(t.verify, ch, r) is CertReason.REVOKED
    # republishing (or an older CRL) never un-revokes
    empty = CertificateAuthority(t.hz.key, t.hz.cert, t.hz.info, t.rng)
    old = empty.crl(r - DAY, r)
    from cryptography.hazmat.primitives.serialization import Encoding

    assert (
        t.reg.publish(old.public_bytes(Encoding.DER), draft.content["issuer_chain"], [t.root.cert])
        == 0
    )
    assert _reason(t.verify, ch, r + DAY) is CertReason.REVOKED


def test_crl_must_come_from_the_issuing_ca() -> None:
    t = Tree()
    _, cert = t.leaf(t.hz, "cn/zj/hz")
    t.hz.revoke(cert, T0 + DAY)
    crl = t.hz.crl(T0 + DAY, T0 + 2 * DAY)
    from cryptography.hazmat.primitives.serialization import Encoding

    blob = crl.public_bytes(Encoding.DER)
    with pytest.raises(CertificateError) as e:
        t.reg.publish(blob, (t.gd.cert_der, t.nat.cert_der), [t.root.cert])
    assert e.value.reason is CertReason.UNKNOWN_ISSUER
    tampered = bytearray(blob)
    tampered[-5] ^= 0xFF
    with pytest.raises(CertificateError) as e:
        t.reg.publish(
            bytes(tampered), (t.hz.cert_der, t.zj.cert_der, t.nat.cert_der), [t.root.cert]
        )
    assert e.value.reason in {CertReason.BAD_SIGNATURE, CertReason.MALFORMED}
    with pytest.raises(CertificateError):
        t.reg.publish(b"junk", (t.hz.cert_der,), [t.root.cert])
    assert t.reg.entries == {}


def test_leaf_key_usage_must_allow_signatures() -> None:
    t = Tree()
    keys = KeyBundle.generate(t.rng)
    info = SubjectInfo("patient", "", "cn/zj/hz", hash_identifier("k"), keys.encryption_public)
    enc_only = (
        x509.CertificateBuilder()
        .subject_name(info.subject_name())
        .issuer_name(t.hz.cert.subject)
        .public_key(keys.signing.public_key())
        .serial_number(81)
        .not_valid_before(to_datetime(T0))
        .not_valid_after(to_datetime(T0 + 10 * DAY))
        .add_extension(
            x509.KeyUsage(False, False, False, False, True, False, False, False, False),
            critical=True,
        )
        .add_extension(info.to_extension(), critical=False)
        .sign(t.hz.key, None)
    )
    ch = (der(enc_only), t.hz.cert_der, t.zj.cert_der, t.nat.cert_der)
    assert _reason(t.verify, ch) is CertReason.KEY_USAGE
