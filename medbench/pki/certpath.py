"""Certificate-chain validation and the revocation registry fed by published CRLs.

Theory of operation
-------------------
docs/medical-chain.md §1.6 (seed §2.3.2 step 6): a receiver checks the sender's identity with the CA
and the CRL *before* checking the message signature. :func:`verify_chain` does the CA part for one
certificate chain (leaf first, optionally ending in the root) against the consortium's trust
anchors, all **as of the request's consensus time** ``at_us`` (never a wall clock):

1. every certificate parses, has the medbench identity extension and an Ed25519 key;
2. each certificate is directly issued by the next one (issuer name and signature), the last by a
   trust anchor; the issuer has BasicConstraints ``cA`` and KeyUsage ``keyCertSign``;
3. ``pathLen``: a CA may have at most ``pathLen`` CA certificates below it in the chain, so a city
   CA (``pathLen`` 0) cannot have issued a CA;
4. every certificate's subject region lies inside its issuer's region (delegation stays in scope);
5. every certificate (anchors included) is inside its validity window at ``at_us``;
6. no certificate of the chain is revoked *as of* ``at_us``: a revocation dated ``R`` refuses
   requests with consensus time ``>= R`` and leaves earlier ones verifiable (§1.6: a compromised
   key is revoked; what it signed before stays valid as of its time).

Failures raise :class:`CertificateError` carrying a :class:`CertReason`; nothing else escapes for
any input bytes. Rules 1-4 do not depend on time or CRLs, so their outcome is memoized per
distinct chain (an LRU of :data:`STATIC_CACHE_SIZE` entries, failures included); rules 5-6 are
evaluated for every request.

:class:`RevocationRegistry` is the chain state of revocations: a CRL enters it only after its
signature is checked against a validated CA chain (:meth:`RevocationRegistry.publish`); entries
from successive CRLs of a CA are merged and the earliest date of a serial wins, so publishing an
older CRL again can never un-revoke a certificate.
"""

from __future__ import annotations

import enum
import functools
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.utils import CryptographyDeprecationWarning

from medbench.pki.ca import to_us
from medbench.pki.subject import IdentityError, SubjectInfo, region_within

MAX_CHAIN = 8
MAX_CERT_BYTES = 16 * 1024
STATIC_CACHE_SIZE = 4096


class CertReason(enum.Enum):
    """Why a certificate chain or a CRL was refused."""

    MALFORMED = "malformed"
    NO_IDENTITY = "no-identity"
    UNSUPPORTED_KEY = "unsupported-key"
    UNKNOWN_ISSUER = "unknown-issuer"
    BAD_SIGNATURE = "bad-signature"
    NOT_A_CA = "not-a-ca"
    PATH_TOO_LONG = "path-too-long"
    LEAF_IS_CA = "leaf-is-ca"
    KEY_USAGE = "key-usage"
    OUT_OF_REGION = "out-of-region"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


class CertificateError(Exception):
    """A chain or CRL failed validation; ``reason`` says which rule."""

    def __init__(self, reason: CertReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """A leaf certificate that passed :func:`verify_chain`, with what it certifies."""

    public_key: bytes
    info: SubjectInfo
    serial: int
    issuer: bytes
    cert: x509.Certificate
    issuer_key: bytes = b""
    """Raw Ed25519 key of the CA that signed the leaf (who vouches for this subject)."""


_PARSE_ERRORS = (
    ValueError,
    TypeError,
    OverflowError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
)
"""What lazily parsed certificate / CRL fields raise on hostile DER."""


def _name_key(name: x509.Name) -> bytes:
    return name.public_bytes()


@dataclass
class RevocationRegistry:
    """Revocations in force on chain: (issuer name, serial) -> revocation time in µs."""

    entries: dict[tuple[bytes, int], int] = field(default_factory=dict)
    crl_numbers: dict[bytes, int] = field(default_factory=dict)

    def revoked_at(self, cert: x509.Certificate) -> int | None:
        """When ``cert`` was revoked (µs), or ``None`` if it is not on any published CRL."""
        return self.entries.get((_name_key(cert.issuer), cert.serial_number))

    def is_revoked(self, cert: x509.Certificate, at_us: int) -> bool:
        """Whether ``cert`` counts as revoked for a request with consensus time ``at_us``."""
        when = self.revoked_at(cert)
        return when is not None and at_us >= when

    def publish(
        self,
        crl_der: bytes,
        issuer_chain: Sequence[bytes],
        anchors: Sequence[x509.Certificate],
    ) -> int:
        """Verify a CRL against its issuer's CA chain and merge it; returns the new entries.

        ``issuer_chain`` is the issuing CA's certificate first, up to (optionally) the root.
        Raises :class:`CertificateError` if the CRL or its issuer does not verify.
        """
        try:
            return self._publish(crl_der, issuer_chain, anchors)
        except CertificateError:
            raise
        except _PARSE_ERRORS as exc:
            raise CertificateError(CertReason.MALFORMED, f"CRL: {exc}") from None

    def _publish(
        self,
        crl_der: bytes,
        issuer_chain: Sequence[bytes],
        anchors: Sequence[x509.Certificate],
    ) -> int:
        try:
            crl = x509.load_der_x509_crl(crl_der)
        except ValueError as exc:
            raise CertificateError(CertReason.MALFORMED, f"CRL: {exc}") from None
        at_us = to_us(crl.last_update_utc)
        issuer = _walk(issuer_chain, anchors, at_us, self, leaf_is_ca=True).leaf
        if crl.issuer != issuer.subject:
            raise CertificateError(CertReason.UNKNOWN_ISSUER, "CRL issuer is not the given CA")
        pub = issuer.public_key()
        if not isinstance(pub, Ed25519PublicKey) or not crl.is_signature_valid(pub):
            raise CertificateError(CertReason.BAD_SIGNATURE, "CRL signature does not verify")
        key = _name_key(crl.issuer)
        try:
            number_ext = crl.extensions.get_extension_for_class(x509.CRLNumber)
            number = number_ext.value.crl_number
        except (x509.ExtensionNotFound, ValueError):
            number = 0
        self.crl_numbers[key] = max(self.crl_numbers.get(key, 0), number)
        added = 0
        for entry in _entries(crl):
            slot = (key, entry.serial_number)
            when = to_us(entry.revocation_date_utc)
            if slot not in self.entries:
                added += 1
            self.entries[slot] = min(when, self.entries.get(slot, when))
        return added


def _entries(crl: x509.CertificateRevocationList) -> Iterable[x509.RevokedCertificate]:
    try:
        return list(crl)
    except ValueError as exc:
        raise CertificateError(CertReason.MALFORMED, f"CRL entries: {exc}") from None


def _load(chain: Sequence[bytes]) -> list[x509.Certificate]:
    if not 1 <= len(chain) <= MAX_CHAIN:
        raise CertificateError(CertReason.MALFORMED, f"chain length {len(chain)}")
    certs = []
    for blob in chain:
        if not isinstance(blob, bytes) or len(blob) > MAX_CERT_BYTES:
            raise CertificateError(CertReason.MALFORMED, "certificate is not bytes or too big")
        try:
            with warnings.catch_warnings():
                # non-positive serials only warn today; they are refused below either way
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                cert = x509.load_der_x509_certificate(blob)
                serial = cert.serial_number
        except ValueError as exc:
            raise CertificateError(CertReason.MALFORMED, str(exc)) from None
        if serial <= 0:
            raise CertificateError(CertReason.MALFORMED, "serial number is not positive")
        certs.append(cert)
    return certs


def _basic(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:
        raise CertificateError(CertReason.MALFORMED, f"extensions: {exc}") from None


def _can_sign_certs(cert: x509.Certificate) -> bool:
    bc = _basic(cert)
    if bc is None or not bc.ca:
        return False
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bool(ku.key_cert_sign)


def _can_sign_messages(cert: x509.Certificate) -> bool:
    """An end-entity key signs requests unless its KeyUsage leaves out digitalSignature."""
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return bool(ku.digital_signature)


def _info(cert: x509.Certificate) -> SubjectInfo:
    try:
        return SubjectInfo.from_certificate(cert)
    except IdentityError as exc:
        raise CertificateError(CertReason.NO_IDENTITY, str(exc)) from None


@dataclass(frozen=True, slots=True)
class _Path:
    """The time-independent result of validating a chain: what is left to check per request."""

    leaf: x509.Certificate
    identity: VerifiedIdentity | None  # what an end-entity chain certifies (None for a CA)
    windows: tuple[tuple[int, int, int], ...]  # (not_before_us, not_after_us, serial) per cert
    revocable: tuple[tuple[bytes, int], ...]  # (issuer name, serial) of all but the anchor


def _walk(
    chain: Sequence[bytes],
    anchors: Sequence[x509.Certificate],
    at_us: int,
    registry: RevocationRegistry,
    *,
    leaf_is_ca: bool,
) -> _Path:
    if not isinstance(chain, (tuple, list)) or not all(type(b) is bytes for b in chain):
        raise CertificateError(CertReason.MALFORMED, "a chain is a sequence of DER bytes")
    found = _static(tuple(chain), tuple(anchors), leaf_is_ca)
    if isinstance(found, CertificateError):
        raise CertificateError(found.reason, found.detail)
    for nb, na, serial in found.windows:
        if at_us < nb:
            raise CertificateError(CertReason.NOT_YET_VALID, f"serial {serial:x}")
        if at_us > na + 999_999:  # notAfter is inclusive to the end of its second
            raise CertificateError(CertReason.EXPIRED, f"serial {serial:x}")
    for slot in found.revocable:
        when = registry.entries.get(slot)
        if when is not None and at_us >= when:
            raise CertificateError(CertReason.REVOKED, f"serial {slot[1]:x}")
    return found


@functools.lru_cache(maxsize=STATIC_CACHE_SIZE)
def _static(
    chain: tuple[bytes, ...], anchors: tuple[x509.Certificate, ...], leaf_is_ca: bool
) -> _Path | CertificateError:
    """Everything about a chain that depends neither on time nor on CRLs, memoized.

    Signatures, path length, regions and key usages of a given chain never change, so replicas
    verify each distinct chain once; the per-request part (validity windows at the consensus
    time, revocations) is redone by :func:`_walk` every time. Failures are memoized too, so a
    peer repeating a bad chain costs a dictionary lookup.
    """
    try:
        return _static_unchecked(chain, anchors, leaf_is_ca)
    except CertificateError as exc:
        return exc
    except _PARSE_ERRORS as exc:
        # hostile DER can make lazily parsed fields fail late; it is still just "malformed"
        return CertificateError(CertReason.MALFORMED, f"{type(exc).__name__}: {exc}")


def _window(cert: x509.Certificate) -> tuple[int, int, int]:
    try:
        return to_us(cert.not_valid_before_utc), to_us(cert.not_valid_after_utc), cert.serial_number
    except (ValueError, OverflowError) as exc:
        raise CertificateError(CertReason.MALFORMED, f"validity: {exc}") from None


def _static_unchecked(
    chain: tuple[bytes, ...], anchors: tuple[x509.Certificate, ...], leaf_is_ca: bool
) -> _Path:
    certs = _load(chain)
    # A chain may end with the anchor itself; trust comes from the anchor list, not the chain.
    if len(certs) > 1 and any(certs[-1] == a for a in anchors):
        certs.pop()
    by_subject = {_name_key(a.subject): a for a in anchors}
    last = certs[-1]
    anchor = by_subject.get(_name_key(last.issuer))
    if anchor is None and any(last == a for a in anchors):
        anchor = last
        certs.pop()
        if not certs:  # the chain is the anchor itself (only meaningful for CA chains)
            if not leaf_is_ca:
                raise CertificateError(CertReason.LEAF_IS_CA, "a trust anchor cannot sign")
            return _Path(anchor, None, (_window(anchor),), ())
    if anchor is None:
        raise CertificateError(CertReason.UNKNOWN_ISSUER, "chain does not end at a trust anchor")
    path = [*certs, anchor]
    for cert in path:
        if not isinstance(cert.public_key(), Ed25519PublicKey):
            raise CertificateError(CertReason.UNSUPPORTED_KEY, "only Ed25519 keys are accepted")
    windows = tuple(_window(c) for c in path)
    leaf_bc = _basic(path[0])
    if leaf_is_ca:
        if not _can_sign_certs(path[0]):
            raise CertificateError(CertReason.NOT_A_CA, "CRL issuer is not a CA")
    elif leaf_bc is not None and leaf_bc.ca:
        raise CertificateError(CertReason.LEAF_IS_CA, "a CA certificate cannot sign requests")
    elif not _can_sign_messages(path[0]):
        raise CertificateError(CertReason.KEY_USAGE, "key usage excludes digital signatures")
    infos = [_info(c) for c in path]
    for i in range(len(path) - 1):
        child, parent = path[i], path[i + 1]
        if not _can_sign_certs(parent):
            raise CertificateError(CertReason.NOT_A_CA, f"issuer of position {i} is not a CA")
        try:
            child.verify_directly_issued_by(parent)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise CertificateError(CertReason.BAD_SIGNATURE, f"position {i}: {exc}") from None
        # CA certificates strictly between ``parent`` and the leaf (the leaf itself excluded).
        below = i
        bc = _basic(parent)
        if bc is not None and bc.path_length is not None and below > bc.path_length:
            raise CertificateError(
                CertReason.PATH_TOO_LONG, f"pathLen {bc.path_length} < {below} CAs below"
            )
        if not region_within(infos[i].region, infos[i + 1].region):
            raise CertificateError(
                CertReason.OUT_OF_REGION, f"{infos[i].region!r} outside {infos[i + 1].region!r}"
            )
    identity = None
    if not leaf_is_ca:
        pub = path[0].public_key()
        parent_pub = path[1].public_key()
        assert isinstance(pub, Ed25519PublicKey), "checked above"
        assert isinstance(parent_pub, Ed25519PublicKey), "checked above"
        identity = VerifiedIdentity(
            public_key=pub.public_bytes_raw(),
            info=infos[0],
            serial=path[0].serial_number,
            issuer=_name_key(path[0].issuer),
            cert=path[0],
            issuer_key=parent_pub.public_bytes_raw(),
        )
    revocable = tuple((_name_key(c.issuer), c.serial_number) for c in path[:-1])
    return _Path(path[0], identity, windows, revocable)


def verify_chain(
    chain: Sequence[bytes],
    anchors: Sequence[x509.Certificate],
    at_us: int,
    registry: RevocationRegistry,
) -> VerifiedIdentity:
    """Validate an end-entity chain as of ``at_us``; raises :class:`CertificateError`."""
    found = _walk(chain, anchors, at_us, registry, leaf_is_ca=False)
    assert found.identity is not None, "an end-entity walk always yields an identity"
    return found.identity


def revoked_since(
    chain: Sequence[bytes], anchors: Sequence[x509.Certificate], registry: RevocationRegistry
) -> int | None:
    """The earliest revocation on chain of any certificate of an end-entity ``chain``, if any.

    Whatever its date, such a key may put no *new* transaction on chain once the CRL is
    published (docs/medical-chain.md §1.6): the admission layer refuses a request stamped before
    this time as backdated, and :func:`verify_chain` refuses one stamped after it. ``None`` for a
    chain with no revoked certificate, or one that does not validate at all (the rules say why).
    """
    if not isinstance(chain, (tuple, list)) or not all(type(b) is bytes for b in chain):
        return None
    found = _static(tuple(chain), tuple(anchors), False)
    if isinstance(found, CertificateError):
        return None
    dates = [registry.entries[s] for s in found.revocable if s in registry.entries]
    return min(dates) if dates else None
