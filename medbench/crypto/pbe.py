"""Private keys at rest: PKCS#8 EncryptedPrivateKeyInfo with PBES2, scrypt and AES-256-CBC.

Theory of operation
-------------------
docs/medical-chain.md §1.6: the applicant keeps the private key the KMC sent "under password-based
encryption". The file format is the standard one, so any PKCS#8 tool opens it:

* ``EncryptedPrivateKeyInfo`` (RFC 5958 §3) whose ``encryptionAlgorithm`` is PBES2 (RFC 8018
  §6.2, OID 1.2.840.113549.1.5.13) and whose ``encryptedData`` is the unencrypted PKCS#8
  ``PrivateKeyInfo`` DER of the key;
* key derivation: scrypt (RFC 7914 §7, ``id-scrypt`` OID 1.3.6.1.4.1.11591.4.11), a memory-hard
  KDF — ``cryptography``'s ``BestAvailableEncryption`` writes PBKDF2 (OID 1.2.840.113549.1.5.12),
  which is cheap to brute-force on GPUs, hence this module;
* cipher: AES-256-CBC (OID 2.16.840.1.101.3.4.1.42, 16-byte IV, PKCS#7 padding). AES-GCM would
  authenticate the plaintext, but OpenSSL 3's ``pkcs8`` refuses AEAD ciphers in PBES2, so CBC it is.

Default cost ``N = 2**14, r = 8, p = 1`` (16 MiB, about 0.05-0.1 s on one core): the largest
``N`` at ``r = 8`` that OpenSSL 3 opens under its fixed 32 MiB scrypt memory ceiling, and the
value ``openssl pkcs8 -scrypt`` itself writes. Callers may raise ``log2_n``; files then open here
and with ``cryptography`` but no longer with the ``openssl`` command.

Files round-trip through ``cryptography.hazmat.primitives.serialization.load_der_private_key(blob,
password)`` and ``openssl pkcs8 -inform DER -in FILE -passin pass:PASSWORD``; the DER is written and
parsed with ``asn1crypto`` against the ASN.1 modules of RFC 8018 and RFC 7914
(:mod:`medbench.crypto.asn1_pbes2`).

Opening (our own parser, not ``cryptography``'s, so that hostile files are bounded): the outer DER
must re-encode to the same bytes, name PBES2 + scrypt + AES-256-CBC exactly, and ask for at most
``MAX_SCRYPT_MEMORY`` bytes of scrypt memory — a hostile file cannot make a node burn gigabytes.
Errors are typed: a malformed or unsupported file raises :class:`KeyFormatError`; a wrong password
or a tampered ciphertext raises :class:`WrongPasswordError`.

CBC carries no MAC. Tampering is still detected in practice — a garbled block breaks the PKCS#7
padding, the inner DER, or the key's own consistency checks (RSA) — except for raw 32-byte keys
(Ed25519, X25519), where a garbled key block yields a *different valid key*. The definite check
is the public key: :func:`decrypt_signing_key` takes ``expected_public`` and raises
:class:`WrongPasswordError` on a mismatch, and :class:`medbench.crypto.identity.Identity` stores
its public half beside the two encrypted keys and always checks it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from asn1crypto.keys import PrivateKeyInfo
from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from medbench.crypto.asn1_pbes2 import EncryptedPrivateKeyInfo
from medbench.crypto.errors import CryptoUsageError, KeyFormatError, WrongPasswordError
from medbench.crypto.keys import SigningKey

DEFAULT_LOG2_N = 14
DEFAULT_R = 8
DEFAULT_P = 1
MIN_LOG2_N = 10
MAX_SCRYPT_MEMORY = 256 << 20
"""Largest scrypt working set (128 * N * r * p bytes) a key file may ask for."""
SALT_SIZE = 16
IV_SIZE = 16
KEY_SIZE = 32
MAX_FILE_SIZE = 1 << 14
"""No PKCS#8 key of the three schemes (RSA-3072 is ~1.8 KiB) comes near this."""

RandBytes = Callable[[int], bytes]


class _Unsupported(Exception):
    """An algorithm OID this module does not accept (internal; becomes KeyFormatError)."""


def _password(password: bytes | str) -> bytes:
    return password.encode() if isinstance(password, str) else password


def _memory(n: int, r: int, p: int) -> int:
    return 128 * n * r * p


def encrypt_pkcs8(
    pkcs8_der: bytes,
    password: bytes | str,
    *,
    log2_n: int = DEFAULT_LOG2_N,
    r: int = DEFAULT_R,
    p: int = DEFAULT_P,
    randbytes: RandBytes = os.urandom,
) -> bytes:
    """The DER ``EncryptedPrivateKeyInfo`` of an unencrypted PKCS#8 ``PrivateKeyInfo``.

    ``randbytes`` supplies salt and IV (the OS CSPRNG unless a test injects a seeded one).
    Raises :class:`CryptoUsageError` for scrypt costs outside the bounds this module opens.
    """
    if not (
        MIN_LOG2_N <= log2_n <= 30
        and r >= 1
        and p >= 1
        and _memory(1 << log2_n, r, p) <= MAX_SCRYPT_MEMORY
    ):
        raise CryptoUsageError("scrypt parameters outside the accepted bounds")
    salt, iv = randbytes(SALT_SIZE), randbytes(IV_SIZE)
    key = Scrypt(salt=salt, length=KEY_SIZE, n=1 << log2_n, r=r, p=p).derive(_password(password))
    padder = padding.PKCS7(128).padder()
    padded = padder.update(pkcs8_der) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ct = enc.update(padded) + enc.finalize()
    info = EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": {
                        "algorithm": "scrypt",
                        "parameters": {
                            "salt": salt,
                            "cost_parameter": 1 << log2_n,
                            "block_size": r,
                            "parallelization_parameter": p,
                        },
                    },
                    "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
                },
            },
            "encrypted_data": ct,
        }
    )
    return bytes(info.dump())


def _parse(blob: bytes) -> tuple[bytes, int, int, int, bytes, bytes]:
    """``(salt, n, r, p, iv, ciphertext)`` of a file; raises :class:`KeyFormatError`."""
    if not isinstance(blob, bytes) or not 0 < len(blob) <= MAX_FILE_SIZE:
        raise KeyFormatError("not an encrypted PKCS#8 key (empty, oversized or not bytes)")
    try:
        info = EncryptedPrivateKeyInfo.load(blob, strict=True)
        alg = info["encryption_algorithm"]
        # asn1crypto names only the OIDs asn1_pbes2 declares; anything else comes back dotted
        if alg["algorithm"].native != "pbes2":
            raise _Unsupported(alg["algorithm"].dotted)
        kdf = alg["parameters"]["key_derivation_func"]
        cipher = alg["parameters"]["encryption_scheme"]
        for part, name in ((kdf, "scrypt"), (cipher, "aes256_cbc")):
            if part["algorithm"].native != name:
                raise _Unsupported(part["algorithm"].dotted)
        sp = kdf["parameters"]
        salt = sp["salt"].native
        n, r, p = (
            sp[f].native for f in ("cost_parameter", "block_size", "parallelization_parameter")
        )
        key_length = sp["key_length"].native
        iv = cipher["parameters"].native
        ct = info["encrypted_data"].native
        canonical = info.dump(force=True) == blob
    except _Unsupported as exc:
        raise KeyFormatError(
            f"unsupported key encryption {exc} (only PBES2/scrypt/AES-256-CBC)"
        ) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise KeyFormatError(f"not a PBES2 scrypt EncryptedPrivateKeyInfo: {exc}") from None
    if not canonical:
        raise KeyFormatError("encrypted key file is not DER")
    if not (8 <= len(salt) <= 64 and len(iv) == IV_SIZE and key_length in (None, KEY_SIZE)):
        raise KeyFormatError("malformed PBES2 parameters (salt, IV or key length)")
    if not (
        n >= 2 and n & (n - 1) == 0 and r >= 1 and p >= 1 and _memory(n, r, p) <= MAX_SCRYPT_MEMORY
    ):
        raise KeyFormatError("scrypt parameters outside the accepted bounds")
    if not ct or len(ct) % 16:
        raise KeyFormatError("AES-CBC ciphertext is not a whole number of blocks")
    return salt, n, r, p, iv, ct


def decrypt_pkcs8(blob: bytes, password: bytes | str) -> bytes:
    """The unencrypted PKCS#8 DER inside an :func:`encrypt_pkcs8` file.

    Raises :class:`KeyFormatError` (malformed, not DER, unsupported algorithms, hostile cost) or
    :class:`WrongPasswordError` (the decryption is not a padded PKCS#8 DER: wrong password or a
    tampered ciphertext).
    """
    salt, n, r, p, iv, ct = _parse(blob)
    key = Scrypt(salt=salt, length=KEY_SIZE, n=n, r=r, p=p).derive(_password(password))
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(dec.update(ct) + dec.finalize()) + unpadder.finalize()
    except ValueError:
        raise WrongPasswordError("wrong password or tampered key file") from None
    return plain


def _require_der_private_key_info(plain: bytes) -> None:
    """Refuse a decryption that is not a DER ``PrivateKeyInfo``.

    CBC is malleable: flipping an IV bit flips the same bit of the first plaintext block, e.g. the
    version 0 (v1) into 1 (v2, RFC 5958 §2, which is only for keys carrying their public key).
    ``cryptography`` 51 loads such a v2 key, so the structure is checked here, independently of
    the library's leniency: strict DER, version v1, nothing after the attributes.
    """
    try:
        info = PrivateKeyInfo.load(plain, strict=True)
        canonical = info.dump(force=True) == plain and info["version"].native == 0
    except (ValueError, TypeError, KeyError, AttributeError):
        canonical = False
    if not canonical:
        raise WrongPasswordError("wrong password or tampered key file")


def load_private_key(blob: bytes, password: bytes | str) -> Any:
    """The ``cryptography`` private-key object of an :func:`encrypt_pkcs8` file.

    Same errors as :func:`decrypt_pkcs8`; a decryption that is not a loadable key is a
    :class:`WrongPasswordError` too (with CBC the two cannot be told apart).
    """
    plain = decrypt_pkcs8(blob, password)
    _require_der_private_key_info(plain)
    try:
        return serialization.load_der_private_key(plain, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, InternalError):
        # InternalError: OpenSSL refuses some garbled raw keys below the parser (key setup)
        raise WrongPasswordError("wrong password or tampered key file") from None


def encrypt_signing_key(
    key: SigningKey,
    password: bytes | str,
    *,
    log2_n: int = DEFAULT_LOG2_N,
    randbytes: RandBytes = os.urandom,
) -> bytes:
    """``key`` as a DER PKCS#8 ``EncryptedPrivateKeyInfo`` (PBES2, scrypt, AES-256-CBC)."""
    return encrypt_pkcs8(key.to_pkcs8(), password, log2_n=log2_n, randbytes=randbytes)


def decrypt_signing_key(
    blob: bytes, password: bytes | str, *, expected_public: bytes | None = None
) -> SigningKey:
    """Open a key written by :func:`encrypt_signing_key` (or by ``openssl pkcs8 -scrypt``).

    With ``expected_public`` (the raw public key the caller trusts, e.g. from a certificate) a
    key that decrypts to anything else raises :class:`WrongPasswordError`: the definite tamper
    check that CBC alone does not give for Ed25519. Raises :class:`KeyFormatError` for a file
    that is not an encrypted signing key of the three schemes.
    """
    private = load_private_key(blob, password)
    try:
        key = SigningKey.from_cryptography(private)
    except KeyFormatError:
        raise KeyFormatError("the key file does not hold a signing key of a known scheme") from None
    if expected_public is not None and key.public != expected_public:
        raise WrongPasswordError("key file opened to a different key (tampered)")
    return key
