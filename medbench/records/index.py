"""Resolving the current view of records from the chain: a pure function of transaction order.

Theory of operation
-------------------
docs/medical-chain.md §1.3 item 4 never rewrites history, so "the record" is a *lineage* of
versions: its first ``add`` (the lineage ID) and each later version joined to it by an ``update``
link. The
:class:`RecordIndex` folds transactions, in chain order, into lineages:

* ``add`` — a new lineage of one version (the new version of an update starts this way and is
  joined when its link arrives);
* ``update {old, new}`` — valid when ``old`` is the current head of a live lineage and ``new`` is
  a fresh one-version lineage (not deleted, not already joined); ``new`` becomes the head and
  ``old`` is *superseded*;
* ``delete id`` — valid when ``id`` is the current head of a live lineage; the lineage is
  *deleted* and leaves the current view.

Validators check who may change a record before a transaction reaches the chain (access layer);
an index that reads a chain it does not trust can also apply a rule of its own, ``may_change(tx,
target)`` — :func:`same_writers` (the change shares a signer with the record's first version) is
the ready-made one — and rejects the rest as :attr:`Reason.UNAUTHORIZED`.

Anything else — a duplicate ID, a link to an unknown, stale or deleted version, a second
tombstone, malformed content — is a :class:`Rejection` with a :class:`Reason`, recorded in
:attr:`RecordIndex.rejections`, never an exception: the index reads the chain as it is, and bad
transactions from a Byzantine writer do not stop it. Other kinds (register, associate, query,
grant, revoke) do not change records and are ignored. Order is chain order, never timestamps —
legacy imports carry old timestamps on purpose.

:meth:`RecordIndex.current` is the current view, :meth:`RecordIndex.history` the full lineage
(superseded and deleted versions included, for the patient's client), and
:meth:`RecordIndex.answer` answers a :class:`~medbench.records.crud.QueryCondition`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from medbench.ledger.transaction import Kind, Transaction
from medbench.records.crud import QueryCondition, UpdateLink, tombstone_target
from medbench.records.errors import RecordDecodeError


class Status(StrEnum):
    """Where a version stands in its lineage."""

    CURRENT = "current"
    SUPERSEDED = "superseded"
    DELETED = "deleted"


class Reason(StrEnum):
    """Why a transaction did not change the records."""

    DUPLICATE = "duplicate"
    MALFORMED = "malformed"
    UNKNOWN_TARGET = "unknown-target"
    NOT_CURRENT = "not-current"
    DELETED_TARGET = "deleted-target"
    NEW_NOT_FRESH = "new-not-fresh"
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A transaction the index did not apply, and why."""

    tx_id: bytes
    kind: Kind
    reason: Reason
    detail: str = ""

    def __repr__(self) -> str:
        return f"Rejection({self.kind.name.lower()} {self.tx_id[:4].hex()}: {self.reason})"


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a record as the index sees it now."""

    tx: Transaction
    lineage: bytes
    number: int
    status: Status
    superseded_by: bytes | None = None
    update: UpdateLink | None = None
    tombstone: bytes | None = None

    @property
    def id(self) -> bytes:
        """The version's transaction ID."""
        return self.tx.id

    def __repr__(self) -> str:
        return (
            f"Version({self.id[:4].hex()} of {self.lineage[:4].hex()}, #{self.number}, "
            f"{self.status}, t={self.tx.timestamp_us})"
        )


ChangeRule = Callable[[Transaction, Transaction], bool]
"""``may_change(change, first_version)``: may ``change`` (update link or tombstone) alter the record
whose first version is ``first_version``?"""


def same_writers(change: Transaction, first_version: Transaction) -> bool:
    """The change is signed by a key that also signed the record's first version (its author or
    institution)."""
    return not set(change.public_keys).isdisjoint(first_version.public_keys)


@dataclass(slots=True)
class _Lineage:
    versions: list[Transaction]
    links: list[UpdateLink | None]
    tombstone: bytes | None = None


class RecordIndex:
    """Lineages of record versions, built by folding transactions in chain order."""

    __slots__ = ("_lineage_of", "_lineages", "_may_change", "_seen", "rejections")

    def __init__(self, may_change: ChangeRule | None = None) -> None:
        """An empty index; ``may_change`` is an optional rule on who may update or delete."""
        self._may_change = may_change
        self._lineages: dict[bytes, _Lineage] = {}  # insertion order = chain order of roots
        self._lineage_of: dict[bytes, bytes] = {}
        self._seen: set[bytes] = set()
        self.rejections: list[Rejection] = []

    @classmethod
    def from_transactions(
        cls, transactions: Iterable[Transaction], may_change: ChangeRule | None = None
    ) -> RecordIndex:
        """The index of ``transactions`` in the given (chain) order."""
        index = cls(may_change)
        for tx in transactions:
            index.apply(tx)
        return index

    def apply(self, tx: Transaction) -> Rejection | None:
        """Apply one transaction; return the rejection if it did not apply."""
        if tx.kind not in (Kind.ADD, Kind.UPDATE, Kind.DELETE):
            return None
        if tx.id in self._seen:
            return self._reject(tx, Reason.DUPLICATE)
        self._seen.add(tx.id)
        if tx.kind is Kind.ADD:
            self._lineages[tx.id] = _Lineage([tx], [None])
            self._lineage_of[tx.id] = tx.id
            return None
        if tx.kind is Kind.UPDATE:
            return self._apply_update(tx)
        return self._apply_delete(tx)

    def _reject(self, tx: Transaction, reason: Reason, detail: str = "") -> Rejection:
        rejection = Rejection(tx.id, tx.kind, reason, detail)
        self.rejections.append(rejection)
        return rejection

    def _live_head(self, tx: Transaction, target: bytes) -> tuple[bytes, Rejection | None]:
        root = self._lineage_of.get(target)
        if root is None:
            return b"", self._reject(tx, Reason.UNKNOWN_TARGET, target[:4].hex())
        lineage = self._lineages[root]
        if lineage.tombstone is not None:
            return root, self._reject(tx, Reason.DELETED_TARGET, target[:4].hex())
        if lineage.versions[-1].id != target:
            return root, self._reject(tx, Reason.NOT_CURRENT, target[:4].hex())
        if self._may_change is not None and not self._may_change(tx, lineage.versions[0]):
            return root, self._reject(tx, Reason.UNAUTHORIZED, target[:4].hex())
        return root, None

    def _apply_update(self, tx: Transaction) -> Rejection | None:
        try:
            link = UpdateLink.decode(tx.content)
        except RecordDecodeError as exc:
            return self._reject(tx, Reason.MALFORMED, str(exc))
        root, rejection = self._live_head(tx, link.old)
        if rejection is not None:
            return rejection
        fresh = self._lineages.get(link.new)
        if fresh is None:
            if link.new in self._lineage_of:
                return self._reject(tx, Reason.NEW_NOT_FRESH, "already a version of a record")
            return self._reject(tx, Reason.UNKNOWN_TARGET, link.new[:4].hex())
        if len(fresh.versions) != 1 or fresh.tombstone is not None:
            return self._reject(tx, Reason.NEW_NOT_FRESH, "new version has its own history")
        del self._lineages[link.new]
        lineage = self._lineages[root]
        lineage.versions.append(fresh.versions[0])
        lineage.links.append(link)
        self._lineage_of[link.new] = root
        return None

    def _apply_delete(self, tx: Transaction) -> Rejection | None:
        try:
            target = tombstone_target(tx)
        except RecordDecodeError as exc:
            return self._reject(tx, Reason.MALFORMED, str(exc))
        root, rejection = self._live_head(tx, target)
        if rejection is not None:
            return rejection
        self._lineages[root].tombstone = tx.id
        return None

    # -- reading -------------------------------------------------------------------------------

    def _versions(self, root: bytes) -> list[Version]:
        lineage = self._lineages[root]
        last = len(lineage.versions) - 1
        out = []
        for i, (tx, link) in enumerate(zip(lineage.versions, lineage.links, strict=True)):
            if i < last:
                status, nxt, tomb = Status.SUPERSEDED, lineage.versions[i + 1].id, None
            elif lineage.tombstone is not None:
                status, nxt, tomb = Status.DELETED, None, lineage.tombstone
            else:
                status, nxt, tomb = Status.CURRENT, None, None
            out.append(Version(tx, root, i, status, nxt, link, tomb))
        return out

    def lineage_of(self, version_id: bytes) -> bytes | None:
        """The lineage ID (first version) that ``version_id`` belongs to, if known."""
        return self._lineage_of.get(version_id)

    def version(self, version_id: bytes) -> Version | None:
        """One version with its current status, or ``None`` if unknown."""
        root = self._lineage_of.get(version_id)
        if root is None:
            return None
        return next(v for v in self._versions(root) if v.id == version_id)

    def head(self, version_id: bytes) -> Version | None:
        """The current version of the record ``version_id`` belongs to; ``None`` if the record
        is unknown or deleted."""
        root = self._lineage_of.get(version_id)
        if root is None or self._lineages[root].tombstone is not None:
            return None
        return self._versions(root)[-1]

    def history(self, version_id: bytes) -> list[Version]:
        """Every version of the record ``version_id`` belongs to, oldest first (deleted and
        superseded included); empty if unknown."""
        root = self._lineage_of.get(version_id)
        return [] if root is None else self._versions(root)

    def current(self) -> list[Version]:
        """The current view: the head of every live record, in chain order of first versions."""
        return [
            self._versions(root)[-1]
            for root, lineage in self._lineages.items()
            if lineage.tombstone is None
        ]

    def lineages(self) -> list[bytes]:
        """Every lineage ID (live or deleted), in chain order."""
        return list(self._lineages)

    def answer(self, condition: QueryCondition) -> list[Version]:
        """The versions a query asks for: its named records (or every record when it names none),
        current versions only unless ``include_history``, inside its time window."""
        if condition.record_ids:
            roots = []
            for rid in condition.record_ids:
                root = self._lineage_of.get(rid)
                if root is not None and root not in roots:
                    roots.append(root)
        else:
            roots = list(self._lineages)
        return self.answer_lineages(roots, condition)

    def answer_lineages(self, roots: Iterable[bytes], condition: QueryCondition) -> list[Version]:
        """:meth:`answer` restricted to the given lineage IDs (a reader's own records)."""
        out: list[Version] = []
        for root in roots:
            if root not in self._lineages:
                continue
            versions = self._versions(root)
            if not condition.include_history:
                versions = [v for v in versions[-1:] if v.status is Status.CURRENT]
            out.extend(v for v in versions if condition.matches_time(v.tx.timestamp_us))
        return out
