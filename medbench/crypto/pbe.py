"""Password-based encryption (PBE) of private keys at rest: scrypt + AES-256-GCM.

Theory of operation
-------------------
PAPER.md §1.6: the applicant keeps the private key the KMC sent "under password-based
encryption". ``cryptography``'s ``BestAvailableEncryption`` writes PKCS#8 PBES2 with
PBKDF2-HMAC-SHA256 (2048 iterations) and AES-256-CBC — checked on cryptography 50: the encrypted
DER names OID 1.2.840.113549.1.5.12 (PBKDF2), not scrypt — which is cheap to brute-force on
GPUs. This module therefore wraps the *unencrypted* PKCS#8 DER in its own small, documented
envelope with a memory-hard KDF:

``encode(["medbench-pbe", 1, "scrypt", log2_n, r, p, salt, "aes-256-gcm", nonce, label, ct])``

* ``key = scrypt(password, salt, n=2**log2_n, r, p, length=32)``; default ``log2_n=15, r=8,
  p=1`` (32 MiB, ~0.15 s on one core), the interactive setting of RFC 7914 §2 guidance;
* ``ct = AES-256-GCM(key, nonce, plaintext, aad=encode(header))`` where the header is every field
  but ``ct``, so the parameters and the ``label`` (what the plaintext is, e.g. ``"pkcs8"``) are
  authenticated too;
* salt 16 bytes, nonce 12 bytes, fresh for every encryption.

Opening bounds the scrypt cost a file may ask for (``log2_n <= 20``, ``r <= 16``, ``p <= 4``) so a
hostile file cannot make a node burn gigabytes. A wrong password and a tampered file both raise
:class:`WrongPasswordError` (GCM authentication failed); a malformed envelope raises
:class:`KeyFormatError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from medbench import codec
from medbench.crypto.errors import CryptoUsageError, KeyFormatError, WrongPasswordError
from medbench.crypto.keys import SigningKey

MAGIC = "medbench-pbe"
VERSION = 1
DEFAULT_LOG2_N = 15
DEFAULT_R = 8
DEFAULT_P = 1
MAX_LOG2_N = 20
MAX_R = 16
MAX_P = 4
SALT_SIZE = 16
NONCE_SIZE = 12
_LIMITS = codec.Limits(max_bytes=1 << 20, max_depth=2, max_container_len=16)

RandBytes = Callable[[int], bytes]


def _derive(password: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(password)


def encrypt(
    plaintext: bytes,
    password: bytes | str,
    *,
    label: str = "data",
    log2_n: int = DEFAULT_LOG2_N,
    r: int = DEFAULT_R,
    p: int = DEFAULT_P,
    randbytes: RandBytes = os.urandom,
) -> bytes:
    """Encrypt ``plaintext`` under ``password``; returns the envelope bytes described above.

    ``randbytes`` supplies salt and nonce (the OS CSPRNG unless a test injects a seeded one).
    """
    pw = password.encode() if isinstance(password, str) else password
    if not (10 <= log2_n <= MAX_LOG2_N and 1 <= r <= MAX_R and 1 <= p <= MAX_P):
        raise CryptoUsageError("scrypt parameters outside the accepted bounds")
    salt, nonce = randbytes(SALT_SIZE), randbytes(NONCE_SIZE)
    header: list[Any] = [MAGIC, VERSION, "scrypt", log2_n, r, p, salt, "aes-256-gcm", nonce, label]
    key = _derive(pw, salt, log2_n, r, p)
    ct = AESGCM(key).encrypt(nonce, plaintext, codec.encode(header))
    return codec.encode([*header, ct])


def decrypt(blob: bytes, password: bytes | str, *, label: str | None = None) -> bytes:
    """Open an envelope from :func:`encrypt`; checks ``label`` when given.

    Raises :class:`KeyFormatError` (malformed, unknown version, costs out of bounds, other label)
    or :class:`WrongPasswordError` (wrong password or tampered bytes).
    """
    pw = password.encode() if isinstance(password, str) else password
    try:
        fields = codec.decode(blob, _LIMITS)
    except codec.DecodeError as exc:
        raise KeyFormatError(f"not a medbench PBE envelope: {exc}") from None
    if not isinstance(fields, list) or len(fields) != 11:
        raise KeyFormatError("a PBE envelope is an 11-field array")
    magic, version, kdf, log2_n, r, p, salt, aead, nonce, got_label, ct = fields
    if (magic, version, kdf, aead) != (MAGIC, VERSION, "scrypt", "aes-256-gcm"):
        raise KeyFormatError("unknown PBE envelope type or version")
    if not all(type(x) is int for x in (log2_n, r, p)) or not (
        1 <= log2_n <= MAX_LOG2_N and 1 <= r <= MAX_R and 1 <= p <= MAX_P
    ):
        raise KeyFormatError("scrypt parameters outside the accepted bounds")
    if not (
        isinstance(salt, bytes)
        and len(salt) == SALT_SIZE
        and isinstance(nonce, bytes)
        and len(nonce) == NONCE_SIZE
        and isinstance(got_label, str)
        and isinstance(ct, bytes)
        and len(ct) >= 16
    ):
        raise KeyFormatError("malformed PBE envelope fields")
    if label is not None and got_label != label:
        raise KeyFormatError(f"envelope holds {got_label!r}, expected {label!r}")
    key = _derive(pw, salt, log2_n, r, p)
    try:
        return AESGCM(key).decrypt(nonce, ct, codec.encode(fields[:10]))
    except InvalidTag:
        raise WrongPasswordError("wrong password or tampered key file") from None


def encrypt_signing_key(
    key: SigningKey,
    password: bytes | str,
    *,
    log2_n: int = DEFAULT_LOG2_N,
    randbytes: RandBytes = os.urandom,
) -> bytes:
    """The password-encrypted PKCS#8 of ``key`` (label ``"pkcs8"``)."""
    return encrypt(key.to_pkcs8(), password, label="pkcs8", log2_n=log2_n, randbytes=randbytes)


def decrypt_signing_key(blob: bytes, password: bytes | str) -> SigningKey:
    """Open a key written by :func:`encrypt_signing_key`.

    Raises :class:`WrongPasswordError` or :class:`KeyFormatError`.
    """
    return SigningKey.from_pkcs8(decrypt(blob, password, label="pkcs8"))
