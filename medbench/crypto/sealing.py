"""Sealing sensitive fields to a public key: X25519 + HKDF-SHA-256 + AES-256-GCM.

Theory of operation
-------------------
docs/medical-chain.md §1.3: an entity's private fields (ID-card number, name, contact) and a
patient's entity–record associations are "encrypted with the entity's public key" so that only the
holder of the private key reads them. Signing keys do not encrypt, so every identity also owns an
X25519 key pair (:class:`EncryptionKey`, bound to the signing key in
:mod:`medbench.crypto.identity`).

A sealed box is an ECIES-style hybrid (in the manner of HPKE base mode, RFC 9180, but simpler):

1. the sender draws an ephemeral X25519 key ``e`` and computes ``z = X25519(e, R)`` with the
   recipient's public key ``R``;
2. ``key || nonce = HKDF-SHA-256(ikm=z, salt=E || R, info="medbench/seal/v1", L=44)`` where ``E``
   is the ephemeral public key — binding both public keys stops key-substitution tricks;
3. ``box = 0x01 || E || AES-256-GCM(key, nonce, plaintext, aad=0x01 || associated_data)``.

A fresh ``e`` per box makes ``(key, nonce)`` unique, so the derived nonce is safe. The caller's
``associated_data`` (e.g. the record ID a link belongs to) is authenticated but not stored: opening
needs the same bytes. Overhead: 1 + 32 + 16 = 49 bytes per box. Any change to the box, the wrong
private key or different associated data raise :class:`SealError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medbench.crypto.errors import KeyFormatError, SealError

VERSION = b"\x01"
PUBLIC_SIZE = 32
OVERHEAD = 1 + PUBLIC_SIZE + 16
"""Bytes a sealed box adds to its plaintext."""
_INFO = b"medbench/seal/v1"

RandBytes = Callable[[int], bytes]


class EncryptionKey:
    """An X25519 private key for opening sealed boxes; :attr:`public` is the 32-byte raw key."""

    __slots__ = ("_private", "_public")

    def __init__(self, private: x25519.X25519PrivateKey) -> None:
        """Wrap a ``cryptography`` X25519 key; use :meth:`generate` or :meth:`from_raw`."""
        self._private = private
        self._public = private.public_key().public_bytes_raw()

    @classmethod
    def generate(cls, seed: bytes | None = None) -> EncryptionKey:
        """A new key; deterministic from a 32-byte ``seed`` (tests, workload generator)."""
        if seed is None:
            return cls(x25519.X25519PrivateKey.generate())
        return cls.from_raw(seed)

    @classmethod
    def from_raw(cls, raw: bytes) -> EncryptionKey:
        """Load 32 raw private-key bytes; raises :class:`KeyFormatError` otherwise."""
        try:
            return cls(x25519.X25519PrivateKey.from_private_bytes(raw))
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not an X25519 private key: {exc}") from None

    @property
    def public(self) -> bytes:
        """The 32-byte raw public key that senders seal to."""
        return self._public

    def private_raw(self) -> bytes:
        """The 32 raw private bytes (for password-encrypted storage only)."""
        return self._private.private_bytes_raw()

    def to_pkcs8(self) -> bytes:
        """Unencrypted PKCS#8 DER (wrap it with :mod:`medbench.crypto.pbe`)."""
        return self._private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def open(self, box: bytes, associated_data: bytes = b"") -> bytes:
        """Open a box sealed to :attr:`public`; see :func:`open_sealed`."""
        return open_sealed(self, box, associated_data)

    def __repr__(self) -> str:
        return f"EncryptionKey(public={self._public[:4].hex()}…)"


def _key_nonce(shared: bytes, ephemeral: bytes, recipient: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=ephemeral + recipient, info=_INFO).derive(
        shared
    )
    return okm[:32], okm[32:]


def seal(
    recipient_public: bytes,
    plaintext: bytes,
    associated_data: bytes = b"",
    *,
    randbytes: RandBytes = os.urandom,
) -> bytes:
    """Seal ``plaintext`` to the X25519 public key ``recipient_public``.

    ``randbytes(32)`` supplies the ephemeral private key: the OS CSPRNG by default, a seeded
    generator in the workload generator so that runs are reproducible.
    """
    try:
        recipient = x25519.X25519PublicKey.from_public_bytes(recipient_public)
        eph = x25519.X25519PrivateKey.from_private_bytes(randbytes(32))
        shared = eph.exchange(recipient)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"cannot seal to this public key: {exc}") from None
    e_pub = eph.public_key().public_bytes_raw()
    key, nonce = _key_nonce(shared, e_pub, recipient_public)
    return VERSION + e_pub + AESGCM(key).encrypt(nonce, plaintext, VERSION + associated_data)


def open_sealed(key: EncryptionKey, box: bytes, associated_data: bytes = b"") -> bytes:
    """The plaintext of ``box``; raises :class:`SealError` on any tampering or the wrong key."""
    if not isinstance(box, bytes) or len(box) < OVERHEAD or box[:1] != VERSION:
        raise SealError("malformed sealed box")
    e_pub = box[1 : 1 + PUBLIC_SIZE]
    try:
        shared = key._private.exchange(x25519.X25519PublicKey.from_public_bytes(e_pub))
    except ValueError:  # low-order ephemeral point: all-zero shared secret
        raise SealError("invalid ephemeral key in sealed box") from None
    k, nonce = _key_nonce(shared, e_pub, key.public)
    try:
        return AESGCM(k).decrypt(nonce, box[1 + PUBLIC_SIZE :], VERSION + associated_data)
    except InvalidTag:
        raise SealError("sealed box failed authentication (tampered or wrong key)") from None
