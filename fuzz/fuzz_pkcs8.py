"""Private keys at rest (``medbench.crypto.pbe``, ``medbench.crypto.keys``, ``medbench.crypto
.sealing``): PKCS#8 files, raw keys and public keys from disk or a peer.

The first byte picks the reader: an encrypted PKCS#8 file (PBES2 + scrypt + AES-256-CBC) opened
with the right password, with and without the expected public key; an unencrypted PKCS#8 key;
a raw X25519 private key; a raw public key of each scheme (parsed, and verified against).
Allowed: a key, or a :class:`~medbench.crypto.errors.CryptoError` (``KeyFormatError``,
``WrongPasswordError``). Files whose scrypt cost is legal but above 4 MiB are skipped (their cost
bound itself is checked by the parser, which runs on every input); ``verify`` may not raise.
"""

from __future__ import annotations

import random

from fuzz.common import ByteReader, Harness, OneInput, Skip, expect
from medbench.crypto import pbe
from medbench.crypto.errors import CryptoError
from medbench.crypto.keys import Scheme, SigningKey, public_key_object, verify
from medbench.crypto.sealing import EncryptionKey

PASSWORD = b"fuzz password"
SCHEMES = (Scheme.ED25519, Scheme.ECDSA_P256, Scheme.RSA_PSS_3072)
MAX_FUZZ_SCRYPT = 4 << 20
"""Largest scrypt working set the harness runs (bytes); costlier legal files are skipped."""


def _cheap(blob: bytes) -> None:
    _salt, n, r, p, _iv, _ct = pbe._parse(blob)  # KeyFormatError here is the real outcome
    if 128 * n * r * p > MAX_FUZZ_SCRYPT:
        raise Skip


def setup() -> OneInput:
    expected = SigningKey.generate(Scheme.ED25519, seed=bytes([1]) * 32).public

    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        mode = r.u8() % 6
        rest = r.rest()
        if mode == 0:
            _cheap(rest)
            key = pbe.decrypt_signing_key(rest, PASSWORD, expected_public=expected)
            expect(key.public == expected, "opened to a key other than the expected one")
        elif mode == 1:
            _cheap(rest)
            pbe.load_private_key(rest, PASSWORD)
        elif mode == 2:
            key = SigningKey.from_pkcs8(rest)
            expect(key.sign(b"m") and key.public, "a loaded key cannot sign")
        elif mode == 3:
            EncryptionKey.from_raw(rest)
        else:  # a raw public key of the scheme the next byte names
            scheme = SCHEMES[(rest[:1] or b"\0")[0] % len(SCHEMES)]
            raw = rest[1:]
            expect(verify(scheme, raw, b"message", bytes(64)) is False, "a zero signature verified")
            public_key_object(scheme, raw)

    return one_input


def seeds() -> list[bytes]:
    rb = random.Random("fuzz-pkcs8").randbytes
    ed = SigningKey.generate(Scheme.ED25519, seed=bytes([1]) * 32)
    p256 = SigningKey.generate(Scheme.ECDSA_P256, seed=bytes([2]) * 32)
    enc = EncryptionKey.generate(bytes([3]) * 32)
    out = [
        b"\x00" + pbe.encrypt_signing_key(ed, PASSWORD, log2_n=10, randbytes=rb),
        b"\x01" + pbe.encrypt_signing_key(p256, PASSWORD, log2_n=10, randbytes=rb),
        b"\x01" + pbe.encrypt_pkcs8(enc.to_pkcs8(), PASSWORD, log2_n=10, randbytes=rb),
        b"\x02" + ed.to_pkcs8(),
        b"\x02" + p256.to_pkcs8(),
        b"\x03" + enc.private_raw(),
        b"\x04\x00" + ed.public,
        b"\x05\x01" + p256.public,
    ]
    return out


HARNESS = Harness(
    name="pkcs8",
    summary="crypto.pbe / crypto.keys / crypto.sealing (PKCS#8 key files, raw keys)",
    allowed=(CryptoError,),
    setup=setup,
    seeds=seeds,
    max_len=4096,
    timeout_s=20,
)
