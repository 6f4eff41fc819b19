"""Access envelopes: the patient-identifying fields of a request, sealed to the validators.

Theory of operation
-------------------
docs/medical-chain.md §1.5 makes validators check permission transactions before answering, so a
grant, a revocation or a query must tell *them* who the patient is — but the paper writes these
fields in clear on a chain every node, auditor and leak can read, and an observer who pairs each
record with the last grant to (or query by) its author names the patient about half the time (issue
4, item 6). medbench seals them instead to the **consortium access key**: one X25519 key pair that
the KMC issues and escrows (:meth:`medbench.pki.kmc.KeyManagementCenter.access_key`) and that
every consortium validator holds. Anyone else — an outside observer, an auditor with headers and
IDs, a leaked body — sees only what the ledger needs in clear: the kind, the operation, the
signer's key, a nonce, the timestamp and a box of padded length.

* :func:`seal_envelope` seals a canonical dict with :func:`medbench.crypto.sealing.seal` (X25519 +
  HKDF-SHA-256 + AES-256-GCM, a fresh ephemeral key per box) under associated data that binds the
  clear parts (:func:`envelope_aad`), so a box cannot be moved into another transaction; the
  plaintext is padded to a power of two of at least :data:`MIN_ENVELOPE_BYTES`, so its length
  says little about what is inside.
* :func:`open_envelope` is what every validator runs: the same key and the same bytes give the
  same dict on every honest replica, so all of them reach the same verdict. Any failure — the
  wrong key, a flipped bit, another transaction's box, a plaintext that is not a padded dict —
  raises :class:`EnvelopeError`, which the validator turns into the typed refusal
  ``sealed-envelope`` (:mod:`medbench.access.request` raises its own subclass, which is also a
  request error).
* :func:`seal_record` seals the patient fields of a record the validators themselves write (the
  audit and blacklist records of :mod:`medbench.access.validator`). Each replica drafts its own
  copy, and replicas compare a record with the one they derived (:mod:`medbench.medchain.
  chain_records`), so this box must be the same on every replica: its ephemeral key is derived
  from the access private key, the record type and the request ID (HKDF), which only key holders
  can compute. One (type, request) is only ever sealed with one plaintext, so the derived key is
  used once.

What the validators still see is everything inside: who the patient is, the grantee, the
category, the body (a record's content), and behind a pseudonym the real requester
(:mod:`medbench.pki.pseudonym`) — they must, to evaluate permissions exactly as on clear requests.
What everybody else still sees: the kind and operation, the timestamp, the signer (a doctor or
institution by name; a patient only as a fresh one-day pseudonym), and the padded box length
(512 bytes for a doctor's small request, 8 KiB for a pseudonymous one, which carries seven
certificates). The timing channel that remains — a grant or read just before a doctor's record
says that *someone* was treated — names nobody: the strongest observer of
``tests/records/test_records_unlinkability.py`` falls from 52.7-55.7% to its prior (4.0-5.0%,
chance 5%) when grants, queries and audits are sealed this way.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medbench import codec
from medbench.crypto.errors import CryptoError, KeyFormatError, SealError
from medbench.crypto.sealing import EncryptionKey, RandBytes, open_sealed, seal

ENVELOPE_INFO = b"medbench/access-envelope/v1"
RECORD_INFO = b"medbench/access-record/v1"
MIN_ENVELOPE_BYTES = 512
MAX_ENVELOPE_BYTES = 1 << 20
_LIMITS = codec.Limits(max_bytes=MAX_ENVELOPE_BYTES, max_depth=8, max_container_len=4096)


class EnvelopeError(CryptoError, ValueError):
    """A sealed envelope does not open, or what it holds is not what its request claims."""


def envelope_aad(*clear: Any) -> bytes:
    """The associated data binding a box to the clear fields beside it."""
    return codec.encode([ENVELOPE_INFO, *clear])


def pad(fields: dict[str, Any], minimum: int = MIN_ENVELOPE_BYTES) -> bytes:
    """``fields`` plus a ``pad`` entry, encoded to exactly a power of two (>= ``minimum``) bytes."""
    if "pad" in fields:
        raise ValueError("'pad' is reserved for the padding")
    bare = len(codec.encode({**fields, "pad": b""}))
    target = max(minimum, 1 << (bare - 1).bit_length())
    # the pad's own length prefix grows with it: step down until the total is exact
    for k in range(target - bare, -1, -1):
        encoded = codec.encode({**fields, "pad": b"\x00" * k})
        if len(encoded) == target:
            return encoded
        if len(encoded) < target:  # a length-prefix jump skipped the exact size: next power
            return pad(fields, target * 2)
    raise AssertionError("padding search always ends at k = 0")


def unpad(plain: bytes) -> dict[str, Any]:
    """The dict :func:`pad` encoded, without its padding; raises :class:`EnvelopeError`."""
    try:
        fields = codec.decode(plain, _LIMITS)
    except codec.DecodeError as exc:
        raise EnvelopeError(f"envelope plaintext does not decode: {exc}") from None
    if not isinstance(fields, dict) or type(fields.get("pad")) is not bytes:
        raise EnvelopeError("an envelope holds a padded dict")
    if fields["pad"].strip(b"\x00"):
        raise EnvelopeError("envelope padding is not zero bytes")
    del fields["pad"]
    return fields


def seal_envelope(
    access_public: bytes,
    fields: dict[str, Any],
    aad: bytes,
    *,
    randbytes: RandBytes = os.urandom,
) -> bytes:
    """Seal ``fields`` (padded) to the consortium access key under ``aad``."""
    return seal(access_public, pad(fields), aad, randbytes=randbytes)


def open_envelope(access_key: EncryptionKey | None, box: Any, aad: bytes) -> dict[str, Any]:
    """The dict inside ``box``; raises only :class:`EnvelopeError` (never for other reasons)."""
    if access_key is None:
        raise EnvelopeError("a sealed request reached a node without the consortium access key")
    if type(box) is not bytes or len(box) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError("an envelope is a bounded byte string")
    try:
        plain = open_sealed(access_key, box, aad)
    except SealError as exc:
        raise EnvelopeError(f"envelope does not open: {exc}") from None
    return unpad(plain)


def _record_ephemeral(access_key: EncryptionKey, record_type: str, request_id: bytes) -> bytes:
    info = RECORD_INFO + codec.encode([record_type, request_id])
    derived: bytes = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        access_key.private_raw()
    )
    return derived


def seal_record(
    access_key: EncryptionKey, record_type: str, request_id: bytes, fields: dict[str, Any]
) -> bytes:
    """The box of a validator-written record's patient fields: the same bytes on every replica
    that holds ``access_key`` (see the module docstring)."""
    eph = _record_ephemeral(access_key, record_type, request_id)
    aad = codec.encode([RECORD_INFO, record_type, request_id])
    try:
        return seal(access_key.public, pad(fields, 128), aad, randbytes=lambda n: eph[:n])
    except KeyFormatError as exc:  # pragma: no cover - a derived scalar is always a valid key
        raise AssertionError(f"derived record key rejected: {exc}") from None


def open_record(
    access_key: EncryptionKey, record_type: str, request_id: bytes, box: Any
) -> dict[str, Any]:
    """The fields :func:`seal_record` sealed; raises :class:`EnvelopeError`."""
    aad = codec.encode([RECORD_INFO, record_type, request_id])
    return open_envelope(access_key, box, aad)
