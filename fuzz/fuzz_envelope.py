"""Sealed envelopes and boxes (``medbench.crypto.envelope``, ``medbench.crypto.sealing``): what a
validator opens with the consortium access key.

The first byte picks a mode: a raw box from a peer (``open_envelope``, ``open_record``,
``open_sealed``), or — to get past AES-GCM, which no mutation forges — the rest of the input
sealed to the access key as the *plaintext* of an envelope, so the padded-dict reader behind the
tag is fuzzed too. Allowed: a dict / plaintext, or :class:`~medbench.crypto.envelope.EnvelopeError`
/ :class:`~medbench.crypto.errors.SealError`. Checked on a dict: no ``pad`` left in it, and
padding it again gives a plaintext that opens to the same dict.
"""

from __future__ import annotations

from fuzz.common import ByteReader, Harness, OneInput, deterministic_bytes, expect
from medbench import codec
from medbench.crypto.envelope import (
    EnvelopeError,
    envelope_aad,
    open_envelope,
    open_record,
    pad,
    seal_envelope,
    seal_record,
    unpad,
)
from medbench.crypto.errors import SealError
from medbench.crypto.sealing import EncryptionKey, open_sealed, seal

ACCESS_KEY = EncryptionKey.generate(bytes(range(32)))
AAD = envelope_aad("query", bytes(32))
REQUEST_ID = bytes(range(32))


def _check(fields: dict[str, object]) -> None:
    expect("pad" not in fields, "the padding is left in the opened envelope")
    expect(unpad(pad(fields)) == fields, "pad/unpad does not round-trip an opened envelope")


def setup() -> OneInput:
    randbytes = deterministic_bytes("fuzz-envelope")

    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        mode = r.u8() % 5
        rest = r.rest()
        if mode == 0:
            _check(open_envelope(ACCESS_KEY, rest, AAD))
        elif mode == 1:  # the plaintext behind the tag
            _check(
                open_envelope(
                    ACCESS_KEY, seal(ACCESS_KEY.public, rest, AAD, randbytes=randbytes), AAD
                )
            )
        elif mode == 2:
            _check(open_record(ACCESS_KEY, "audit", REQUEST_ID, rest))
        elif mode == 3:
            _check(unpad(rest))
        else:
            open_sealed(ACCESS_KEY, rest, AAD)

    return one_input


def seeds() -> list[bytes]:
    randbytes = deterministic_bytes("fuzz-envelope-seeds")
    fields = {"patient": bytes(32), "category": "lab", "body": {"history": False}}
    env = seal_envelope(ACCESS_KEY.public, fields, AAD, randbytes=randbytes)
    rec = seal_record(ACCESS_KEY, "audit", REQUEST_ID, {"patient": bytes(32)})
    plain = pad(fields)
    small = pad({"a": [1, 2, {"b": b"c"}]}, 16)
    return [
        b"\x00" + env,
        b"\x01" + plain,
        b"\x01" + small,
        b"\x02" + rec,
        b"\x03" + plain,
        b"\x03" + codec.encode({"pad": b""}),
        b"\x04" + seal(ACCESS_KEY.public, b"hello", AAD, randbytes=randbytes),
    ]


HARNESS = Harness(
    name="envelope",
    summary="crypto.envelope / crypto.sealing (sealed envelopes and boxes)",
    allowed=(EnvelopeError, SealError),
    setup=setup,
    seeds=seeds,
    max_len=8192,
)
