"""Cryptography of medbench: signing keys, password-encrypted keys at rest, sealed fields.

* :mod:`.keys` — :class:`SigningKey` (Ed25519 via PyNaCl, ECDSA P-256 and RSA-PSS-3072 via
  ``cryptography``), :func:`verify` that never raises;
* :mod:`.pbe` — private keys at rest as PKCS#8 PBES2 (scrypt + AES-256-CBC);
* :mod:`.sealing` — X25519 + HKDF + AES-256-GCM boxes for private fields;
* :mod:`.identity` — a signing key with a bound encryption key.
"""

from __future__ import annotations

from medbench.crypto.errors import (
    BindingError,
    CryptoError,
    CryptoUsageError,
    KeyFormatError,
    SealError,
    SeedNotSupportedError,
    UnknownSchemeError,
    WrongPasswordError,
)
from medbench.crypto.identity import Identity, IdentityPublic
from medbench.crypto.keys import (
    SIGNATURE_SIZE,
    PublicKey,
    Scheme,
    SigningKey,
    is_known_scheme,
    scheme_of,
    verify,
)
from medbench.crypto.pbe import decrypt_signing_key, encrypt_signing_key
from medbench.crypto.sealing import EncryptionKey, open_sealed, seal

__all__ = [
    "SIGNATURE_SIZE",
    "BindingError",
    "CryptoError",
    "CryptoUsageError",
    "EncryptionKey",
    "Identity",
    "IdentityPublic",
    "KeyFormatError",
    "PublicKey",
    "Scheme",
    "SealError",
    "SeedNotSupportedError",
    "SigningKey",
    "UnknownSchemeError",
    "WrongPasswordError",
    "decrypt_signing_key",
    "encrypt_signing_key",
    "is_known_scheme",
    "open_sealed",
    "scheme_of",
    "seal",
    "verify",
]
