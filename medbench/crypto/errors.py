"""Typed errors of :mod:`medbench.crypto`.

Caller misuse (an unknown scheme name given by our own code, a seed of the wrong length) raises
:class:`CryptoUsageError`; bytes from outside that fail a check (a wrong password, a tampered
ciphertext, a malformed key file) raise the matching subclass of :class:`CryptoError`. Signature
checks never raise: :func:`medbench.crypto.keys.verify` answers ``False``.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every error this package raises."""


class CryptoUsageError(CryptoError, ValueError):
    """Local misuse: bad arguments from our own code, not from a peer."""


class UnknownSchemeError(CryptoUsageError):
    """A signature scheme name that this kit does not implement."""


class SeedNotSupportedError(CryptoUsageError):
    """Deterministic generation from a seed was asked of a scheme that does not offer it (RSA)."""


class KeyFormatError(CryptoError):
    """Key bytes (raw public key, PKCS#8, encrypted key file) are malformed."""


class WrongPasswordError(CryptoError):
    """A password-encrypted key did not open: wrong password, or the file was tampered with.

    AES-GCM cannot tell the two apart, and saying which would help an attacker.
    """


class SealError(CryptoError):
    """A sealed box is malformed or was tampered with, or the recipient key is wrong."""


class BindingError(CryptoError):
    """An identity's encryption key is not bound to its signing key by a valid signature."""
