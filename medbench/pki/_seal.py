"""Private stand-in for field sealing: X25519 + HKDF-SHA256 + AES-256-GCM.

To be replaced by ``medbench.crypto``'s sealing once that package lands on this branch: ``seal``
has the same call shape (``seal(recipient_public, plaintext, aad, randbytes=...)``);
``open_sealed`` takes the raw ``X25519PrivateKey`` where ``medbench.crypto`` takes its
``EncryptionKey`` wrapper.

Theory of operation
-------------------
A fresh ephemeral X25519 key pair (its 32 secret bytes drawn from the injected ``random.Random``,
so runs are reproducible) agrees a shared secret with the recipient's X25519 public key. HKDF-SHA256
(salt = ephemeral public || recipient public, info = a fixed label) turns it into a one-time
AES-256-GCM key. Because every key is used exactly once, a fixed all-zero nonce is safe. The blob is
``ephemeral_public (32) || ciphertext || tag (16)``; only the holder of the recipient's private key
can open it, and any bit flip makes :func:`open_sealed` raise :class:`SealError`.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"medbench-pki-seal-v0"
_NONCE = bytes(12)
_EPH_LEN = 32
_TAG_LEN = 16


class SealError(ValueError):
    """A sealed blob cannot be opened: wrong key, truncated or tampered."""


def _derive(shared: bytes, eph_pub: bytes, rcpt_pub: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_pub + rcpt_pub, info=_INFO).derive(
        shared
    )


def seal(
    recipient: bytes,
    plaintext: bytes,
    aad: bytes = b"",
    *,
    randbytes: Callable[[int], bytes],
) -> bytes:
    """Seal ``plaintext`` to the raw 32-byte X25519 public key ``recipient``.

    Same call shape as ``medbench.crypto.seal`` (``randbytes`` is e.g. ``rng.randbytes``).
    """
    rcpt = X25519PublicKey.from_public_bytes(recipient)
    eph = X25519PrivateKey.from_private_bytes(randbytes(32))
    eph_pub = eph.public_key().public_bytes_raw()
    key = _derive(eph.exchange(rcpt), eph_pub, recipient)
    return eph_pub + AESGCM(key).encrypt(_NONCE, plaintext, aad)


def open_sealed(private: X25519PrivateKey, blob: bytes, aad: bytes = b"") -> bytes:
    """Open a :func:`seal` blob with the recipient's private key; raises :class:`SealError`."""
    if len(blob) < _EPH_LEN + _TAG_LEN:
        raise SealError("sealed blob too short")
    eph_pub = blob[:_EPH_LEN]
    rcpt_pub = private.public_key().public_bytes_raw()
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    except ValueError as exc:  # all-zero shared secret from a low-order point
        raise SealError(f"bad ephemeral key: {exc}") from None
    key = _derive(shared, eph_pub, rcpt_pub)
    try:
        return AESGCM(key).decrypt(_NONCE, blob[_EPH_LEN:], aad)
    except InvalidTag:
        raise SealError("sealed blob does not open under this key") from None
