"""The retention policy (pure decisions vs a reference model) and its applier."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from storekit import INSTITUTIONS, make_tx

from medbench.store import InvalidInput, NodeStore, TransactionNotFound
from medbench.store.archive import Archive, ArchiveBackedTransactions, AuthorityArchive
from medbench.store.blobs import BlobStore, Tier
from medbench.store.retention import (
    DAY_US,
    RetentionPolicy,
    apply_retention,
    blob_tier,
    keep_body,
)

OWN = INSTITUTIONS[0]


def reference_tier(
    own: bool, age_days: Fraction, online_days: Fraction, nearline_days: Fraction
) -> str:
    """The paper's rule read literally: own data stays; others' by age bands."""
    if own:
        return "online"
    bands = [("online", online_days), ("nearline", nearline_days)]
    for name, limit in bands:
        if age_days < limit:
            return name
    return "offline"


times = st.integers(-(2**50), 2**50)


@given(
    own=st.booleans(),
    produced=times,
    now=times,
    online=st.integers(0, 2**45),
    extra=st.integers(0, 2**45),
    evict=st.booleans(),
)
def test_policy_equals_reference_model(
    own: bool, produced: int, now: int, online: int, extra: int, evict: bool
) -> None:
    policy = RetentionPolicy(
        online_age_us=online, nearline_age_us=online + extra, evict_bodies=evict
    )
    producer = OWN if own else INSTITUTIONS[2]
    tier = blob_tier(
        policy, own_institution=OWN, producer=producer, produced_at_us=produced, now_us=now
    )
    assert tier.name.lower() == reference_tier(  # exact day arithmetic, no float rounding
        own,
        Fraction(now - produced, DAY_US),
        Fraction(online, DAY_US),
        Fraction(online + extra, DAY_US),
    )
    kept = keep_body(
        policy, own_institution=OWN, producer=producer, timestamp_us=produced, now_us=now
    )
    assert kept == (not evict or own or tier is Tier.ONLINE)


@given(produced=times, now=times, later=st.integers(0, 2**46), own=st.booleans())
def test_tiers_only_get_colder_with_time(produced: int, now: int, later: int, own: bool) -> None:
    policy = RetentionPolicy()
    producer = OWN if own else INSTITUTIONS[1]

    def tier(at: int) -> Tier:
        return blob_tier(
            policy, own_institution=OWN, producer=producer, produced_at_us=produced, now_us=at
        )

    assert tier(now) <= tier(now + later)


def test_default_policy_matches_the_paper() -> None:
    p = RetentionPolicy()
    assert p.online_age_us == 183 * DAY_US and p.nearline_age_us == 730 * DAY_US
    other = INSTITUTIONS[3]
    at = 10_000 * DAY_US

    def tier(days: int) -> Tier:
        return blob_tier(
            p, own_institution=OWN, producer=other, produced_at_us=at - days * DAY_US, now_us=at
        )

    assert [tier(d) for d in (0, 182, 183, 729, 730, 5000)] == [
        Tier.ONLINE,
        Tier.ONLINE,
        Tier.NEARLINE,
        Tier.NEARLINE,
        Tier.OFFLINE,
        Tier.OFFLINE,
    ]
    assert (
        blob_tier(p, own_institution=OWN, producer=OWN, produced_at_us=0, now_us=at) is Tier.ONLINE
    )
    with pytest.raises(InvalidInput):
        RetentionPolicy(online_age_us=10, nearline_age_us=5)
    with pytest.raises(InvalidInput):
        RetentionPolicy(online_age_us=-1)


@pytest.fixture
def authority(tmp_path: Path) -> AuthorityArchive:
    """The health authority's archive: its own node store and blob store."""
    return AuthorityArchive(NodeStore(tmp_path / "authority.db"), BlobStore(tmp_path / "authority"))


def test_apply_retention_moves_blobs_and_evicts_bodies(
    tmp_path: Path, authority: AuthorityArchive
) -> None:
    assert isinstance(authority, Archive)
    now = 1000 * DAY_US
    ages = [0, 100, 200, 500, 800]
    store = NodeStore(tmp_path / "node.db")
    blobs = BlobStore(tmp_path / "node", archive=authority)
    txs, digests = [], {}
    for k, inst in enumerate(INSTITUTIONS):
        for j, age in enumerate(ages):
            i = 10 * k + j
            t = now - age * DAY_US
            tx = make_tx(i, producer=inst, t=t)
            txs.append(tx)
            image = b"scan %d " % i * 50
            d = blobs.put(image)
            store.put_blob_record(d, producer=inst, produced_at_us=t, size=len(image))
            authority.ingest_blob(image)
            digests[d] = (inst, t)
    store.put_transactions(txs)
    authority.ingest_transactions(txs)
    policy = RetentionPolicy(evict_bodies=True)
    report = apply_retention(store, blobs, policy, own_institution=OWN, now_us=now)
    assert report.refused == []
    for d, (inst, t) in digests.items():
        want = blob_tier(policy, own_institution=OWN, producer=inst, produced_at_us=t, now_us=now)
        assert blobs.tier_of(d) == (None if want is Tier.OFFLINE else want)
        assert blobs.get(d).startswith(b"scan ")  # still fetchable, offline via the archive
    # 3 other institutions x (200, 500 days -> near-line; 800 days -> offline)
    assert report.blob_moves == {("online", "nearline"): 6, ("online", "offline"): 3}
    evicted = {t.tx_id for t in txs if t.producer != OWN and now - t.timestamp_us >= 183 * DAY_US}
    assert report.bodies_evicted == len(evicted) == 9
    assert set(store.evicted_ids()) == evicted
    assert {t for t in store.transactions} == {t.tx_id for t in txs} - evicted
    view = ArchiveBackedTransactions(store.transactions, authority)
    assert all(view[t.tx_id] == t for t in txs) and view.fetched == 9
    # a second pass has nothing left to do
    again = apply_retention(store, blobs, policy, own_institution=OWN, now_us=now)
    assert not again.blob_moves and again.bodies_evicted == 0
    # a policy change brings offline blobs back from the archive
    back = apply_retention(
        store,
        blobs,
        RetentionPolicy(online_age_us=10_000 * DAY_US, nearline_age_us=10_000 * DAY_US),
        own_institution=OWN,
        now_us=now,
    )
    assert back.blob_moves == {("nearline", "online"): 6, ("missing", "online"): 3}
    store.close()
    authority.store.close()


def test_retention_never_drops_the_last_copy(tmp_path: Path, authority: AuthorityArchive) -> None:
    now = 1000 * DAY_US
    store = NodeStore(tmp_path / "node.db")
    blobs = BlobStore(tmp_path / "node", archive=authority)
    other = INSTITUTIONS[1]
    old = make_tx(1, producer=other, t=0)
    changed = make_tx(2, producer=other, t=0)
    store.put_transactions([old, changed])
    # the archive holds a different record under `changed`'s ID, and nothing for `old`
    from medbench.store import StoredTransaction

    authority.ingest_transactions(
        [StoredTransaction(changed.tx_id, changed.kind, 0, other, b"forged copy")]
    )
    d = blobs.put(b"old image")
    store.put_blob_record(d, producer=other, produced_at_us=0, size=9)
    report = apply_retention(
        store, blobs, RetentionPolicy(evict_bodies=True), own_institution=OWN, now_us=now
    )
    reasons = dict(report.refused)
    assert reasons[old.tx_id] == "not in the archive"
    assert reasons[changed.tx_id] == "the archive's copy differs"
    assert reasons[d].startswith("ArchiveMissing")
    assert len(store.transactions) == 2 and blobs.tier_of(d) is Tier.ONLINE
    with pytest.raises(TransactionNotFound):
        ArchiveBackedTransactions(store.transactions, authority)[make_tx(99).tx_id]
    no_archive = apply_retention(
        store, None, RetentionPolicy(evict_bodies=True), own_institution=OWN, now_us=now
    )
    assert {r for _, r in no_archive.refused} == {"no archive"}
    store.close()
    authority.store.close()
