"""Medical Chain transactions: kinds, IDs, multi-signatures, signer rules, wire form.

Theory of operation
-------------------
docs/medical-chain.md §1.2: a transaction is (type, content, timestamp, public key(s) of the
creator(s)); its ID is SHA-256 over those four fields, and each creator signs the ID. Here:

* ``kind`` is a :class:`Kind` (add, delete, update, query, grant, revoke, associate, register —
  the paper's "permission" type is split into grant and revoke, "association-save" is associate,
  and register carries entity information, §1.3 item 1);
* ``content`` is opaque bytes (the records layer encodes its own structure with
  :mod:`medbench.codec`);
* ``timestamp_us`` is integer microseconds (legacy imports keep their original time, §1.3);
* ``public_keys`` are raw public keys, author first;
* ``ID = SHA-256(codec.encode([kind, content, timestamp_us, [keys...]]))`` — the fixed-order array
  makes the bytes a function of the fields alone;
* ``signatures[i]`` is ``public_keys[i]``'s signature over the 32-byte ID, or ``b""`` while that
  signer has not signed yet (a doctor signs first, the institution countersigns:
  :meth:`Transaction.with_signature`).

Who must sign (§1.2): a medical-record transaction by staff of an institution carries the staff
member's key *and* the institution's key, each with a signature; an independent licensed worker
signs alone. :class:`SignerPolicy` holds that rule (the staff → institution affiliation comes from
the PKI/register transactions) and reports a missing countersignature as a typed problem.

Verification never raises on a bad transaction: :func:`verify_transaction` returns a
:class:`Verification` listing each :class:`SignatureProblem` (which key, which
:class:`Problem`: missing, wrong length, invalid, unknown scheme, required signer missing);
:meth:`Verification.raise_for_problems` turns it into a :class:`SignatureError` where an exception
is wanted. :meth:`Transaction.from_wire` reads hostile bytes within fixed bounds and raises only
:class:`LedgerDecodeError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from medbench import codec
from medbench.crypto.keys import (
    MAX_PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    Scheme,
    SigningKey,
    is_known_scheme,
    verify,
)
from medbench.hashing import sha256
from medbench.ledger.errors import (
    LedgerDecodeError,
    Problem,
    SignatureProblem,
    Verification,
)

MAX_CONTENT_BYTES = 1 << 20
"""Largest transaction content (1 MiB): images and video stay off chain, only hashes go in."""
MAX_SIGNERS = 4
"""Most public keys one transaction may list (record transactions need two)."""
MAX_SIGNATURE_BYTES = 512
MAX_TIMESTAMP_US = (1 << 63) - 1
ID_SIZE = 32

_WIRE_LIMITS = codec.Limits(
    max_bytes=MAX_CONTENT_BYTES
    + 2 * MAX_SIGNERS * (MAX_PUBLIC_KEY_SIZE + MAX_SIGNATURE_BYTES)
    + 64,
    max_depth=2,
    max_container_len=max(5, MAX_SIGNERS),
)


class Kind(IntEnum):
    """Transaction type (docs/medical-chain.md §1.2, §1.3 item 4)."""

    ADD = 1
    DELETE = 2
    UPDATE = 3
    QUERY = 4
    GRANT = 5
    REVOKE = 6
    ASSOCIATE = 7
    REGISTER = 8


RECORD_KINDS: frozenset[Kind] = frozenset({Kind.ADD, Kind.DELETE, Kind.UPDATE, Kind.ASSOCIATE})
"""Kinds that write medical records: staff of an institution need the institution's countersign."""


def transaction_id(
    kind: Kind | int, content: bytes, timestamp_us: int, public_keys: Sequence[bytes]
) -> bytes:
    """SHA-256 over the canonical encoding of ``[kind, content, timestamp_us, [keys...]]``."""
    digest: bytes = sha256(codec.encode([int(kind), content, timestamp_us, list(public_keys)]))
    return digest


def _check_fields(
    kind: Any, content: Any, timestamp_us: Any, public_keys: Any, signatures: Any
) -> str | None:
    """Why these fields do not make a transaction, or ``None`` if they do."""
    if type(kind) is not Kind:
        return "kind is not a Kind"
    if type(content) is not bytes or len(content) > MAX_CONTENT_BYTES:
        return f"content must be bytes of at most {MAX_CONTENT_BYTES}"
    if type(timestamp_us) is not int or not 0 <= timestamp_us <= MAX_TIMESTAMP_US:
        return "timestamp_us must be a non-negative 63-bit int"
    if type(public_keys) is not tuple or not 1 <= len(public_keys) <= MAX_SIGNERS:
        return f"public_keys must be a tuple of 1..{MAX_SIGNERS} keys"
    if any(type(k) is not bytes or not 0 < len(k) <= MAX_PUBLIC_KEY_SIZE for k in public_keys):
        return "each public key must be 1..1024 bytes"
    if len(set(public_keys)) != len(public_keys):
        return "a public key is listed twice"
    if type(signatures) is not tuple or len(signatures) != len(public_keys):
        return "signatures must be a tuple with one entry per public key"
    if any(type(s) is not bytes or len(s) > MAX_SIGNATURE_BYTES for s in signatures):
        return f"each signature must be bytes of at most {MAX_SIGNATURE_BYTES}"
    return None


@dataclass(frozen=True, slots=True)
class Transaction:
    """One signed transaction; :attr:`id` is computed on construction.

    ``signatures`` defaults to one empty slot per key (unsigned). Construction validates every
    field and raises ``ValueError`` on misuse.
    """

    kind: Kind
    content: bytes
    timestamp_us: int
    public_keys: tuple[bytes, ...]
    signatures: tuple[bytes, ...] = ()
    id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.signatures == () and type(self.public_keys) is tuple:
            object.__setattr__(self, "signatures", (b"",) * len(self.public_keys))
        problem = _check_fields(
            self.kind, self.content, self.timestamp_us, self.public_keys, self.signatures
        )
        if problem is not None:
            raise ValueError(f"invalid transaction: {problem}")
        object.__setattr__(
            self,
            "id",
            transaction_id(self.kind, self.content, self.timestamp_us, self.public_keys),
        )

    @classmethod
    def create(
        cls, kind: Kind, content: bytes, timestamp_us: int, signers: Sequence[SigningKey]
    ) -> Transaction:
        """A transaction listing the signers' keys (author first), signed by every one of them."""
        keys = tuple(s.public for s in signers)
        unsigned = cls(kind, content, timestamp_us, keys)
        return unsigned.with_signatures(signers)

    def with_signature(self, signer: SigningKey) -> Transaction:
        """A copy with ``signer``'s signature over the ID in its slot (it must be listed)."""
        try:
            i = self.public_keys.index(signer.public)
        except ValueError:
            raise ValueError("signer's key is not listed in the transaction") from None
        sigs = list(self.signatures)
        sigs[i] = signer.sign(self.id)
        return Transaction(
            self.kind, self.content, self.timestamp_us, self.public_keys, tuple(sigs)
        )

    def with_signatures(self, signers: Iterable[SigningKey]) -> Transaction:
        """A copy signed by each of ``signers`` (each must be listed)."""
        by_key = {s.public: s for s in signers}
        missing = set(by_key) - set(self.public_keys)
        if missing:
            raise ValueError("a signer's key is not listed in the transaction")
        sigs = tuple(
            by_key[k].sign(self.id) if k in by_key else s
            for k, s in zip(self.public_keys, self.signatures, strict=True)
        )
        return Transaction(self.kind, self.content, self.timestamp_us, self.public_keys, sigs)

    @property
    def author(self) -> bytes:
        """The first listed key: the person or institution who wrote the transaction."""
        return self.public_keys[0]

    def to_fields(self) -> list[Any]:
        """``[kind, content, timestamp_us, [keys], [signatures]]`` for embedding in messages."""
        return [
            int(self.kind),
            self.content,
            self.timestamp_us,
            list(self.public_keys),
            list(self.signatures),
        ]

    def to_wire(self) -> bytes:
        """The canonical wire bytes (what a node stores and sends)."""
        return codec.encode(self.to_fields())

    @classmethod
    def from_fields(cls, fields: Any) -> Transaction:
        """Parse :meth:`to_fields` output from an untrusted source; raises only
        :class:`LedgerDecodeError`."""
        if type(fields) is not list or len(fields) != 5:
            raise LedgerDecodeError("a transaction is a 5-field array")
        kind, content, ts, keys, sigs = fields
        if type(kind) is not int or kind not in Kind._value2member_map_:
            raise LedgerDecodeError(f"unknown transaction kind {kind!r}")
        if type(keys) is not list or type(sigs) is not list:
            raise LedgerDecodeError("keys and signatures must be arrays")
        k, pk, sg = Kind(kind), tuple(keys), tuple(sigs)
        problem = _check_fields(k, content, ts, pk, sg)
        if problem is not None:
            raise LedgerDecodeError(f"malformed transaction: {problem}")
        return cls(k, content, ts, pk, sg)

    @classmethod
    def from_wire(cls, data: bytes) -> Transaction:
        """Decode hostile bytes; raises only :class:`LedgerDecodeError`."""
        try:
            fields = codec.decode(data, _WIRE_LIMITS)
        except codec.DecodeError as exc:
            raise LedgerDecodeError(f"malformed transaction: {exc}") from None
        return cls.from_fields(fields)

    def __repr__(self) -> str:
        signed = sum(1 for s in self.signatures if s)
        return (
            f"Transaction({self.kind.name.lower()}, id={self.id[:4].hex()}, "
            f"t={self.timestamp_us}, {len(self.content)} B, "
            f"{signed}/{len(self.public_keys)} signed)"
        )


# ---------------------------------------------------------------------------------------------
# Verification


def record_signers(author: bytes, institution: bytes | None) -> tuple[bytes, ...]:
    """The keys a record by ``author`` must list: author and institution, or author alone for an
    independent licensed worker (``institution`` is ``None``)."""
    return (author,) if institution is None or institution == author else (author, institution)


@dataclass(frozen=True, slots=True)
class SignerPolicy:
    """Which signers a transaction needs (docs/medical-chain.md §1.2).

    ``affiliation`` maps a staff member's key to their institution's key; authors not in it are
    independent (patients, licensed workers, institutions themselves) and sign alone. Only
    :data:`RECORD_KINDS` need the institution's countersignature.
    """

    affiliation: Mapping[bytes, bytes] = field(default_factory=dict)

    def required(self, tx: Transaction) -> tuple[bytes, ...]:
        """The keys that must be listed and must have signed ``tx``."""
        if tx.kind in RECORD_KINDS:
            return record_signers(tx.author, self.affiliation.get(tx.author))
        return (tx.author,)

    def check(self, tx: Transaction) -> tuple[SignatureProblem, ...]:
        """A :attr:`Problem.SIGNER_NOT_LISTED` problem for each required key ``tx`` lacks."""
        listed = set(tx.public_keys)
        return tuple(
            SignatureProblem(-1, k, Problem.SIGNER_NOT_LISTED)
            for k in self.required(tx)
            if k not in listed
        )


def verify_transaction(
    tx: Transaction, scheme: str | Scheme = Scheme.ED25519, policy: SignerPolicy | None = None
) -> Verification:
    """Check every listed signature over ``tx.id`` (and the signer rule when ``policy`` is given).

    Never raises for a bad transaction: the answer lists what failed and why.
    """
    problems: list[SignatureProblem] = []
    if not is_known_scheme(scheme):
        problems = [
            SignatureProblem(i, k, Problem.UNKNOWN_SCHEME) for i, k in enumerate(tx.public_keys)
        ]
        return Verification(tx.id, tuple(problems))
    s = Scheme(scheme)
    size = SIGNATURE_SIZE[s]
    for i, (key, sig) in enumerate(zip(tx.public_keys, tx.signatures, strict=True)):
        if not sig:
            problems.append(SignatureProblem(i, key, Problem.MISSING))
        elif len(sig) != size:
            problems.append(SignatureProblem(i, key, Problem.WRONG_LENGTH))
        elif not verify(s, key, tx.id, sig):
            problems.append(SignatureProblem(i, key, Problem.INVALID))
    if policy is not None:
        problems.extend(policy.check(tx))
    return Verification(tx.id, tuple(problems))
