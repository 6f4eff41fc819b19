"""The request the validator judges: :class:`AccessRequest`, and its mapping from a transaction.

Theory of operation
-------------------
A Medical Chain client turns every action into a signed transaction (docs/medical-chain.md §1.2,
§1.5): the transaction ID is SHA-256 over the canonical ``(kind, content, timestamp, public keys)``
and every creator signs that ID. A medical-record transaction carries two keys and two signatures,
the worker's and the institution's. :class:`AccessRequest` is exactly that shape seen from the
access layer:

* ``operation`` (an :class:`Operation`) maps onto one ledger kind (:data:`LEDGER_KIND`);
* ``content`` = ``{"op", "requester", "patient", "category", "nonce", "body"}`` — everything the
  rules need, in one canonical dict;
* a *visibility query* (who may see Consents and AuditEvents) is a plain ``read`` whose
  ``category`` is one of :data:`VISIBILITY_SCOPES` (``consent:own``, ``audit:all``, ...): no new
  operation, field or encoding, so its ID and ledger kind (``query``, audited) are a read's;
* ``timestamp_us`` is the request's *consensus* time, the only clock the rules ever read;
* ``signatures``: one :class:`Signature` per creator, each with the signer's raw Ed25519 key, its
  signature over the request ID and its certificate chain (leaf first). The first signer is the
  requester; a second one is the institution's countersignature.

:func:`transaction_id` restates the ledger's ID rule. When ``medbench.ledger`` lands, the adapter
:func:`from_transaction_fields` is where a ledger transaction is mapped onto a request (its fields
are plain values on purpose, so no import of the ledger is needed here), and ``transaction_id``
becomes a call into the ledger.

**Sealed form.** On a chain everybody can read, the clear content names the patient (and, for
her own grants and reads, signs with her key). A request built with the consortium access key
(:func:`build_request` ``access_public=``) travels instead as ``{"op", "signer", "nonce",
"envelope"}``: ``signer`` is the first creator's key (a doctor's own key; a patient's one-time
pseudonym, :mod:`medbench.pki.pseudonym`) and ``envelope`` is
:func:`medbench.crypto.envelope.seal_envelope` of ``{"requester", "patient", "category", "body",
"signer_chain", "principal_chain"}``, bound by its associated data to the kind, operation,
signer and nonce. The ID and signatures cover the sealed bytes, so the ledger's tamper checks and
an outside auditor work unchanged. The validators open the envelope
(:func:`from_transaction_fields` with ``access_key=``) and judge the very fields a clear request
would carry; :attr:`AccessRequest.requester` is then the *principal* (the real identity behind a
pseudonym) and :attr:`AccessRequest.signer_key` the key that signed.

Everything arriving from outside goes through :meth:`AccessRequest.__post_init__` and raises only
:class:`RequestError` on malformed input (:class:`SealedRequestError`, a subclass that is also an
:class:`~medbench.crypto.envelope.EnvelopeError`, when an envelope does not open).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medbench import codec
from medbench.crypto.envelope import EnvelopeError, open_envelope
from medbench.hashing import sha256
from medbench.pki.drafts import RequestDraft

if TYPE_CHECKING:
    from medbench.crypto.sealing import EncryptionKey, RandBytes

MAX_BODY_BYTES = 1 << 20
NONCE_LEN = 16
ALL = "*"
"""The category meaning "all records"."""

CONSENT_OWN = "consent:own"
CONSENT_GRANTEE = "consent:grantee"
CONSENT_ALL = "consent:all"
AUDIT_OWN = "audit:own"
AUDIT_ALL = "audit:all"
VISIBILITY_SCOPES = frozenset({CONSENT_OWN, CONSENT_GRANTEE, CONSENT_ALL, AUDIT_OWN, AUDIT_ALL})
"""The categories of a *visibility query*: a ``read`` asking to see permissions (Consents, i.e.
grants) or the audit trail rather than records (docs/medical-chain.md §1.6, "Who sees the
permissions"): ``own`` (the requester's own), ``grantee`` (the grants of ``patient`` naming the
requester), ``all`` (an authority's view, the blacklist included)."""

VISIBILITY_PREFIXES = ("consent:", "audit:")
"""Category prefixes reserved for visibility queries: never a record category."""


def is_visibility(category: str) -> bool:
    """Whether ``category`` lies in the reserved visibility namespace (a known scope or a forged
    one, which the validator refuses as ``invalid-body``)."""
    return category.startswith(VISIBILITY_PREFIXES)


class RequestError(ValueError):
    """A request (or the transaction mapped onto it) is malformed."""


class SealedRequestError(RequestError, EnvelopeError):
    """A sealed request's envelope does not open, or holds the wrong fields.

    Both a :class:`RequestError` (the request is malformed) and an
    :class:`~medbench.crypto.envelope.EnvelopeError` (the validator's ``sealed-envelope``).
    """


class Operation(enum.Enum):
    """What a request asks to do (docs/medical-chain.md §1.3 CRUD, §1.5 clients, §1.6
    permissions)."""

    READ = "read"
    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"
    HIDE = "hide"
    GRANT = "grant"
    REVOKE = "revoke"
    DELEGATE = "delegate"
    EMERGENCY = "emergency"


DATA_OPS = frozenset(
    {Operation.READ, Operation.ADD, Operation.MODIFY, Operation.DELETE, Operation.HIDE}
)
"""Operations on a patient's data, decided by self-access or grants."""

LEDGER_KIND: dict[Operation, str] = {
    Operation.READ: "query",
    Operation.ADD: "add",
    Operation.MODIFY: "update",
    Operation.DELETE: "delete",
    Operation.HIDE: "update",
    Operation.GRANT: "grant",
    Operation.REVOKE: "revoke",
    Operation.DELEGATE: "grant",
    Operation.EMERGENCY: "query",
}
"""The ledger transaction kind each operation travels as."""


LEDGER_KIND_CODES: dict[str, int] = {
    "add": 1,
    "delete": 2,
    "update": 3,
    "query": 4,
    "grant": 5,
    "revoke": 6,
    "associate": 7,
    "register": 8,
}
"""The ledger's integer codes of the kinds (``medbench.ledger.Kind``), used inside the ID."""


def transaction_id(
    kind: str | int, content: Any, timestamp_us: int, public_keys: Sequence[bytes]
) -> bytes:
    """The ledger's transaction ID (docs/medical-chain.md §1.2).

    SHA-256 over the canonical ``[kind code, content bytes, timestamp_us, [public keys]]``, where
    a dict ``content`` is first canonically encoded — byte for byte the rule of
    ``medbench.ledger.transaction_id`` for a transaction whose content is ``codec.encode(content)``.
    """
    code = LEDGER_KIND_CODES[kind] if isinstance(kind, str) else int(kind)
    body = content if type(content) is bytes else codec.encode(content)
    return bytes(sha256(codec.encode([code, body, timestamp_us, list(public_keys)])))


@dataclass(frozen=True, slots=True)
class Signature:
    """One creator's signature over the request ID, with its key and certificate chain."""

    public_key: bytes
    signature: bytes
    cert_chain: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if type(self.public_key) is not bytes or len(self.public_key) != 32:
            raise RequestError("a signer key is 32 raw Ed25519 bytes")
        if type(self.signature) is not bytes or len(self.signature) != 64:
            raise RequestError("an Ed25519 signature is 64 bytes")
        if not isinstance(self.cert_chain, tuple) or not all(
            type(c) is bytes for c in self.cert_chain
        ):
            raise RequestError("a certificate chain is a tuple of DER bytes")


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A signed request as the validator sees it (see the module docstring)."""

    operation: Operation
    requester: bytes
    patient: bytes
    category: str
    timestamp_us: int
    nonce: bytes
    body: dict[str, Any]
    signatures: tuple[Signature, ...] = ()
    envelope: bytes = field(default=b"", repr=False)
    signer: bytes = b""
    principal_chain: tuple[bytes, ...] = field(default=(), repr=False)
    _id: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.operation, Operation):
            raise RequestError("unknown operation")
        if type(self.requester) is not bytes or len(self.requester) != 32:
            raise RequestError("requester is a 32-byte Ed25519 public key")
        if type(self.patient) is not bytes or len(self.patient) not in (0, 32):
            raise RequestError("patient is a 32-byte public key (or empty for no patient)")
        if type(self.category) is not str or not 1 <= len(self.category) <= 64:
            raise RequestError("category is a short non-empty string")
        if type(self.timestamp_us) is not int or not 0 <= self.timestamp_us < 1 << 62:
            raise RequestError("timestamp_us is a non-negative int")
        if type(self.nonce) is not bytes or len(self.nonce) != NONCE_LEN:
            raise RequestError(f"nonce is {NONCE_LEN} bytes")
        if type(self.body) is not dict:
            raise RequestError("body is a dict")
        if not isinstance(self.signatures, tuple) or len(self.signatures) > 4:
            raise RequestError("at most four signatures")
        if type(self.envelope) is not bytes or len(self.envelope) > MAX_BODY_BYTES:
            raise RequestError("an envelope is a bounded byte string")
        if self.envelope and (type(self.signer) is not bytes or len(self.signer) != 32):
            raise RequestError("a sealed request names its 32-byte signer")
        if not self.envelope and (self.signer or self.principal_chain):
            raise RequestError("only a sealed request has a separate signer and principal chain")
        if not isinstance(self.principal_chain, tuple) or not all(
            type(c) is bytes for c in self.principal_chain
        ):
            raise RequestError("a principal chain is a tuple of DER bytes")
        try:
            encoded = codec.encode(self.content)
            if self.envelope:  # the sealed fields must be canonical too
                codec.encode(self.body)
        except codec.EncodeError as exc:
            raise RequestError(f"content is not canonical: {exc}") from None
        if len(encoded) > MAX_BODY_BYTES:
            raise RequestError("request content too large")
        rid = transaction_id(self.kind, self.content, self.timestamp_us, self.public_keys)
        object.__setattr__(self, "_id", rid)

    @property
    def kind(self) -> str:
        """The ledger transaction kind this request travels as."""
        return LEDGER_KIND[self.operation]

    @property
    def sealed(self) -> bool:
        """Whether this request travels in the sealed form (module docstring)."""
        return bool(self.envelope)

    @property
    def signer_key(self) -> bytes:
        """The key that must sign first: the requester's, or the sealed form's ``signer``."""
        return self.signer if self.envelope else self.requester

    @property
    def content(self) -> dict[str, Any]:
        """The transaction content: every field the rules read in one canonical dict, or in
        the sealed form the clear fields and the envelope."""
        if self.envelope:
            return {
                "op": self.operation.value,
                "signer": self.signer,
                "nonce": self.nonce,
                "envelope": self.envelope,
            }
        return {
            "op": self.operation.value,
            "requester": self.requester,
            "patient": self.patient,
            "category": self.category,
            "nonce": self.nonce,
            "body": self.body,
        }

    @property
    def content_bytes(self) -> bytes:
        """The canonical bytes of :attr:`content`: the ledger transaction's ``content``."""
        return codec.encode(self.content)

    @property
    def kind_code(self) -> int:
        """The ledger's integer code of :attr:`kind`."""
        return LEDGER_KIND_CODES[self.kind]

    @property
    def public_keys(self) -> list[bytes]:
        """The creators' keys, in signature order (part of the ID)."""
        return [s.public_key for s in self.signatures]

    @property
    def request_id(self) -> bytes:
        """The transaction ID (SHA-256; see :func:`transaction_id`)."""
        return self._id

    def __repr__(self) -> str:
        return (
            f"AccessRequest({self.operation.value} id={self._id[:4].hex()} "
            f"by={self.requester[:4].hex()} patient={self.patient[:4].hex()} "
            f"cat={self.category} t={self.timestamp_us}{' sealed' if self.envelope else ''})"
        )


ENVELOPE_FIELDS = frozenset(
    {"requester", "patient", "category", "body", "signer_chain", "principal_chain"}
)
"""What the envelope of a sealed request holds."""

SEALED_KEYS = frozenset({"op", "signer", "nonce", "envelope"})
CLEAR_KEYS = frozenset({"op", "requester", "patient", "category", "nonce", "body"})


def sealed_aad(kind: str, operation: Operation, signer: bytes, nonce: bytes) -> bytes:
    """The associated data of a request's envelope: its clear fields."""
    from medbench.crypto.envelope import envelope_aad

    return envelope_aad(kind, operation.value, signer, nonce)


def build_request(
    operation: Operation,
    *,
    patient: bytes,
    category: str,
    timestamp_us: int,
    nonce: bytes,
    body: dict[str, Any],
    signers: Sequence[tuple[Ed25519PrivateKey, tuple[bytes, ...]]],
    access_public: bytes | None = None,
    randbytes: RandBytes | None = None,
    requester: bytes | None = None,
    principal_chain: tuple[bytes, ...] = (),
) -> AccessRequest:
    """Build and sign a request; the first signer is the requester, the rest countersign.

    With ``access_public`` (the consortium access key) the request is sealed (module
    docstring), its box drawn from ``randbytes``. ``requester`` names a principal other than
    the first signer — who is then her pseudonym, with its chain as the first signer's chain and
    ``principal_chain`` her own.
    """
    if not signers:
        raise RequestError("a request needs at least the requester's signature")
    keys = [k.public_key().public_bytes_raw() for k, _ in signers]
    who = keys[0] if requester is None else requester
    if access_public is None:
        if who != keys[0] or principal_chain:
            raise RequestError("only a sealed request may be signed under a pseudonym")
        unsigned = AccessRequest(operation, who, patient, category, timestamp_us, nonce, body)
    else:
        from medbench.crypto.envelope import seal_envelope

        kind = LEDGER_KIND[operation]
        fields = {
            "requester": who,
            "patient": patient,
            "category": category,
            "body": body,
            "signer_chain": list(signers[0][1]) if who != keys[0] else [],
            "principal_chain": list(principal_chain),
        }
        try:
            envelope = seal_envelope(
                access_public,
                fields,
                sealed_aad(kind, operation, keys[0], nonce),
                **({} if randbytes is None else {"randbytes": randbytes}),
            )
        except codec.EncodeError as exc:
            raise RequestError(f"content is not canonical: {exc}") from None
        unsigned = AccessRequest(
            operation, who, patient, category, timestamp_us, nonce, body,
            envelope=envelope, signer=keys[0], principal_chain=principal_chain,
        )  # fmt: skip
    rid = transaction_id(unsigned.kind, unsigned.content, timestamp_us, keys)
    sigs = tuple(
        Signature(pub, key.sign(rid), chain)
        for pub, (key, chain) in zip(keys, signers, strict=True)
    )
    return replace(unsigned, signatures=sigs)


def seal_draft(draft: RequestDraft, access_public: bytes, randbytes: RandBytes) -> RequestDraft:
    """The sealed form of a clear request draft signed by its own requester (e.g. the re-seal
    updates of :func:`medbench.pki.rekey.reseal_update_drafts`): same kind and time, content
    ``{op, signer, nonce, envelope}``. Raises :class:`RequestError` for a draft that is not a
    clear access request."""
    from medbench.crypto.envelope import seal_envelope

    c = draft.content
    if set(c) != CLEAR_KEYS:
        raise RequestError("only a clear access request draft can be sealed")
    try:
        operation = Operation(c["op"])
    except ValueError:
        raise RequestError(f"unknown operation {c['op']!r}") from None
    fields = {
        "requester": c["requester"],
        "patient": c["patient"],
        "category": c["category"],
        "body": c["body"],
        "signer_chain": [],
        "principal_chain": [],
    }
    aad = sealed_aad(draft.kind, operation, c["requester"], c["nonce"])
    envelope = seal_envelope(access_public, fields, aad, randbytes=randbytes)
    sealed = {"op": c["op"], "signer": c["requester"], "nonce": c["nonce"], "envelope": envelope}
    return RequestDraft(draft.kind, sealed, draft.timestamp_us)


def from_transaction_fields(
    kind: str | int,
    content: Any,
    timestamp_us: int,
    public_keys: Sequence[bytes],
    signatures: Sequence[bytes],
    cert_chains: Sequence[tuple[bytes, ...]],
    *,
    access_key: EncryptionKey | None = None,
) -> AccessRequest:
    """Map a ledger transaction's fields onto an :class:`AccessRequest` (the adapter point).

    ``kind`` is a kind name or the ledger's integer code (``medbench.ledger.Kind`` is an
    ``IntEnum``); ``content`` is the transaction's canonical bytes or the decoded dict. With
    ``tx`` a ``medbench.ledger.Transaction``::

        from_transaction_fields(tx.kind, tx.content, tx.timestamp_us, tx.public_keys,
                                tx.signatures, chains)   # .request_id == tx.id

    A sealed request is opened with ``access_key`` (the consortium access key every validator
    holds): the first signer's chain is the envelope's ``signer_chain`` when it names one (a
    pseudonym's), and the request's fields are the envelope's.

    Raises :class:`RequestError` if the transaction is not a well-formed access request, or if
    its kind does not match the operation its content names;
    :class:`~medbench.crypto.envelope.EnvelopeError` if its envelope does not open.
    """
    try:
        return _from_fields(
            kind, content, timestamp_us, public_keys, signatures, cert_chains, access_key
        )
    except RequestError:
        raise
    except (TypeError, ValueError, KeyError) as exc:  # shapes the explicit checks did not name
        raise RequestError(f"malformed transaction: {type(exc).__name__}: {exc}") from None


def _from_fields(
    kind: str | int,
    content: Any,
    timestamp_us: int,
    public_keys: Sequence[bytes],
    signatures: Sequence[bytes],
    cert_chains: Sequence[tuple[bytes, ...]],
    access_key: EncryptionKey | None,
) -> AccessRequest:
    if type(content) is bytes:  # the ledger carries content as canonical bytes
        try:
            content = codec.decode(content, codec.Limits(max_bytes=MAX_BODY_BYTES))
        except codec.DecodeError as exc:
            raise RequestError(f"content does not decode: {exc}") from None
    if not isinstance(kind, str):
        names = {v: k for k, v in LEDGER_KIND_CODES.items()}
        if type(kind) is bool or not isinstance(kind, int) or int(kind) not in names:
            raise RequestError(f"unknown transaction kind {kind!r}")
        kind = names[int(kind)]
    if type(content) is not dict or set(content) not in (CLEAR_KEYS, SEALED_KEYS):
        raise RequestError("transaction content is not an access request")
    try:
        operation = Operation(content["op"])
    except (ValueError, TypeError):
        raise RequestError(f"unknown operation {content['op']!r}") from None
    if LEDGER_KIND[operation] != kind:
        raise RequestError(f"operation {operation.value} cannot travel as kind {kind!r}")
    if not (len(public_keys) == len(signatures) == len(cert_chains)) or not public_keys:
        raise RequestError("one signature and one chain per public key")
    chains = [tuple(c) for c in cert_chains]
    if set(content) == SEALED_KEYS:
        return _open_sealed(operation, content, timestamp_us, public_keys, signatures, chains,
                            access_key)  # fmt: skip
    if content["requester"] != public_keys[0]:
        raise RequestError("the first creator must be the requester")
    return AccessRequest(
        operation,
        content["requester"],
        content["patient"],
        content["category"],
        timestamp_us,
        content["nonce"],
        content["body"],
        signatures=_signatures(public_keys, signatures, chains),
    )


def _signatures(
    public_keys: Sequence[bytes], signatures: Sequence[bytes], chains: list[tuple[bytes, ...]]
) -> tuple[Signature, ...]:
    """One :class:`Signature` per creator key, with its certificate chain."""
    return tuple(
        Signature(k, s, c) for k, s, c in zip(public_keys, signatures, chains, strict=True)
    )


def _open_sealed(
    operation: Operation,
    content: dict[str, Any],
    timestamp_us: int,
    public_keys: Sequence[bytes],
    signatures: Sequence[bytes],
    chains: list[tuple[bytes, ...]],
    access_key: EncryptionKey | None,
) -> AccessRequest:
    signer, nonce = content["signer"], content["nonce"]
    if signer != public_keys[0]:
        raise RequestError("the first creator must be the sealed request's signer")
    if type(nonce) is not bytes:
        raise RequestError(f"nonce is {NONCE_LEN} bytes")
    aad = sealed_aad(LEDGER_KIND[operation], operation, signer, nonce)
    try:
        fields = open_envelope(access_key, content["envelope"], aad)
    except EnvelopeError as exc:
        raise SealedRequestError(str(exc)) from exc
    if set(fields) != ENVELOPE_FIELDS:
        raise SealedRequestError(f"an envelope holds {sorted(ENVELOPE_FIELDS)}")
    signer_chain, principal_chain = fields["signer_chain"], fields["principal_chain"]
    if not (
        isinstance(signer_chain, list)
        and isinstance(principal_chain, list)
        and all(type(c) is bytes for c in [*signer_chain, *principal_chain])
    ):
        raise SealedRequestError("envelope chains are lists of DER certificates")
    if signer_chain:  # a pseudonym's chain travels sealed; nobody else has it
        chains[0] = tuple(signer_chain)
    elif fields["requester"] != signer:
        raise SealedRequestError("a requester other than the signer needs the signer's chain")
    return AccessRequest(
        operation,
        fields["requester"],
        fields["patient"],
        fields["category"],
        timestamp_us,
        nonce,
        fields["body"],
        signatures=_signatures(public_keys, signatures, chains),
        envelope=content["envelope"],
        signer=signer,
        principal_chain=tuple(principal_chain),
    )
