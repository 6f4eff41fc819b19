"""An identity: a signing key plus an X25519 encryption key bound to it by a signature.

Theory of operation
-------------------
Every person, institution and device of docs/medical-chain.md §1.6 signs with a :class:`SigningKey`
and is identified by its raw public key. Private fields must be *encrypted* to the entity (§1.3),
which a signing key cannot do, so each identity also holds an :class:`EncryptionKey` (X25519). The
public half, :class:`IdentityPublic`, is ``(scheme, signing public, encryption public, binding)``
where ``binding`` is the signing key's signature over ``"medbench/encryption-key-binding/v1" ||
encryption public``: whoever trusts the signing key (through the PKI) can check that the
encryption key really belongs to it before sealing anything to it. The domain prefix keeps the
binding signature from ever being mistaken for a signature over a 32-byte transaction or block ID.

With a seed, both keys derive deterministically from it (HKDF-SHA-256 with distinct labels), which
the workload generator relies on. :meth:`Identity.export` writes an identity key file: the
canonical array ``["medbench-identity", 2, public fields, signing key, encryption key]`` where both
private keys are standard PKCS#8 ``EncryptedPrivateKeyInfo`` DER (PBES2 + scrypt + AES-256-CBC,
:mod:`medbench.crypto.pbe`) under the same password, each openable by ``openssl pkcs8`` on its own.
The public half stored beside them is what :meth:`Identity.load` checks the decrypted keys
against, so a tampered file is always detected although CBC has no MAC.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medbench import codec
from medbench.crypto import pbe
from medbench.crypto.errors import BindingError, KeyFormatError, WrongPasswordError
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
KEY_FILE_MAGIC = "medbench-identity"
KEY_FILE_VERSION = 2
_KEY_FILE_LIMITS = codec.Limits(max_bytes=1 << 16, max_depth=3, max_container_len=8)


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
        """Both private keys as PKCS#8 under ``password``, with the public half (module doc)."""
        return codec.encode(
            [
                KEY_FILE_MAGIC,
                KEY_FILE_VERSION,
                self.public.to_fields(),
                pbe.encrypt_pkcs8(self.signing.to_pkcs8(), password, log2_n=log2_n),
                pbe.encrypt_pkcs8(self.encryption.to_pkcs8(), password, log2_n=log2_n),
            ]
        )

    @classmethod
    def load(cls, blob: bytes, password: bytes | str) -> Identity:
        """Open :meth:`export` output.

        Raises :class:`KeyFormatError` (not an identity key file) or :class:`WrongPasswordError`
        (wrong password, or the keys do not match the stored public half: tampered).
        """
        try:
            fields = codec.decode(blob, _KEY_FILE_LIMITS)
        except codec.DecodeError as exc:
            raise KeyFormatError(f"not an identity key file: {exc}") from None
        if not (
            isinstance(fields, list)
            and len(fields) == 5
            and fields[:2] == [KEY_FILE_MAGIC, KEY_FILE_VERSION]
        ):
            raise KeyFormatError("not an identity key file (magic, version or length)")
        public = IdentityPublic.from_fields(fields[2])
        signing_private = pbe.load_private_key(fields[3], password)
        encryption_private = pbe.load_private_key(fields[4], password)
        if not isinstance(encryption_private, x25519.X25519PrivateKey):
            raise WrongPasswordError("identity key file holds no X25519 key (tampered)")
        try:
            signing = SigningKey.from_cryptography(signing_private)
        except KeyFormatError:
            raise WrongPasswordError("identity key file holds no signing key (tampered)") from None
        identity = cls(signing, EncryptionKey(encryption_private))
        if (
            signing.scheme is not public.scheme
            or identity.public.signing != public.signing
            or identity.public.encryption != public.encryption
            or not public.is_bound()
        ):
            raise WrongPasswordError("identity key file keys do not match its public half")
        return identity

    def __repr__(self) -> str:
        return f"Identity({self.signing.scheme}, key={self.key[:4].hex()}…)"
