"""An identity: a signing key plus an X25519 encryption key bound to it by a signature.

Theory of operation
-------------------
Every person, institution and device of PAPER.md §1.6 signs with a :class:`SigningKey` and is
identified by its raw public key. Private fields must be *encrypted* to the entity (§1.3), which a
signing key cannot do, so each identity also holds an :class:`EncryptionKey` (X25519). The public
half, :class:`IdentityPublic`, is ``(scheme, signing public, encryption public, binding)`` where
``binding`` is the signing key's signature over ``"medbench/encryption-key-binding/v1" ||
encryption public``: whoever trusts the signing key (through the PKI) can check that the
encryption key really belongs to it before sealing anything to it. The domain prefix keeps the
binding signature from ever being mistaken for a signature over a 32-byte transaction or block ID.

With a seed, both keys derive deterministically from it (HKDF-SHA-256 with distinct labels), which
the workload generator relies on. :meth:`Identity.export` stores both private keys under one
password (:mod:`medbench.crypto.pbe`, label ``"identity"``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medbench import codec
from medbench.crypto import pbe
from medbench.crypto.errors import BindingError, KeyFormatError
from medbench.crypto.keys import (
    MAX_PUBLIC_KEY_SIZE,
    SEED_SIZE,
    Scheme,
    SigningKey,
    is_known_scheme,
    verify,
)
from medbench.crypto.sealing import EncryptionKey, RandBytes, seal

BINDING_PREFIX = b"medbench/encryption-key-binding/v1"


def binding_message(encryption_public: bytes) -> bytes:
    """The bytes a signing key signs to bind ``encryption_public`` to itself."""
    return BINDING_PREFIX + encryption_public


def _subseed(seed: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=SEED_SIZE, salt=None, info=label).derive(seed)


@dataclass(frozen=True, slots=True)
class IdentityPublic:
    """The public half of an :class:`Identity`; :meth:`check` verifies the binding."""

    scheme: Scheme
    signing: bytes
    encryption: bytes
    binding: bytes

    def is_bound(self) -> bool:
        """True if :attr:`binding` is a valid signature by :attr:`signing` (never raises)."""
        return verify(self.scheme, self.signing, binding_message(self.encryption), self.binding)

    def check(self) -> IdentityPublic:
        """Return self if the binding holds; raise :class:`BindingError` otherwise."""
        if not self.is_bound():
            raise BindingError("encryption key is not bound to the signing key")
        return self

    def seal(
        self, plaintext: bytes, associated_data: bytes = b"", *, randbytes: RandBytes = os.urandom
    ) -> bytes:
        """Seal ``plaintext`` to this identity's encryption key (after checking the binding)."""
        self.check()
        return seal(self.encryption, plaintext, associated_data, randbytes=randbytes)

    def to_fields(self) -> list[Any]:
        """The canonical array ``[scheme, signing, encryption, binding]`` (for codec.encode)."""
        return [str(self.scheme), self.signing, self.encryption, self.binding]

    @classmethod
    def from_fields(cls, fields: Any) -> IdentityPublic:
        """Parse :meth:`to_fields` output from an untrusted source; raises :class:`KeyFormatError`.

        The binding is *not* checked here: call :meth:`check`.
        """
        if not isinstance(fields, list) or len(fields) != 4:
            raise KeyFormatError("an identity is a 4-field array")
        scheme, signing, encryption, binding = fields
        if not is_known_scheme(scheme):
            raise KeyFormatError(f"unknown signature scheme {scheme!r}")
        if not (
            isinstance(signing, bytes)
            and 0 < len(signing) <= MAX_PUBLIC_KEY_SIZE
            and isinstance(encryption, bytes)
            and len(encryption) == 32
            and isinstance(binding, bytes)
            and len(binding) <= 1024
        ):
            raise KeyFormatError("malformed identity fields")
        return cls(Scheme(scheme), signing, encryption, binding)


class Identity:
    """A signing key and its bound X25519 encryption key."""

    __slots__ = ("encryption", "public", "signing")

    def __init__(self, signing: SigningKey, encryption: EncryptionKey) -> None:
        """Bind ``encryption`` to ``signing`` (signs the binding message once)."""
        self.signing = signing
        self.encryption = encryption
        self.public = IdentityPublic(
            signing.scheme,
            signing.public,
            encryption.public,
            signing.sign(binding_message(encryption.public)),
        )

    @classmethod
    def generate(cls, scheme: str | Scheme = Scheme.ED25519, seed: bytes | None = None) -> Identity:
        """A new identity; deterministic from a 32-byte ``seed`` (not for RSA)."""
        if seed is None:
            return cls(SigningKey.generate(scheme), EncryptionKey.generate())
        if len(seed) != SEED_SIZE:
            raise ValueError(f"a seed is exactly {SEED_SIZE} bytes")
        return cls(
            SigningKey.generate(scheme, _subseed(seed, b"medbench/identity/signing")),
            EncryptionKey.generate(_subseed(seed, b"medbench/identity/encryption")),
        )

    @property
    def key(self) -> bytes:
        """The raw signing public key: the identifier of this identity on chain."""
        return self.signing.public

    def sign(self, msg: bytes) -> bytes:
        """Sign ``msg`` with the signing key."""
        return self.signing.sign(msg)

    def open(self, box: bytes, associated_data: bytes = b"") -> bytes:
        """Open a box sealed to this identity (raises :class:`SealError` if tampered)."""
        return self.encryption.open(box, associated_data)

    def export(self, password: bytes | str, *, log2_n: int = pbe.DEFAULT_LOG2_N) -> bytes:
        """Both private keys under password-based encryption (label ``"identity"``)."""
        plain = codec.encode(
            [str(self.signing.scheme), self.signing.to_pkcs8(), self.encryption.private_raw()]
        )
        return pbe.encrypt(plain, password, label="identity", log2_n=log2_n)

    @classmethod
    def load(cls, blob: bytes, password: bytes | str) -> Identity:
        """Open :meth:`export` output; raises :class:`WrongPasswordError` or
        :class:`KeyFormatError`."""
        plain = pbe.decrypt(blob, password, label="identity")
        try:
            scheme, der, raw = codec.decode(plain)
        except (codec.DecodeError, ValueError, TypeError) as exc:
            raise KeyFormatError(f"malformed identity key file: {exc}") from None
        signing = SigningKey.from_pkcs8(der)
        if signing.scheme != scheme:
            raise KeyFormatError("identity key file names the wrong scheme")
        return cls(signing, EncryptionKey.from_raw(raw))

    def __repr__(self) -> str:
        return f"Identity({self.signing.scheme}, key={self.key[:4].hex()}…)"
