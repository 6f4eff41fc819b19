"""Signing keys: Ed25519 (default), ECDSA P-256 and RSA-PSS-3072, one small interface.

Theory of operation
-------------------
Every signature in Medical Chain (docs/medical-chain.md §1.2, §1.6) — transaction signatures over
transaction IDs, the blocker's signature over a block ID, PBFT message signatures — goes through
this module. A consortium picks one scheme by name (:class:`Scheme`) in its genesis block, so on the
wire a public key is just its raw bytes and the scheme is known from context:

================  ==========================================  ==================  =============
scheme            public key bytes                            signature bytes     library
================  ==========================================  ==================  =============
``ed25519``       32-byte raw key (RFC 8032)                  64                  PyNaCl
``ecdsa-p256``    33-byte compressed SEC1 point               64 (``r || s``)     cryptography
``rsa-pss-3072``  DER SubjectPublicKeyInfo (~422 bytes)       384                 cryptography
================  ==========================================  ==================  =============

Ed25519 runs on libsodium through PyNaCl, which verified about twice as fast as cryptography's
OpenSSL binding when this module was written (see ``benchmarks/test_ledger.py``). ECDSA signatures
use RFC 6979 deterministic nonces and a fixed-length ``r || s`` form rather than DER, so their
length is a constant that a parser can check. RSA-PSS uses SHA-256, MGF1-SHA-256 and a 32-byte
salt (randomised signatures).

Seeds: :meth:`SigningKey.generate` with a 32-byte ``seed`` is deterministic for Ed25519 (the seed
*is* the RFC 8032 private key) and ECDSA (the scalar is HKDF-SHA-256(seed) reduced into
``[1, n-1]``, in the style of FIPS 186-5 A.2.1). RSA key generation draws primes from OpenSSL's
random generator and cannot be seeded: asking for it raises :class:`SeedNotSupportedError`.

:func:`verify` is what nodes call on bytes from peers: it answers ``True`` or ``False`` and never
raises, whatever the key, message and signature bytes are. Parsed ECDSA/RSA public keys are cached
(bounded LRU) because parsing costs a noticeable fraction of a verification.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InternalError, InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medbench.crypto.errors import KeyFormatError, SeedNotSupportedError, UnknownSchemeError

SEED_SIZE = 32
"""Length of a key-generation seed, in bytes."""

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_RSA_BITS = 3072
_PSS_SALT = 32
_KEY_CACHE = 4096


class Scheme(StrEnum):
    """A signature scheme, named as a consortium's genesis block names it."""

    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    RSA_PSS_3072 = "rsa-pss-3072"


SIGNATURE_SIZE: dict[Scheme, int] = {
    Scheme.ED25519: 64,
    Scheme.ECDSA_P256: 64,
    Scheme.RSA_PSS_3072: _RSA_BITS // 8,
}
"""Exact signature length of each scheme."""

MAX_PUBLIC_KEY_SIZE = 1024
"""No public key of any scheme here is longer (RSA-3072 SPKI is ~422 bytes)."""


def scheme_of(name: str | Scheme) -> Scheme:
    """The :class:`Scheme` called ``name``; raises :class:`UnknownSchemeError` otherwise."""
    try:
        return Scheme(name)
    except ValueError:
        raise UnknownSchemeError(f"unknown signature scheme {name!r}") from None


def is_known_scheme(name: object) -> bool:
    """True if ``name`` names a scheme this kit implements (never raises)."""
    return isinstance(name, str) and name in Scheme._value2member_map_


# ---------------------------------------------------------------------------------------------
# Public-key parsing (cached) and verification


@functools.lru_cache(maxsize=_KEY_CACHE)
def _p256_public(raw: bytes) -> ec.EllipticCurvePublicKey:
    if len(raw) != 33:
        raise ValueError("a P-256 public key is a 33-byte compressed point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


@functools.lru_cache(maxsize=_KEY_CACHE)
def _rsa_public(raw: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_der_public_key(raw)
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size != _RSA_BITS:
        raise ValueError("not an RSA-3072 public key")
    return key


_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=_PSS_SALT)
_ECDSA_SIGN = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_ECDSA_VERIFY = ec.ECDSA(hashes.SHA256())


def _verify_ed25519(public: bytes, msg: bytes, sig: bytes) -> bool:
    if len(public) != 32 or len(sig) != 64:
        return False
    try:
        nacl.bindings.crypto_sign_open(sig + msg, public)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


def _verify_p256(public: bytes, msg: bytes, sig: bytes) -> bool:
    if len(sig) != 64:
        return False
    try:
        key = _p256_public(public)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        key.verify(der, msg, _ECDSA_VERIFY)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _verify_rsa(public: bytes, msg: bytes, sig: bytes) -> bool:
    if len(sig) != _RSA_BITS // 8 or len(public) > MAX_PUBLIC_KEY_SIZE:
        return False
    try:
        _rsa_public(public).verify(sig, msg, _PSS, hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


_VERIFIERS = {
    Scheme.ED25519: _verify_ed25519,
    Scheme.ECDSA_P256: _verify_p256,
    Scheme.RSA_PSS_3072: _verify_rsa,
}


def verify(scheme: str | Scheme, public: bytes, msg: bytes, sig: bytes) -> bool:
    """True if ``sig`` is a valid ``scheme`` signature of ``msg`` under raw key ``public``.

    Never raises: an unknown scheme, a malformed key or signature, or non-bytes input give
    ``False``.
    """
    if not (
        isinstance(public, bytes) and isinstance(msg, bytes) and isinstance(sig, bytes)
    ) or not is_known_scheme(scheme):
        return False
    return _VERIFIERS[Scheme(scheme)](public, msg, sig)


def public_key_object(scheme: str | Scheme, public: bytes) -> Any:
    """The ``cryptography`` public-key object for raw key ``public`` (for X.509 and TLS code).

    Raises :class:`KeyFormatError` if the bytes are not a key of ``scheme``.
    """
    s = scheme_of(scheme)
    try:
        if s is Scheme.ED25519:
            return ed25519.Ed25519PublicKey.from_public_bytes(public)
        if s is Scheme.ECDSA_P256:
            return _p256_public(public)
        return _rsa_public(public)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"not a {s} public key: {exc}") from None


def raw_public_of(key_object: Any) -> tuple[Scheme, bytes]:
    """``(scheme, raw public bytes)`` of a ``cryptography`` public-key object (e.g. from a cert).

    Raises :class:`KeyFormatError` for key types outside the three schemes.
    """
    if isinstance(key_object, ed25519.Ed25519PublicKey):
        return Scheme.ED25519, key_object.public_bytes_raw()
    if isinstance(key_object, ec.EllipticCurvePublicKey) and isinstance(
        key_object.curve, ec.SECP256R1
    ):
        raw = key_object.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )
        return Scheme.ECDSA_P256, raw
    if isinstance(key_object, rsa.RSAPublicKey) and key_object.key_size == _RSA_BITS:
        raw = key_object.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return Scheme.RSA_PSS_3072, raw
    raise KeyFormatError(f"unsupported public key type {type(key_object).__name__}")


# ---------------------------------------------------------------------------------------------
# Private keys


class SigningKey:
    """A private signing key of one :class:`Scheme`.

    Build with :meth:`generate` (optionally from a 32-byte seed) or :meth:`from_pkcs8`; sign with
    :meth:`sign`; the raw public key is :attr:`public`.
    """

    __slots__ = ("_nacl", "_ossl", "_public", "_scheme")

    def __init__(self, scheme: Scheme, private: Any) -> None:
        """Wrap a backend key object; use :meth:`generate` or :meth:`from_pkcs8` instead."""
        self._scheme = scheme
        self._nacl: nacl.signing.SigningKey | None = None
        self._ossl: Any = None
        if scheme is Scheme.ED25519:
            assert isinstance(private, nacl.signing.SigningKey)
            self._nacl = private
            self._public = bytes(private.verify_key)
        else:
            self._ossl = private
            self._public = raw_public_of(private.public_key())[1]

    @classmethod
    def generate(
        cls, scheme: str | Scheme = Scheme.ED25519, seed: bytes | None = None
    ) -> SigningKey:
        """A new key of ``scheme``; deterministic when a 32-byte ``seed`` is given.

        Seeds are for tests and the workload generator. RSA cannot be seeded
        (:class:`SeedNotSupportedError`).
        """
        s = scheme_of(scheme)
        if seed is not None and (not isinstance(seed, bytes) or len(seed) != SEED_SIZE):
            raise ValueError(f"a seed is exactly {SEED_SIZE} bytes")
        if s is Scheme.ED25519:
            key = nacl.signing.SigningKey(seed) if seed else nacl.signing.SigningKey.generate()
            return cls(s, key)
        if s is Scheme.ECDSA_P256:
            if seed is None:
                return cls(s, ec.generate_private_key(ec.SECP256R1()))
            okm = HKDF(
                algorithm=hashes.SHA256(), length=48, salt=None, info=b"medbench/ecdsa-p256/v1"
            ).derive(seed)
            d = int.from_bytes(okm, "big") % (_P256_ORDER - 1) + 1
            return cls(s, ec.derive_private_key(d, ec.SECP256R1()))
        if seed is not None:
            raise SeedNotSupportedError("RSA keys cannot be generated from a seed")
        return cls(s, rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS))

    @property
    def scheme(self) -> Scheme:
        """The signature scheme of this key."""
        return self._scheme

    @property
    def public(self) -> bytes:
        """The raw public key bytes (the form used on the wire and as an identifier)."""
        return self._public

    @property
    def public_key(self) -> PublicKey:
        """The public key tagged with its scheme."""
        return PublicKey(self._scheme, self._public)

    def sign(self, msg: bytes) -> bytes:
        """The signature of ``msg`` (length :data:`SIGNATURE_SIZE` of the scheme)."""
        if self._nacl is not None:
            return self._nacl.sign(msg).signature
        if self._scheme is Scheme.ECDSA_P256:
            r, s = decode_dss_signature(self._ossl.sign(msg, _ECDSA_SIGN))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return bytes(self._ossl.sign(msg, _PSS, hashes.SHA256()))

    def to_cryptography(self) -> Any:
        """The equivalent ``cryptography`` private-key object (for X.509 issuing, TLS)."""
        if self._nacl is not None:
            return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(self._nacl))
        return self._ossl

    def to_pkcs8(self) -> bytes:
        """The unencrypted PKCS#8 DER of this key; wrap it with :mod:`medbench.crypto.pbe`."""
        return bytes(
            self.to_cryptography().private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    @classmethod
    def from_cryptography(cls, private: Any) -> SigningKey:
        """Wrap a ``cryptography`` private-key object of one of the three schemes."""
        if isinstance(private, ed25519.Ed25519PrivateKey):
            return cls(Scheme.ED25519, nacl.signing.SigningKey(private.private_bytes_raw()))
        scheme, _ = raw_public_of(private.public_key())
        return cls(scheme, private)

    @classmethod
    def from_pkcs8(cls, der: bytes) -> SigningKey:
        """Load an unencrypted PKCS#8 DER key; raises :class:`KeyFormatError` if malformed."""
        try:
            private = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm, InternalError) as exc:
            raise KeyFormatError(f"not a PKCS#8 private key: {exc}") from None
        return cls.from_cryptography(private)

    def __repr__(self) -> str:
        return f"SigningKey({self._scheme}, public={self._public[:4].hex()}…)"


class PublicKey:
    """A raw public key tagged with its scheme; :meth:`verify` never raises."""

    __slots__ = ("raw", "scheme")

    def __init__(self, scheme: str | Scheme, raw: bytes) -> None:
        """Tag ``raw`` with ``scheme`` (raises :class:`UnknownSchemeError` for unknown names)."""
        self.scheme = scheme_of(scheme)
        self.raw = bytes(raw)

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """True if ``sig`` is a valid signature of ``msg`` under this key."""
        return verify(self.scheme, self.raw, msg, sig)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PublicKey) and self.scheme is other.scheme and self.raw == other.raw
        )

    def __hash__(self) -> int:
        return hash((self.scheme, self.raw))

    def __repr__(self) -> str:
        return f"PublicKey({self.scheme}, {self.raw[:4].hex()}…)"
