"""Certificate authorities of the consortium: root, national, provincial and city CAs.

Theory of operation
-------------------
docs/medical-chain.md §1.6 (seed §2.3.2): the CA checks an applicant's credentials and issues an
X.509 certificate for the public key the KMC generated; the PKI is deployed at the national and
provincial health commissions. medbench builds one tree of Ed25519 CAs:

    consortium root (region "cn", pathLen 3)
      └ national health authority CA ("cn", pathLen 2)
          └ provincial CA ("cn/zj", pathLen 1)
              └ city CA ("cn/zj/hz", pathLen 0)  — may only issue end-entity certificates

Each CA certificate carries BasicConstraints (critical; ``pathLen`` as above), KeyUsage
``keyCertSign | cRLSign``, subject/authority key identifiers and the medbench identity extension
(:mod:`medbench.pki.subject`) whose ``region`` is the CA's scope. A CA refuses (as caller misuse,
:class:`IssuanceError`) to certify a subject outside its region or a CA below ``pathLen`` 0; the
validator (:mod:`medbench.pki.certpath`) checks the same rules independently, so a certificate
forged with a CA key that ignored them is still rejected.

Revocation is kept per CA as ``serial -> revocation time``; :meth:`CertificateAuthority.crl`
signs a full CRL (``x509.CertificateRevocationListBuilder``) with an increasing CRL number.
X.509 times have one-second resolution: medbench times (integer microseconds) are floored to the
second when written, and read back as whole seconds times 10^6.

All keys and serial numbers come from the injected ``random.Random``, and Ed25519 signatures are
deterministic, so the same seed yields byte-identical certificates.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding

from medbench.pki.drafts import TxDraft
from medbench.pki.subject import SubjectInfo, hash_identifier, region_within

CA_ROLE = "ca"
US = 1_000_000


class IssuanceError(ValueError):
    """A CA was asked to issue something its scope or path length forbids (caller misuse)."""


def to_datetime(t_us: int) -> dt.datetime:
    """Integer microseconds since the epoch -> an aware UTC datetime floored to the second."""
    return dt.datetime.fromtimestamp(t_us // US, tz=dt.UTC)


def to_us(when: dt.datetime) -> int:
    """An aware datetime (whole seconds) -> integer microseconds since the epoch."""
    return int(when.timestamp()) * US


def new_signing_key(rng: random.Random) -> Ed25519PrivateKey:
    """A fresh Ed25519 signing key whose 32 secret bytes come from ``rng``."""
    return Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))


def raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32 raw public-key bytes that identify a subject everywhere in medbench."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes_raw()


def _serial(rng: random.Random) -> int:
    # positive, 16 bytes at most, never zero (RFC 5280 §4.1.2.2)
    return rng.getrandbits(120) | (1 << 120)


def _path_length(cert: x509.Certificate) -> int | None:
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    return bc.path_length


@dataclass
class CertificateAuthority:
    """One CA: its signing key, its certificate, its scope and its revocation list."""

    key: Ed25519PrivateKey
    cert: x509.Certificate
    info: SubjectInfo
    rng: random.Random
    revoked: dict[int, int] = field(default_factory=dict)
    crl_number: int = 0

    @property
    def region(self) -> str:
        """The CA's scope in the region tree."""
        return self.info.region

    @property
    def public_key(self) -> bytes:
        """The CA's raw Ed25519 public key."""
        return raw_public(self.key)

    @property
    def cert_der(self) -> bytes:
        """The CA's certificate, DER-encoded."""
        return der(self.cert)

    @classmethod
    def create_root(
        cls,
        rng: random.Random,
        region: str = "cn",
        *,
        not_before_us: int,
        not_after_us: int,
        path_length: int = 3,
        name: str = "consortium-root",
    ) -> CertificateAuthority:
        """A self-signed consortium root CA."""
        key = new_signing_key(rng)
        info = SubjectInfo(CA_ROLE, name, region, hash_identifier(f"ca:{name}:{region}"))
        builder = _base_builder(
            info, key.public_key(), info.subject_name(), not_before_us, not_after_us, rng
        )
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=path_length), critical=True
        )
        builder = builder.add_extension(_CA_USAGE, critical=True)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        cert = builder.sign(key, None)
        return cls(key, cert, info, rng)

    def create_subordinate(
        self,
        name: str,
        region: str,
        *,
        not_before_us: int,
        not_after_us: int,
        rng: random.Random | None = None,
    ) -> CertificateAuthority:
        """A new CA one level down, scoped to ``region``, with ``pathLen`` one less than ours.

        Its key, serial and later draws come from ``rng`` (default: ours).
        """
        parent_len = _path_length(self.cert)
        if parent_len is not None and parent_len <= 0:
            raise IssuanceError(f"CA {self.info.institution!r} has pathLen 0: cannot issue CAs")
        child_len = None if parent_len is None else parent_len - 1
        own = self.rng if rng is None else rng
        key = new_signing_key(own)
        info = SubjectInfo(CA_ROLE, name, region, hash_identifier(f"ca:{name}:{region}"))
        cert = self._issue(
            info, key.public_key(), not_before_us, not_after_us, ca_len=child_len, rng=own
        )
        return CertificateAuthority(key, cert, info, own)

    def issue(
        self,
        info: SubjectInfo,
        signing_public: bytes,
        *,
        not_before_us: int,
        not_after_us: int,
        extensions: Sequence[x509.ExtensionType] = (),
    ) -> x509.Certificate:
        """An end-entity certificate binding ``info`` to the raw Ed25519 key ``signing_public``
        (``extensions`` are added non-critical, e.g. a pseudonym's sealed link)."""
        if info.role == CA_ROLE:
            raise IssuanceError("use create_subordinate to certify a CA")
        if len(info.enc_key) != 32:
            raise IssuanceError("an end-entity certificate needs an X25519 encryption key")
        pub = Ed25519PublicKey.from_public_bytes(signing_public)
        return self._issue(
            info, pub, not_before_us, not_after_us, ca_len=None, leaf=True, extensions=extensions
        )

    def _issue(
        self,
        info: SubjectInfo,
        public: Ed25519PublicKey,
        not_before_us: int,
        not_after_us: int,
        *,
        ca_len: int | None,
        leaf: bool = False,
        extensions: Sequence[x509.ExtensionType] = (),
        rng: random.Random | None = None,
    ) -> x509.Certificate:
        if not region_within(info.region, self.region):
            raise IssuanceError(f"region {info.region!r} is outside CA scope {self.region!r}")
        if not_after_us <= not_before_us:
            raise IssuanceError("empty validity window")
        builder = _base_builder(
            info, public, self.cert.subject, not_before_us, not_after_us, rng or self.rng
        )
        builder = builder.add_extension(
            x509.BasicConstraints(ca=not leaf, path_length=None if leaf else ca_len),
            critical=True,
        )
        builder = builder.add_extension(_LEAF_USAGE if leaf else _CA_USAGE, critical=True)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
            critical=False,
        )
        for ext in extensions:
            builder = builder.add_extension(ext, critical=False)
        return builder.sign(self.key, None)

    def revoke(self, cert: x509.Certificate, at_us: int) -> None:
        """Put ``cert`` (issued by this CA) on the revocation list as of ``at_us``."""
        if cert.issuer != self.cert.subject:
            raise IssuanceError("certificate was not issued by this CA")
        floor = (at_us // US) * US
        self.revoked.setdefault(cert.serial_number, floor)

    def crl(self, at_us: int, next_update_us: int) -> x509.CertificateRevocationList:
        """Sign a full CRL of every certificate revoked so far; bumps the CRL number."""
        self.crl_number += 1
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(to_datetime(at_us))
            .next_update(to_datetime(next_update_us))
            .add_extension(x509.CRLNumber(self.crl_number), critical=False)
        )
        for serial, when in sorted(self.revoked.items()):
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(to_datetime(when))
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        return builder.sign(self.key, None)


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def der(cert: x509.Certificate) -> bytes:
    """DER bytes of a certificate (the form carried in requests and on chain)."""
    return cert.public_bytes(Encoding.DER)


def _base_builder(
    info: SubjectInfo,
    public: Ed25519PublicKey,
    issuer: x509.Name,
    not_before_us: int,
    not_after_us: int,
    rng: random.Random,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(info.subject_name())
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(_serial(rng))
        .not_valid_before(to_datetime(not_before_us))
        .not_valid_after(to_datetime(not_after_us))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(info.to_extension(), critical=False)
    )


def crl_draft(
    ca: CertificateAuthority,
    issuer_chain: tuple[bytes, ...],
    *,
    at_us: int,
    next_update_us: int,
) -> TxDraft:
    """Sign ``ca``'s current CRL and wrap it as the ``revoke`` transaction that publishes it.

    ``issuer_chain`` is ``ca``'s certificate chain (its own certificate first) so that every
    replica can verify the CRL with :meth:`medbench.pki.certpath.RevocationRegistry.publish`.
    """
    crl = ca.crl(at_us, next_update_us)
    return TxDraft(
        "revoke",
        {"type": "crl", "crl": crl.public_bytes(Encoding.DER), "issuer_chain": list(issuer_chain)},
        at_us,
    )
