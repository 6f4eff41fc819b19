"""Add, update, delete and query without rewriting history; legacy import.

Theory of operation
-------------------
docs/medical-chain.md §1.3 item 4. The chain is append-only, so every change is a new transaction:

* **add** — an ``add`` transaction whose content is the record (e.g. a
  :class:`~medbench.records.visit.VisitRecord`);
* **update** — two transactions: the new version (an ``add``) and an ``update`` *link*
  ``{old, new, time_us, reason}``; the old version stays on chain, superseded;
* **delete** — a *tombstone*: a ``delete`` transaction whose content is exactly the 32-byte ID of
  the deleted version; queries leave it out, the patient's history still shows it;
* **query** — a ``query`` transaction whose content is the :class:`QueryCondition`, so that every
  read leaves an audit trail; validators check permissions (access layer) before answering.

Records are written by a :class:`~medbench.records.writer.Writer` (staff + institution, or a
signer alone). **Legacy import** (§1.3): an institution turns its existing records into ``add``
transactions that keep their *original* timestamps and are signed by the institution alone.

How these resolve into a current view is :mod:`medbench.records.index`. Parsing link, tombstone
and query content from the chain raises only :class:`RecordDecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medbench import codec
from medbench.crypto.keys import SigningKey
from medbench.ledger.transaction import ID_SIZE, MAX_TIMESTAMP_US, Kind, Transaction
from medbench.records.errors import RecordDecodeError, RecordUsageError
from medbench.records.writer import Writer

MAX_REASON = 1000
MAX_QUERY_IDS = 1024


def _is_id(value: Any) -> bool:
    return type(value) is bytes and len(value) == ID_SIZE


def _is_time(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_TIMESTAMP_US


@dataclass(frozen=True, slots=True)
class UpdateLink:
    """The content of an ``update`` transaction: ``old`` is superseded by ``new``."""

    old: bytes
    new: bytes
    time_us: int
    reason: str

    def __post_init__(self) -> None:
        problem = _link_problem(self.old, self.new, self.time_us, self.reason)
        if problem is not None:
            raise RecordUsageError(f"invalid update link: {problem}")

    def encode(self) -> bytes:
        """The canonical content bytes."""
        return codec.encode(
            {"old": self.old, "new": self.new, "time_us": self.time_us, "reason": self.reason}
        )

    @classmethod
    def decode(cls, content: bytes) -> UpdateLink:
        """Parse content from the chain; raises only :class:`RecordDecodeError`."""
        try:
            f = codec.decode(content)
        except codec.DecodeError as exc:
            raise RecordDecodeError(f"malformed update link: {exc}") from None
        if not isinstance(f, dict) or set(f) != {"old", "new", "time_us", "reason"}:
            raise RecordDecodeError("an update link is old, new, time_us, reason")
        problem = _link_problem(f["old"], f["new"], f["time_us"], f["reason"])
        if problem is not None:
            raise RecordDecodeError(f"malformed update link: {problem}")
        return cls(f["old"], f["new"], f["time_us"], f["reason"])


def _link_problem(old: Any, new: Any, time_us: Any, reason: Any) -> str | None:
    if not (_is_id(old) and _is_id(new)):
        return "old and new are 32-byte transaction IDs"
    if old == new:
        return "a version cannot supersede itself"
    if not _is_time(time_us):
        return "time_us must be a non-negative 63-bit int"
    if type(reason) is not str or len(reason) > MAX_REASON:
        return f"reason must be a str of at most {MAX_REASON} characters"
    return None


def add(content: bytes, timestamp_us: int, writer: Writer) -> Transaction:
    """An ``add`` transaction holding ``content``."""
    return writer.sign(Kind.ADD, content, timestamp_us)


def update(
    old_id: bytes, new_content: bytes, timestamp_us: int, writer: Writer, reason: str
) -> tuple[Transaction, Transaction]:
    """The new version (``add``) and the ``update`` link from ``old_id`` to it, in chain order."""
    new = add(new_content, timestamp_us, writer)
    link = UpdateLink(old_id, new.id, timestamp_us, reason)
    return new, writer.sign(Kind.UPDATE, link.encode(), timestamp_us)


def delete(record_id: bytes, timestamp_us: int, writer: Writer) -> Transaction:
    """A tombstone: a ``delete`` transaction whose content is the deleted version's ID."""
    if not _is_id(record_id):
        raise RecordUsageError("a record ID is 32 bytes")
    return writer.sign(Kind.DELETE, record_id, timestamp_us)


def tombstone_target(tx: Transaction) -> bytes:
    """The ID a ``delete`` transaction names; raises :class:`RecordDecodeError` otherwise."""
    if tx.kind is not Kind.DELETE or not _is_id(tx.content):
        raise RecordDecodeError("a tombstone's content is exactly one 32-byte ID")
    return tx.content


def legacy_import(institution: SigningKey, content: bytes, original_us: int) -> Transaction:
    """An ``add`` of a pre-existing record, keeping its original time, signed by the institution
    alone (docs/medical-chain.md §1.3, legacy import)."""
    return add(content, original_us, Writer(institution))


@dataclass(frozen=True, slots=True)
class QueryCondition:
    """What a ``query`` transaction asks for (kept on chain as the audit trail).

    ``owner`` names whose records are asked for (checked against grants by the access layer);
    ``record_ids`` names versions directly. A condition may not name both: that would publish the
    very link a sealed association hides. ``[from_us, until_us)`` bounds version timestamps;
    ``include_history`` asks for superseded and deleted versions too (the patient's client).
    """

    owner: bytes | None = None
    record_ids: tuple[bytes, ...] = ()
    from_us: int = 0
    until_us: int = MAX_TIMESTAMP_US
    include_history: bool = False

    def __post_init__(self) -> None:
        problem = _query_problem(
            self.owner, self.record_ids, self.from_us, self.until_us, self.include_history
        )
        if problem is not None:
            raise RecordUsageError(f"invalid query condition: {problem}")

    def matches_time(self, timestamp_us: int) -> bool:
        """Whether a version stamped ``timestamp_us`` is inside the window."""
        return self.from_us <= timestamp_us < self.until_us

    def encode(self) -> bytes:
        """The canonical content bytes."""
        return codec.encode(
            {
                "owner": self.owner,
                "record_ids": list(self.record_ids),
                "from_us": self.from_us,
                "until_us": self.until_us,
                "include_history": self.include_history,
            }
        )

    @classmethod
    def decode(cls, content: bytes) -> QueryCondition:
        """Parse content from the chain; raises only :class:`RecordDecodeError`."""
        try:
            f = codec.decode(content)
        except codec.DecodeError as exc:
            raise RecordDecodeError(f"malformed query: {exc}") from None
        keys = {"owner", "record_ids", "from_us", "until_us", "include_history"}
        if not isinstance(f, dict) or set(f) != keys:
            raise RecordDecodeError(f"a query condition is {sorted(keys)}")
        ids = f["record_ids"]
        if not isinstance(ids, list):
            raise RecordDecodeError("record_ids must be an array")
        problem = _query_problem(
            f["owner"], tuple(ids), f["from_us"], f["until_us"], f["include_history"]
        )
        if problem is not None:
            raise RecordDecodeError(f"malformed query: {problem}")
        return cls(f["owner"], tuple(ids), f["from_us"], f["until_us"], f["include_history"])


def _query_problem(
    owner: Any, ids: tuple[Any, ...], from_us: Any, until_us: Any, history: Any
) -> str | None:
    if owner is not None and (type(owner) is not bytes or not 0 < len(owner) <= 1024):
        return "owner must be a raw public key or None"
    if len(ids) > MAX_QUERY_IDS or not all(_is_id(i) for i in ids):
        return f"record_ids must be at most {MAX_QUERY_IDS} 32-byte IDs"
    if owner is not None and ids:
        return "naming both an owner and record IDs would publish their link"
    if not (_is_time(from_us) and _is_time(until_us) and from_us <= until_us):
        return "the window needs 0 <= from_us <= until_us"
    if type(history) is not bool:
        return "include_history must be a bool"
    return None


def query(condition: QueryCondition, timestamp_us: int, querier: SigningKey) -> Transaction:
    """A ``query`` transaction carrying ``condition``, signed by the querier alone."""
    return Transaction.create(Kind.QUERY, condition.encode(), timestamp_us, [querier])
