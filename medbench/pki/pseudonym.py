"""Pseudonym certificates: short-lived keys a patient signs with, tied to her only under seal.

Theory of operation
-------------------
docs/medical-chain.md §3 reports HIPAA's warning that fixed, mathematically derived pseudonyms are
re-identifiable, and its answer, *dynamic anonymity*: time-limited pseudonyms against the mosaic
effect. A Medical Chain patient signs her grants, revocations and reads with her certified key
(§1.6), and that key is her name on chain: every grant she signs shows up next to the record her
doctor writes minutes later. medbench lets her sign with a **pseudonym** instead:

1. her client draws a fresh Ed25519 key (and an X25519 key, as every certificate carries one)
   and proves to the consortium's pseudonym CA that she holds both it and her certified key: her
   real key signs :func:`possession_message` (pseudonym key, her key, time);
2. the CA (:class:`PseudonymIssuer`) checks her certificate chain as of that time (a revoked or
   expired identity gets no pseudonym) and that her role is one that may act under a pseudonym
   (:data:`PSEUDONYMOUS_ROLES`: the service receivers of §1.6 — staff, courts and authorities
   sign in clear, accountable by name);
3. it issues an X.509 certificate (:func:`certify_pseudonym`) for the fresh key with role
   :data:`PSEUDONYM_ROLE`, no institution, the CA's own region, a random ``id_hash`` and a
   validity of at most :data:`MAX_LIFETIME_US`, plus the **link extension**: the holder's real
   key and identifying hash sealed to the consortium access key (:mod:`medbench.crypto.envelope`),
   bound to the pseudonym key by the associated data.

Only a key holder — a validator, the KMC — can open the link (:func:`read_link`): validators do
so for every pseudonymous request and then judge it as if the real key had signed it
(:mod:`medbench.access.validator`). To everybody else each pseudonym is an unrelated key from one
CA that certifies every patient's pseudonyms alike; the client mints one per request, so two
requests of the same patient do not even share a pseudonym.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medbench import codec
from medbench.crypto.errors import SealError
from medbench.crypto.sealing import EncryptionKey, open_sealed, seal
from medbench.pki.ca import CertificateAuthority, IssuanceError, der, raw_public, to_us
from medbench.pki.certpath import CertificateError, RevocationRegistry, verify_chain
from medbench.pki.subject import SubjectInfo

PSEUDONYM_ROLE = "pseudonym"
"""The role of every pseudonym certificate (never a role of the RBAC policy)."""

PSEUDONYMOUS_ROLES = frozenset({"patient", "family"})
"""Roles that may act under a pseudonym: service receivers (docs/medical-chain.md §1.6)."""

LINK_OID = x509.ObjectIdentifier("2.25.141567412309357880474712962087137045867")
"""OID of the sealed link extension (a UUID OID, ITU-T X.667)."""

MAX_LIFETIME_US = 86_400 * 1_000_000
"""Longest validity of a pseudonym certificate: one day."""

_LINK_INFO = b"medbench/pseudonym-link/v1"
_POP_DOMAIN = b"medbench/pseudonym-request/v1"


class PseudonymError(ValueError):
    """A certificate is not a pseudonym, or its link does not open."""


@dataclass(frozen=True, slots=True)
class PseudonymLink:
    """Whom a pseudonym stands for: the holder's real key and identifying hash."""

    principal: bytes
    id_hash: bytes


def link_aad(pseudonym_key: bytes) -> bytes:
    """Associated data of a link: binds it to the pseudonym key it was issued for."""
    return _LINK_INFO + pseudonym_key


def possession_message(pseudonym_key: bytes, holder_key: bytes, at_us: int) -> bytes:
    """What the holder's real key signs to ask for a pseudonym certificate."""
    return codec.encode([_POP_DOMAIN, pseudonym_key, holder_key, at_us])


def certify_pseudonym(
    ca: CertificateAuthority,
    access_public: bytes,
    link: PseudonymLink,
    pseudonym_key: bytes,
    pseudonym_enc: bytes,
    *,
    at_us: int,
    lifetime_us: int = MAX_LIFETIME_US,
) -> x509.Certificate:
    """The pseudonym certificate for ``pseudonym_key`` standing for ``link`` (no checks: the
    caller is the CA that already checked the holder, see :class:`PseudonymIssuer`)."""
    if not 0 < lifetime_us <= MAX_LIFETIME_US:
        raise IssuanceError("a pseudonym lives at most one day")
    box = seal(
        access_public,
        codec.encode([link.principal, link.id_hash]),
        link_aad(pseudonym_key),
        randbytes=ca.rng.randbytes,
    )
    info = SubjectInfo(PSEUDONYM_ROLE, "", ca.region, ca.rng.randbytes(32), pseudonym_enc)
    return ca.issue(
        info,
        pseudonym_key,
        not_before_us=at_us,
        not_after_us=at_us + lifetime_us,
        extensions=[x509.UnrecognizedExtension(LINK_OID, box)],
    )


def read_link(cert: x509.Certificate, access_key: EncryptionKey) -> PseudonymLink:
    """Open the link of a (verified) pseudonym certificate; raises :class:`PseudonymError`."""
    try:
        info = SubjectInfo.from_certificate(cert)
        ext = cert.extensions.get_extension_for_oid(LINK_OID).value
        key = raw_public(cert.public_key())  # type: ignore[arg-type]
    except (ValueError, TypeError, x509.ExtensionNotFound, x509.DuplicateExtension) as exc:
        raise PseudonymError(f"not a pseudonym certificate: {exc}") from None
    if info.role != PSEUDONYM_ROLE or not isinstance(ext, x509.UnrecognizedExtension):
        raise PseudonymError("not a pseudonym certificate")
    try:
        fields = codec.decode(open_sealed(access_key, ext.value, link_aad(key)))
    except (SealError, codec.DecodeError) as exc:
        raise PseudonymError(f"pseudonym link does not open: {exc}") from None
    if not (
        isinstance(fields, list)
        and len(fields) == 2
        and all(type(f) is bytes and len(f) == 32 for f in fields)
    ):
        raise PseudonymError("a pseudonym link is [principal key, id hash]")
    return PseudonymLink(fields[0], fields[1])


@dataclass(frozen=True, slots=True)
class Pseudonym:
    """A minted pseudonym: its signing key and certificate chain (leaf first, root excluded)."""

    signing: Ed25519PrivateKey
    chain: tuple[bytes, ...]

    @property
    def public_key(self) -> bytes:
        """The pseudonym's raw Ed25519 key (what the chain shows as the signer)."""
        return raw_public(self.signing)


@dataclass
class PseudonymIssuer:
    """The consortium CA that certifies pseudonyms (see the module docstring)."""

    ca: CertificateAuthority
    ca_chain: tuple[bytes, ...]
    anchors: tuple[x509.Certificate, ...]
    access_public: bytes
    lifetime_us: int = MAX_LIFETIME_US
    issued: int = 0

    def issue(
        self,
        holder_chain: tuple[bytes, ...],
        pseudonym_key: bytes,
        pseudonym_enc: bytes,
        proof: bytes,
        at_us: int,
    ) -> tuple[bytes, ...]:
        """Certify ``pseudonym_key`` for the holder of ``holder_chain``; returns its chain.

        Raises :class:`IssuanceError` if the holder's chain is not one the consortium issued,
        her role may not act under a pseudonym, or ``proof`` is not her signature over
        :func:`possession_message`. Whether her certificate is still valid (expiry, a CRL) is
        the validators' to judge as of each request's consensus time: every pseudonymous
        request carries her own chain sealed beside the pseudonym's, and a revoked or expired
        identity is refused however fresh its pseudonym.
        """
        try:
            leaf = x509.load_der_x509_certificate(holder_chain[0])
            issued_at = to_us(leaf.not_valid_before_utc)
            holder = verify_chain(holder_chain, self.anchors, issued_at, RevocationRegistry())
        except (CertificateError, ValueError, IndexError) as exc:
            raise IssuanceError(f"holder's certificate does not verify: {exc}") from None
        if holder.info.role not in PSEUDONYMOUS_ROLES:
            raise IssuanceError(f"a {holder.info.role} signs in clear, not under a pseudonym")
        try:
            Ed25519PublicKey.from_public_bytes(holder.public_key).verify(
                proof, possession_message(pseudonym_key, holder.public_key, at_us)
            )
        except (InvalidSignature, ValueError):
            raise IssuanceError("no proof of possession by the holder") from None
        link = PseudonymLink(holder.public_key, holder.info.id_hash)
        cert = certify_pseudonym(
            self.ca,
            self.access_public,
            link,
            pseudonym_key,
            pseudonym_enc,
            at_us=at_us,
            lifetime_us=self.lifetime_us,
        )
        self.issued += 1
        return (der(cert), *self.ca_chain)

    def mint(
        self,
        holder: Ed25519PrivateKey,
        holder_chain: tuple[bytes, ...],
        at_us: int,
        rng: random.Random,
    ) -> Pseudonym:
        """The client side: draw fresh keys from ``rng``, prove possession, get them certified."""
        signing = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        enc = X25519PrivateKey.from_private_bytes(rng.randbytes(32))
        key = raw_public(signing)
        proof = holder.sign(possession_message(key, raw_public(holder), at_us))
        enc_public = enc.public_key().public_bytes_raw()
        return Pseudonym(signing, self.issue(holder_chain, key, enc_public, proof, at_us))
