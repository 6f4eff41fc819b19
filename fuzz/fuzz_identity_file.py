"""Identity key files (``medbench.crypto.identity.Identity.load``): an identity's two encrypted
PKCS#8 keys and its public half, as the canonical codec array a user keeps on disk; and the
public half alone (``IdentityPublic.from_fields``, what a registration carries).

Allowed: an identity / public half, or a :class:`~medbench.crypto.errors.CryptoError`
(``KeyFormatError``, ``WrongPasswordError``, ``BindingError``). Files asking for a scrypt cost
above 4 MiB are skipped (see :mod:`fuzz.fuzz_pkcs8`). Checked on an identity: its public half
is bound and is the one the file stored.
"""

from __future__ import annotations

from fuzz.common import ByteReader, Harness, OneInput, Skip, expect
from fuzz.fuzz_pkcs8 import MAX_FUZZ_SCRYPT, PASSWORD
from medbench import codec
from medbench.crypto import pbe
from medbench.crypto.errors import CryptoError, KeyFormatError
from medbench.crypto.identity import Identity, IdentityPublic
from medbench.crypto.keys import Scheme


def _cheap(blob: bytes) -> None:
    try:
        fields = codec.decode(blob)
    except codec.DecodeError:
        return
    if isinstance(fields, list):
        for f in fields[3:5]:
            try:
                _salt, n, r, p, _iv, _ct = pbe._parse(f)
            except KeyFormatError:
                continue
            if 128 * n * r * p > MAX_FUZZ_SCRYPT:
                raise Skip


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        mode = r.u8() % 2
        rest = r.rest()
        if mode == 0:
            _cheap(rest)
            ident = Identity.load(rest, PASSWORD)
            stored = IdentityPublic.from_fields(codec.decode(rest)[2])
            expect(ident.public.is_bound(), "a loaded identity is not bound")
            expect(ident.public.signing == stored.signing, "loaded another signing key")
        else:
            try:
                fields = codec.decode(rest)
            except codec.DecodeError:
                raise Skip from None
            public = IdentityPublic.from_fields(fields)
            public.is_bound()
            expect(IdentityPublic.from_fields(public.to_fields()) == public, "fields round trip")
            public.check()

    return one_input


def seeds() -> list[bytes]:
    out = []
    for i, scheme in enumerate((Scheme.ED25519, Scheme.ECDSA_P256)):
        ident = Identity.generate(scheme, seed=bytes([i + 5]) * 32)
        out.append(b"\x00" + ident.export(PASSWORD, log2_n=10))
        out.append(b"\x01" + codec.encode(ident.public.to_fields()))
    return out


HARNESS = Harness(
    name="identity_file",
    summary="crypto.identity.Identity.load / IdentityPublic.from_fields (identity key files)",
    allowed=(CryptoError,),
    setup=setup,
    seeds=seeds,
    max_len=4096,
    timeout_s=20,
)
