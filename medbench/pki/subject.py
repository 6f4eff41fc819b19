"""What a Medical Chain certificate says about its subject, and how it says it.

Theory of operation
-------------------
docs/medical-chain.md §1.6 (seed §2.3.2): every person, institution and device gets a key pair and
an X.509 certificate; the KMC stores the key with an *identifying field* (ID-card number for a
patient, institution code for a hospital). medbench encodes a subject like this:

* **subject name**: ``CN`` = hex of ``sha256(domain || identifying field)`` — the ID number itself
  never appears in a certificate, only a salted-by-domain hash the KMC can match on recovery;
  ``O`` = the institution (empty for patients, family, authorities);
* **public key**: the subject's Ed25519 *signing* key; its 32 raw bytes are the identity used
  everywhere in medbench (transactions, grants, blacklists);
* **the medbench identity extension** (non-critical, OID :data:`IDENTITY_OID` under the
  ``2.25`` UUID arc, which needs no registration): the canonical :mod:`medbench.codec` encoding of
  a dict ``{"v": 1, "role", "institution", "region", "id_hash", "enc_key"}`` where ``enc_key`` is
  the subject's raw 32-byte X25519 *encryption* public key (empty for CA certificates) and
  ``region`` is a path in the region tree (``"cn"``, ``"cn/zj"``, ``"cn/zj/hz"``).

The extension is authoritative for role, institution and region; the ``O`` field only mirrors the
institution for human readers. Regions are ``/``-separated lowercase paths: ``a`` contains ``a/b``
contains ``a/b/c``; :func:`region_within` is the one containment test used by the PKI (a CA only
certifies subjects inside its region) and by RBAC (an authority only acts inside its region).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509

from medbench import codec
from medbench.hashing import sha256

IDENTITY_OID = x509.ObjectIdentifier("2.25.293607712877078524163979713634340131299")
"""OID of the medbench identity extension (a UUID OID, ITU-T X.667)."""

_ID_DOMAIN = b"medbench-identity-v1\x00"
_REGION_RE = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
MAX_FIELD = 256


class IdentityError(ValueError):
    """A certificate's identity extension is missing or malformed."""


def hash_identifier(identifier: str) -> bytes:
    """The 32-byte hash of an identifying field (ID-card number, institution code)."""
    return bytes(sha256(_ID_DOMAIN + identifier.encode("utf-8")))


def valid_region(region: str) -> bool:
    """Whether ``region`` is a well-formed region path."""
    return len(region) <= MAX_FIELD and _REGION_RE.match(region) is not None


def region_within(inner: str, outer: str) -> bool:
    """Whether region ``inner`` equals ``outer`` or lies below it in the region tree."""
    return inner == outer or inner.startswith(outer + "/")


def region_depth(region: str) -> int:
    """Depth in the region tree: ``"cn"`` is 1, ``"cn/zj"`` is 2, ``"cn/zj/hz"`` is 3."""
    return region.count("/") + 1


@dataclass(frozen=True, slots=True)
class SubjectInfo:
    """The identity a certificate binds to its signing key (see the module docstring)."""

    role: str
    institution: str
    region: str
    id_hash: bytes
    enc_key: bytes = b""

    def __post_init__(self) -> None:
        if not self.role or len(self.role) > MAX_FIELD:
            raise IdentityError("role must be a non-empty short string")
        if len(self.institution) > MAX_FIELD:
            raise IdentityError("institution too long")
        if not valid_region(self.region):
            raise IdentityError(f"malformed region {self.region!r}")
        if len(self.id_hash) != 32:
            raise IdentityError("id_hash must be 32 bytes")
        if len(self.enc_key) not in (0, 32):
            raise IdentityError("enc_key must be a raw X25519 key (32 bytes) or empty")

    def to_extension(self) -> x509.UnrecognizedExtension:
        """The extension value to add to a certificate builder."""
        payload = codec.encode(
            {
                "v": 1,
                "role": self.role,
                "institution": self.institution,
                "region": self.region,
                "id_hash": self.id_hash,
                "enc_key": self.enc_key,
            }
        )
        return x509.UnrecognizedExtension(IDENTITY_OID, payload)

    def subject_name(self) -> x509.Name:
        """The X.509 subject name: CN = hex(id_hash), O = institution when there is one."""
        attrs = [x509.NameAttribute(x509.NameOID.COMMON_NAME, self.id_hash.hex())]
        if self.institution:
            attrs.append(x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, self.institution))
        return x509.Name(attrs)

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> SubjectInfo:
        """Read the identity extension of ``cert``; raises :class:`IdentityError`."""
        try:
            ext = cert.extensions.get_extension_for_oid(IDENTITY_OID)
        except x509.ExtensionNotFound:
            raise IdentityError("certificate has no medbench identity extension") from None
        except (ValueError, x509.DuplicateExtension) as exc:  # unparsable extensions
            raise IdentityError(f"bad extensions: {exc}") from None
        value = ext.value
        if not isinstance(value, x509.UnrecognizedExtension):
            raise IdentityError("identity extension has an unexpected type")
        try:
            doc = codec.decode(value.value, codec.Limits(max_bytes=4096, max_depth=2))
        except codec.DecodeError as exc:
            raise IdentityError(f"identity extension does not decode: {exc}") from None
        keys = {"v", "role", "institution", "region", "id_hash", "enc_key"}
        if not isinstance(doc, dict) or set(doc) != keys or doc["v"] != 1:
            raise IdentityError("identity extension has the wrong fields")
        types = {"role": str, "institution": str, "region": str, "id_hash": bytes, "enc_key": bytes}
        for key, typ in types.items():
            if type(doc[key]) is not typ:
                raise IdentityError(f"identity field {key!r} has the wrong type")
        return cls(doc["role"], doc["institution"], doc["region"], doc["id_hash"], doc["enc_key"])
