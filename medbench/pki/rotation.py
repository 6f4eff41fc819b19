"""Key rotation after a compromise: revoke, re-key, re-certify, re-seal.

Theory of operation
-------------------
PAPER.md §1.6 (seed §2.3.2): when a private key is compromised the owner files a revocation with
proof of identity, obtains a new key pair, decrypts their own data with the old key and encrypts
it again with the new one. :func:`rotate_subject` performs exactly that sequence:

1. the KMC checks the identity attestation and escrows a new :class:`~medbench.pki.kmc.KeyBundle`
   (the old one is returned for the re-sealing step and stays in escrow as an older version);
2. the CA revokes the old certificate as of ``at_us`` and signs a fresh CRL, returned as the
   ``revoke`` transaction draft that publishes it — from then on new requests signed by the old
   key are refused, while transactions it signed earlier stay verifiable as of their time;
3. the CA issues a certificate for the new keys with the same role, institution and region;
4. every sealed field is opened with the old X25519 key and sealed to the new one.

Sealing is :mod:`medbench.crypto.sealing` (X25519 + HKDF-SHA256 + AES-256-GCM).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medbench.crypto.sealing import EncryptionKey, open_sealed, seal
from medbench.pki.ca import CertificateAuthority, crl_draft
from medbench.pki.drafts import TxDraft
from medbench.pki.identity import SubjectInfo
from medbench.pki.kmc import IdentityAttestation, KeyBundle, KeyManagementCenter


@dataclass(frozen=True, slots=True)
class Rotation:
    """Everything a key rotation produced."""

    old: KeyBundle
    new: KeyBundle
    cert: x509.Certificate
    crl: TxDraft
    resealed: dict[bytes, bytes]


def reseal(
    old: X25519PrivateKey,
    new_public: bytes,
    sealed: Mapping[bytes, bytes],
    rng: random.Random,
    aad: bytes = b"",
) -> dict[bytes, bytes]:
    """Open every blob (keyed by record ID) with ``old`` and seal it again to ``new_public``.

    ``aad`` is the associated data the fields were sealed with (the same for all of them: a
    record's ID is the hash of its sealed content, so it cannot be bound into its own seal).
    """
    return {
        rid: seal(
            new_public, open_sealed(EncryptionKey(old), blob, aad), aad, randbytes=rng.randbytes
        )
        for rid, blob in sorted(sealed.items())
    }


def rotate_subject(
    kmc: KeyManagementCenter,
    ca: CertificateAuthority,
    ca_chain: tuple[bytes, ...],
    identifier: str,
    proof: IdentityAttestation,
    old_cert: x509.Certificate,
    sealed: Mapping[bytes, bytes],
    *,
    at_us: int,
    not_after_us: int,
    crl_next_update_us: int,
) -> Rotation:
    """Rotate a compromised subject's keys (see the module docstring for the steps)."""
    old, new = kmc.rotate(identifier, proof)
    ca.revoke(old_cert, at_us)
    crl = crl_draft(ca, ca_chain, at_us=at_us, next_update_us=crl_next_update_us)
    info = replace(SubjectInfo.from_certificate(old_cert), enc_key=new.encryption_public)
    cert = ca.issue(info, new.signing_public, not_before_us=at_us, not_after_us=not_after_us)
    resealed = reseal(old.encryption, new.encryption_public, sealed, kmc.rng)
    return Rotation(old, new, cert, crl, resealed)
