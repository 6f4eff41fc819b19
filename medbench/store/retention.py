"""The retention policy of docs/medical-chain.md §1.4 as pure decisions, and the applier that
carries them out.

Theory of operation
-------------------
docs/medical-chain.md §1.4 (Fig. 4): storage is tiered by age — online (recent, about six months,
disk), near-line (six months to two years, tape library), offline (older, tape) — and each validator
keeps all data its own institution produced, while data from other institutions is kept only
about six months; all data is synced to the health authority, which therefore serves as the
offline tier (:mod:`medbench.store.archive`). Blocks (IDs only) are kept whole by every node.

The decisions are pure functions of (policy, own institution, producer, production time, now):
no clock, no I/O, so they are property-tested against a small reference model.

* :func:`blob_tier` — own institution's blobs: online. Others': online while younger than
  ``online_age_us`` (default 183 days), near-line while younger than ``nearline_age_us``
  (default 2 years = 730 days), offline after. A timestamp in the future counts as age 0.
* :func:`keep_body` — transaction bodies stay unless ``policy.evict_bodies`` (on by default: it
  is the paper's policy) and the body is another institution's and at least ``online_age_us``
  old (the paper's "other institutions' data ... only six months"; there is no near-line tier for
  rows of the node's database). Producer is the last key a transaction lists (the institution of
  a staff record, the worker of an independent one, the patient of her own grants), so bodies
  no institution produced leave every node after six months and live on at the authority.

:func:`apply_retention` walks a node's store and blob store and applies the decisions. It never
drops the last copy: a blob goes offline, and a body is evicted, only once the archive has returned
a matching copy; anything it could not move is listed in the report with the reason. After it,
the node verifies its chain against :class:`~medbench.store.archive.ArchiveBackedBodies` (its own
bodies, then the archive's), see :meth:`medbench.store.ledger_store.LedgerStore.verifiable_bodies`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from medbench.store.archive import TransactionSource
from medbench.store.blobs import BlobStore, Tier
from medbench.store.errors import ArchiveMissing, BlobCorrupted, InvalidInput
from medbench.store.node_store import NodeStore
from medbench.store.rows import check_int

DAY_US = 86_400 * 1_000_000
"""One day in microseconds."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Ages (microseconds) at which other institutions' data leaves the online / near-line tier."""

    online_age_us: int = 183 * DAY_US
    nearline_age_us: int = 730 * DAY_US
    evict_bodies: bool = True

    def __post_init__(self) -> None:
        check_int(self.online_age_us, "online_age_us")
        check_int(self.nearline_age_us, "nearline_age_us")
        if self.nearline_age_us < self.online_age_us:
            raise InvalidInput("nearline_age_us must be >= online_age_us")
        if not isinstance(self.evict_bodies, bool):
            raise InvalidInput("evict_bodies must be a bool")


def blob_tier(
    policy: RetentionPolicy,
    *,
    own_institution: bytes,
    producer: bytes,
    produced_at_us: int,
    now_us: int,
) -> Tier:
    """The tier a blob belongs in at ``now_us`` (pure; see the module docstring)."""
    if producer == own_institution:
        return Tier.ONLINE
    age = now_us - produced_at_us
    if age < policy.online_age_us:
        return Tier.ONLINE
    if age < policy.nearline_age_us:
        return Tier.NEARLINE
    return Tier.OFFLINE


def keep_body(
    policy: RetentionPolicy,
    *,
    own_institution: bytes,
    producer: bytes,
    timestamp_us: int,
    now_us: int,
) -> bool:
    """Whether a transaction body stays in the node's database at ``now_us`` (pure)."""
    if not policy.evict_bodies or producer == own_institution:
        return True
    return now_us - timestamp_us < policy.online_age_us


@dataclass(slots=True)
class RetentionReport:
    """What one :func:`apply_retention` pass did."""

    blob_moves: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(from tier, to tier) -> number of blobs moved (``"missing"`` = not held locally)."""
    bodies_evicted: int = 0
    refused: list[tuple[bytes, str]] = field(default_factory=list)
    """(digest or transaction ID, reason) for every item left in place."""


def _tier_name(tier: Tier | None) -> str:
    return "missing" if tier is None else tier.name.lower()


def apply_retention(
    store: NodeStore,
    blobs: BlobStore | None,
    policy: RetentionPolicy,
    *,
    own_institution: bytes,
    now_us: int,
    archive: TransactionSource | None = None,
) -> RetentionReport:
    """Move blobs between tiers and evict bodies as the policy decides at ``now_us``.

    Blobs go offline through ``blobs.archive``; bodies are evicted only once ``archive`` (by
    default ``blobs.archive`` when it also serves transactions, like :class:`AuthorityArchive`)
    returns an identical copy. Blobs that are offline but belong online again (a policy change)
    are fetched back from the archive.
    """
    now_us = check_int(now_us, "now_us", -(1 << 63))
    if archive is None and blobs is not None and isinstance(blobs.archive, TransactionSource):
        archive = blobs.archive
    report = RetentionReport()
    if blobs is not None:
        for rec in store.blob_records():
            want = blob_tier(
                policy,
                own_institution=own_institution,
                producer=rec.producer,
                produced_at_us=rec.produced_at_us,
                now_us=now_us,
            )
            have = blobs.tier_of(rec.digest)
            if have == want or (have is None and want is Tier.OFFLINE):
                continue
            try:
                blobs.move(rec.digest, want)
            except (ArchiveMissing, BlobCorrupted, KeyError) as exc:
                report.refused.append((rec.digest, f"{type(exc).__name__}: {exc}"))
                continue
            report.blob_moves[(_tier_name(have), _tier_name(want))] += 1
    if policy.evict_bodies:
        doomed: list[bytes] = []
        for tx in store.iter_transactions():
            if keep_body(
                policy,
                own_institution=own_institution,
                producer=tx.producer,
                timestamp_us=tx.timestamp_us,
                now_us=now_us,
            ):
                continue
            if archive is None:
                report.refused.append((tx.tx_id, "no archive"))
                continue
            try:
                archived = archive.fetch_transaction(tx.tx_id)
            except KeyError:
                report.refused.append((tx.tx_id, "not in the archive"))
                continue
            if archived != tx:
                report.refused.append((tx.tx_id, "the archive's copy differs"))
                continue
            doomed.append(tx.tx_id)
        report.bodies_evicted = store.evict_transactions(doomed, now_us=now_us)
    return report
