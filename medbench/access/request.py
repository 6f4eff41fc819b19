"""The request the validator judges: :class:`AccessRequest`, and its mapping from a transaction.

Theory of operation
-------------------
A Medical Chain client turns every action into a signed transaction (PAPER.md §1.2, §1.5): the
transaction ID is SHA-256 over the canonical ``(kind, content, timestamp, public keys)`` and every
creator signs that ID. A medical-record transaction carries two keys and two signatures, the
worker's and the institution's. :class:`AccessRequest` is exactly that shape seen from the access
layer:

* ``operation`` (an :class:`Operation`) maps onto one ledger kind (:data:`LEDGER_KIND`);
* ``content`` = ``{"op", "requester", "patient", "category", "nonce", "body"}`` — everything the
  rules need, in one canonical dict;
* ``timestamp_us`` is the request's *consensus* time, the only clock the rules ever read;
* ``signatures``: one :class:`Signature` per creator, each with the signer's raw Ed25519 key, its
  signature over the request ID and its certificate chain (leaf first). The first signer is the
  requester; a second one is the institution's countersignature.

:func:`transaction_id` restates the ledger's ID rule. When ``medbench.ledger`` lands, the adapter
:func:`from_transaction_fields` is where a ledger transaction is mapped onto a request (its fields
are plain values on purpose, so no import of the ledger is needed here), and ``transaction_id``
becomes a call into the ledger.

Everything arriving from outside goes through :meth:`AccessRequest.__post_init__` and raises only
:class:`RequestError` on malformed input.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medbench import codec
from medbench.hashing import sha256

MAX_BODY_BYTES = 1 << 20
NONCE_LEN = 16
ALL = "*"
"""The category meaning "all records"."""


class RequestError(ValueError):
    """A request (or the transaction mapped onto it) is malformed."""


class Operation(enum.Enum):
    """What a request asks to do (PAPER.md §1.3 CRUD, §1.5 clients, §1.6 permissions)."""

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
    """The ledger's transaction ID (PAPER.md §1.2).

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
        try:
            encoded = codec.encode(self.content)
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
    def content(self) -> dict[str, Any]:
        """The transaction content: every field the rules read, in one canonical dict."""
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
            f"cat={self.category} t={self.timestamp_us})"
        )


def build_request(
    operation: Operation,
    *,
    patient: bytes,
    category: str,
    timestamp_us: int,
    nonce: bytes,
    body: dict[str, Any],
    signers: Sequence[tuple[Ed25519PrivateKey, tuple[bytes, ...]]],
) -> AccessRequest:
    """Build and sign a request; the first signer is the requester, the rest countersign."""
    if not signers:
        raise RequestError("a request needs at least the requester's signature")
    keys = [k.public_key().public_bytes_raw() for k, _ in signers]
    unsigned = AccessRequest(operation, keys[0], patient, category, timestamp_us, nonce, body)
    rid = transaction_id(unsigned.kind, unsigned.content, timestamp_us, keys)
    sigs = tuple(
        Signature(pub, key.sign(rid), chain)
        for pub, (key, chain) in zip(keys, signers, strict=True)
    )
    return AccessRequest(
        operation, keys[0], patient, category, timestamp_us, nonce, body, signatures=sigs
    )


def from_transaction_fields(
    kind: str | int,
    content: Any,
    timestamp_us: int,
    public_keys: Sequence[bytes],
    signatures: Sequence[bytes],
    cert_chains: Sequence[tuple[bytes, ...]],
) -> AccessRequest:
    """Map a ledger transaction's fields onto an :class:`AccessRequest` (the adapter point).

    ``kind`` is a kind name or the ledger's integer code (``medbench.ledger.Kind`` is an
    ``IntEnum``); ``content`` is the transaction's canonical bytes or the decoded dict. With
    ``tx`` a ``medbench.ledger.Transaction``::

        from_transaction_fields(tx.kind, tx.content, tx.timestamp_us, tx.public_keys,
                                tx.signatures, chains)   # .request_id == tx.id

    Raises :class:`RequestError` if the transaction is not a well-formed access request, or if
    its kind does not match the operation its content names.
    """
    try:
        return _from_fields(kind, content, timestamp_us, public_keys, signatures, cert_chains)
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
    if type(content) is not dict or set(content) != {
        "op",
        "requester",
        "patient",
        "category",
        "nonce",
        "body",
    }:
        raise RequestError("transaction content is not an access request")
    try:
        operation = Operation(content["op"])
    except ValueError:
        raise RequestError(f"unknown operation {content['op']!r}") from None
    if LEDGER_KIND[operation] != kind:
        raise RequestError(f"operation {operation.value} cannot travel as kind {kind!r}")
    if not (len(public_keys) == len(signatures) == len(cert_chains)) or not public_keys:
        raise RequestError("one signature and one chain per public key")
    if content["requester"] != public_keys[0]:
        raise RequestError("the first creator must be the requester")
    sigs = tuple(
        Signature(k, s, tuple(c))
        for k, s, c in zip(public_keys, signatures, cert_chains, strict=True)
    )
    return AccessRequest(
        operation,
        content["requester"],
        content["patient"],
        content["category"],
        timestamp_us,
        content["nonce"],
        content["body"],
        signatures=sigs,
    )
