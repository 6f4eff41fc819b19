"""Sealed grants, queries and audit records of the records layer (what the generator emits).

Theory of operation
-------------------
A stealth association (:mod:`medbench.records.association`) names nobody, but the paper's grant
``{grantee, from_us, until_us}`` is signed by the patient's own key and a query names its owner in
clear, and both are written at the visit, right next to the doctor's record: on the workload
generator's output an observer pairing each record with the last grant to (or query by) its author
names the patient about half the time (issue 4, item 6). This module is the records-layer twin
of the access layer's sealed requests (:mod:`medbench.crypto.envelope`,
:mod:`medbench.pki.pseudonym`):

* a **sealed grant** (:func:`sealed_grant_view`) is signed by a one-day *pseudonym* key of the
  patient, certified by the consortium's pseudonym CA with its link to her sealed to the
  consortium access key; its content is ``{envelope, view}``. ``envelope`` holds, sealed to the
  access key, the patient, grantee, window and the pseudonym's certificate chain (nobody but the
  validators even sees the certificate); ``view`` is the view capability
  (:mod:`medbench.records.capability`) sealed to the grantee, its plaintext naming the patient
  and window too and padded to a power of two, its associated data binding it to the envelope;
* a **sealed query** (:func:`sealed_query`) is signed by the querying doctor in clear (he is
  accountable) with ``{envelope}`` holding the :class:`~medbench.records.crud.QueryCondition`;
* an **audit record** (:func:`audit_record`) of a query, written by a validator, names the query
  and its signer and seals the patient (:func:`medbench.crypto.envelope.seal_record`).

The validators (holders of the access key) open each with :func:`open_sealed_grant`,
:func:`open_sealed_query` and :func:`open_audit` — a grant is believed only if its pseudonym
certificate verifies against the pseudonym CA as of the grant's time, names the grant's signer,
and its sealed link names the patient the envelope names. The grantee finds his grants by trying
every ``view`` box (:func:`read_sealed_view`).

What everybody else still sees, by design: the kind and time of every transaction, the doctor who
queried and wrote, a fresh signing key per grant, and padded box sizes (the view's grows with the
number of associations shared, in powers of two). What remains of the timing channel is
measured in ``tests/records/test_records_unlinkability.py``: a grant or query just before a
doctor's record says *someone* was treated then, and nothing says who — on the generator's
output (20 patients, 300 visits, seeds 0-4) the strongest observer there names 52.7-55.7% of the
records' patients on the clear form and 4.0-5.0% (its prior; chance is 5%) on this one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509

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
from medbench.crypto.identity import Identity, IdentityPublic
from medbench.crypto.keys import SigningKey
from medbench.crypto.sealing import EncryptionKey, RandBytes
from medbench.hashing import sha256
from medbench.ledger.transaction import Kind, Transaction
from medbench.pki.certpath import CertificateError, RevocationRegistry, verify_chain
from medbench.pki.pseudonym import PseudonymError, read_link
from medbench.records.association import FoundAssociation
from medbench.records.capability import (
    MAX_VIEW_ENTRIES,
    MIN_VIEW_BYTES,
    ViewCapability,
    parse_view_entries,
)
from medbench.records.crud import QueryCondition
from medbench.records.errors import RecordDecodeError, RecordUsageError

_VIEW_INFO = b"medbench/sealed-view/v1"
GRANT_FIELDS = frozenset({"envelope", "view"})
QUERY_FIELDS = frozenset({"envelope"})


@dataclass(frozen=True, slots=True)
class SealedGrant:
    """A sealed grant as the validators read it."""

    patient: bytes
    grantee: bytes
    from_us: int
    until_us: int
    pseudonym: bytes


def _fields(tx: Transaction, kind: Kind, keys: frozenset[str]) -> dict[str, bytes]:
    if tx.kind is not kind:
        raise RecordDecodeError(f"not a {kind.name.lower()} transaction")
    try:
        c = codec.decode(tx.content)
    except codec.DecodeError as exc:
        raise RecordDecodeError(f"malformed sealed {kind.name.lower()}: {exc}") from None
    if not isinstance(c, dict) or set(c) != keys or not all(type(v) is bytes for v in c.values()):
        raise RecordDecodeError(f"a sealed {kind.name.lower()} is {sorted(keys)}")
    return c


def is_sealed_grant(tx: Transaction) -> bool:
    """Whether ``tx`` is a grant in the sealed form (never raises)."""
    try:
        _fields(tx, Kind.GRANT, GRANT_FIELDS)
    except RecordDecodeError:
        return False
    return True


def sealed_grant_view(
    patient: Identity,
    grantee: IdentityPublic,
    associations: Iterable[FoundAssociation],
    from_us: int,
    until_us: int,
    timestamp_us: int,
    *,
    access_public: bytes,
    pseudonym: SigningKey,
    pseudonym_chain: Sequence[bytes],
    randbytes: RandBytes = os.urandom,
) -> Transaction:
    """A grant of a view capability, signed by ``pseudonym`` (certified by ``pseudonym_chain``),
    its patient-identifying fields sealed to the consortium access key (module docstring)."""
    if not 0 <= from_us < until_us:
        raise RecordUsageError("a grant window needs 0 <= from_us < until_us")
    entries = [[a.association_id, a.link_secret] for a in associations]
    if len(entries) > MAX_VIEW_ENTRIES:
        raise RecordUsageError(f"a view capability holds at most {MAX_VIEW_ENTRIES} entries")
    fields = {
        "patient": patient.key,
        "grantee": grantee.signing,
        "from_us": from_us,
        "until_us": until_us,
        "pseudonym_chain": list(pseudonym_chain),
    }
    envelope = seal_envelope(
        access_public, fields, envelope_aad("grant", pseudonym.public), randbytes=randbytes
    )
    plain = pad(
        {"patient": patient.key, "from_us": from_us, "until_us": until_us, "entries": entries},
        MIN_VIEW_BYTES,
    )
    view = grantee.seal(plain, _VIEW_INFO + sha256(envelope), randbytes=randbytes)
    content = codec.encode({"envelope": envelope, "view": view})
    return Transaction.create(Kind.GRANT, content, timestamp_us, [pseudonym])


def open_sealed_grant(
    access_key: EncryptionKey, tx: Transaction, anchors: Sequence[x509.Certificate]
) -> SealedGrant:
    """What a validator reads in a sealed grant, after checking its pseudonym (module docstring).

    Raises :class:`RecordDecodeError` for anything else, including a pseudonym that does not
    verify against ``anchors`` (the pseudonym CA) or stands for another patient.
    """
    c = _fields(tx, Kind.GRANT, GRANT_FIELDS)
    if len(tx.public_keys) != 1:
        raise RecordDecodeError("a sealed grant is signed by one pseudonym")
    try:
        f = open_envelope(access_key, c["envelope"], envelope_aad("grant", tx.author))
    except EnvelopeError as exc:
        raise RecordDecodeError(str(exc)) from None
    keys = {"patient", "grantee", "from_us", "until_us", "pseudonym_chain"}
    if set(f) != keys or not isinstance(f["pseudonym_chain"], list):
        raise RecordDecodeError(f"a sealed grant's envelope holds {sorted(keys)}")
    try:
        ident = verify_chain(
            tuple(f["pseudonym_chain"]), tuple(anchors), tx.timestamp_us, RevocationRegistry()
        )
        link = read_link(ident.cert, access_key)
    except (CertificateError, PseudonymError, TypeError) as exc:
        raise RecordDecodeError(f"the grant's pseudonym does not verify: {exc}") from None
    if ident.public_key != tx.author or link.principal != f["patient"]:
        raise RecordDecodeError("the grant's pseudonym is not the patient's")
    if not (
        type(f["from_us"]) is int and type(f["until_us"]) is int and type(f["grantee"]) is bytes
    ):
        raise RecordDecodeError("malformed grant window or grantee")
    return SealedGrant(f["patient"], f["grantee"], f["from_us"], f["until_us"], tx.author)


def read_sealed_view(grantee: Identity, grant: Transaction) -> ViewCapability:
    """The view capability of a sealed grant, if it is addressed to ``grantee``.

    Raises :class:`RecordDecodeError` if the box does not open with ``grantee``'s key (someone
    else's grant, or tampering) or its plaintext is not a view.
    """
    c = _fields(grant, Kind.GRANT, GRANT_FIELDS)
    try:
        body = unpad(grantee.open(c["view"], _VIEW_INFO + sha256(c["envelope"])))
    except (SealError, EnvelopeError) as exc:
        raise RecordDecodeError(f"view capability does not open: {exc}") from None
    if set(body) != {"patient", "from_us", "until_us", "entries"}:
        raise RecordDecodeError("a sealed view is patient, window and entries")
    out = parse_view_entries(body["entries"])
    lo, hi = body["from_us"], body["until_us"]
    if type(body["patient"]) is not bytes or type(lo) is not int or type(hi) is not int:
        raise RecordDecodeError("malformed view patient or window")
    return ViewCapability(body["patient"], grantee.key, lo, hi, out)


def sealed_query(
    condition: QueryCondition,
    timestamp_us: int,
    querier: SigningKey,
    *,
    access_public: bytes,
    randbytes: RandBytes = os.urandom,
) -> Transaction:
    """A ``query`` signed by the querier in clear, its condition sealed to the access key."""
    aad = envelope_aad("query", querier.public)
    envelope = seal_envelope(
        access_public, {"condition": condition.encode()}, aad, randbytes=randbytes
    )
    return Transaction.create(
        Kind.QUERY, codec.encode({"envelope": envelope}), timestamp_us, [querier]
    )


def open_sealed_query(access_key: EncryptionKey, tx: Transaction) -> QueryCondition:
    """The condition of a sealed query; raises :class:`RecordDecodeError`."""
    c = _fields(tx, Kind.QUERY, QUERY_FIELDS)
    if len(tx.public_keys) != 1:
        raise RecordDecodeError("a sealed query is signed by its querier alone")
    try:
        f = open_envelope(access_key, c["envelope"], envelope_aad("query", tx.author))
    except EnvelopeError as exc:
        raise RecordDecodeError(str(exc)) from None
    if set(f) != {"condition"} or type(f["condition"]) is not bytes:
        raise RecordDecodeError("a sealed query's envelope holds its condition")
    return QueryCondition.decode(f["condition"])


def audit_record(
    query_tx: Transaction,
    patient: bytes,
    timestamp_us: int,
    validator: SigningKey,
    access_key: EncryptionKey | None,
) -> Transaction:
    """A validator's audit record of an answered query (docs/medical-chain.md §1.3: every query is
    logged).

    With ``access_key`` the patient is sealed (the same bytes whichever validator writes it);
    without it (the paper's clear form) she is named in clear.
    """
    content: dict[str, object] = {
        "type": "audit",
        "request": query_tx.id,
        "signer": query_tx.author,
        "operation": "read",
        "outcome": "allowed",
    }
    if access_key is None:
        content["patient"] = patient
    else:
        content["sealed"] = seal_record(access_key, "audit", query_tx.id, {"patient": patient})
    return Transaction.create(Kind.QUERY, codec.encode(content), timestamp_us, [validator])


def open_audit(access_key: EncryptionKey, tx: Transaction) -> bytes:
    """The patient of a sealed audit record; raises :class:`RecordDecodeError`."""
    try:
        c = codec.decode(tx.content)
        request, box = c["request"], c["sealed"]
        f = open_record(access_key, "audit", request, box)
    except (codec.DecodeError, EnvelopeError, KeyError, TypeError) as exc:
        raise RecordDecodeError(f"not a sealed audit record: {exc}") from None
    if set(f) != {"patient"} or type(f["patient"]) is not bytes:
        raise RecordDecodeError("a sealed audit holds the patient")
    return bytes(f["patient"])
