"""Key rotation after a compromise: revoke, re-key, re-certify, re-seal.

Theory of operation
-------------------
docs/medical-chain.md §1.6 (seed §2.3.2): when a private key is compromised the owner files a
revocation with proof of identity, obtains a new key pair, decrypts their own data with the old key
and encrypts it again with the new one. :func:`rotate_subject` performs exactly that sequence:

1. the KMC checks the identity attestation and escrows a new :class:`~medbench.pki.kmc.KeyBundle`
   (the old one is returned for the re-sealing step and stays in escrow as an older version);
2. the CA revokes the old certificate as of ``at_us`` and signs a fresh CRL, returned as the
   ``revoke`` transaction draft that publishes it — from then on new requests signed by the old
   key are refused, while transactions it signed earlier stay verifiable as of their time;
3. the CA issues a certificate for the new keys with the same role, institution and region;
4. every sealed field is opened with the old X25519 key and sealed to the new one;
5. (with ``categories``) the on-chain part: a ``key-succession`` record
   (:func:`succession_draft`) linking the old key to the new certificate, after which the
   chain moves the old key's records, grants and sanctions to the new key, and one ``update``
   transaction per re-sealed record (:func:`reseal_update_drafts`) replacing it by its re-sealed
   version — so the chain holds the new seals, not just the caller.

Sealing is :mod:`medbench.crypto.sealing` (X25519 + HKDF-SHA256 + AES-256-GCM).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medbench.crypto.sealing import EncryptionKey, open_sealed, seal
from medbench.pki.ca import CertificateAuthority, crl_draft, der
from medbench.pki.drafts import RequestDraft, TxDraft
from medbench.pki.kmc import IdentityAttestation, KeyBundle, KeyManagementCenter
from medbench.pki.subject import SubjectInfo


@dataclass(frozen=True, slots=True)
class Rotation:
    """Everything a key rotation produced, and the transactions that put it on chain.

    Submit in order: :attr:`crl` (any validator node relays it), :attr:`succession` and
    :attr:`updates` (both signed with the new signing key).
    """

    old: KeyBundle
    new: KeyBundle
    cert: x509.Certificate
    crl: TxDraft
    resealed: dict[bytes, bytes]
    succession: TxDraft | None = None
    updates: tuple[RequestDraft, ...] = ()


def succession_draft(old_key: bytes, new_chain: tuple[bytes, ...], at_us: int) -> TxDraft:
    """The ``register`` record linking ``old_key`` to the key ``new_chain`` certifies.

    Replicas accept it only if the new chain verifies, names the same identity as the old
    key's registered certificate and the record is signed by the new key (proof of possession);
    the old key's records, grants and sanctions then follow the new key.
    """
    return TxDraft(
        "register", {"type": "key-succession", "old": old_key, "chain": list(new_chain)}, at_us
    )


def reseal_update_drafts(
    new_key: bytes,
    resealed: Mapping[bytes, bytes],
    categories: Mapping[bytes, str],
    at_us: int,
    rng: random.Random,
) -> tuple[RequestDraft, ...]:
    """One ``update`` (MODIFY) transaction per re-sealed record, by the subject's new key.

    Each is the content of an access request (see :mod:`medbench.access.request`): the
    subject, now under ``new_key``, replaces its own record by the re-sealed version (the old
    version stays in its history, sealed to the old key). Times are ``at_us + i`` so every
    draft has its own ID; nonces come from ``rng``. The drafts are in clear: a consortium that
    takes sealed requests only needs each passed through
    :func:`medbench.access.request.seal_draft` (the subject still signs with its new key, so the
    chain shows that key made these updates — not which records, nor whose).
    """
    drafts = []
    for i, (rid, blob) in enumerate(sorted(resealed.items())):
        content = {
            "op": "modify",
            "requester": new_key,
            "patient": new_key,
            "category": categories[rid],
            "nonce": rng.randbytes(16),
            "body": {"record": rid, "content": blob, "reason": "key rotation: re-sealed"},
        }
        drafts.append(RequestDraft("update", content, at_us + i))
    return tuple(drafts)


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
    categories: Mapping[bytes, str] | None = None,
) -> Rotation:
    """Rotate a compromised subject's keys (see the module docstring for the steps).

    ``categories`` (record ID -> its category) asks for the on-chain part too: the key
    succession record, and one update transaction per re-sealed record (whose category the
    MODIFY must name). They are stamped ``at_us + 1`` onwards, after the CRL.
    """
    old, new = kmc.rotate(identifier, proof)
    ca.revoke(old_cert, at_us)
    crl = crl_draft(ca, ca_chain, at_us=at_us, next_update_us=crl_next_update_us)
    info = replace(SubjectInfo.from_certificate(old_cert), enc_key=new.encryption_public)
    cert = ca.issue(info, new.signing_public, not_before_us=at_us, not_after_us=not_after_us)
    resealed = reseal(old.encryption, new.encryption_public, sealed, kmc.rng)
    if categories is None:
        return Rotation(old, new, cert, crl, resealed)
    new_chain = (der(cert), *ca_chain)
    succession = succession_draft(old.signing_public, new_chain, at_us + 1)
    updates = reseal_update_drafts(new.signing_public, resealed, categories, at_us + 2, kmc.rng)
    return Rotation(old, new, cert, crl, resealed, succession, updates)
