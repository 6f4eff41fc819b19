"""The content-addressed blob store: names, atomic writes, tamper detection, tiers, archive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbench.hashing import sha256
from medbench.store import ArchiveMissing, BlobCorrupted, BlobNotFound, InvalidInput
from medbench.store.blobs import BlobStore, Tier


@pytest.fixture
def archive(tmp_path: Path) -> BlobStore:
    """Another blob store playing the health authority's archive."""
    return BlobStore(tmp_path / "authority")


@pytest.fixture
def blobs(tmp_path: Path, archive: BlobStore) -> BlobStore:
    """A node's blob store backed by ``archive``."""
    return BlobStore(tmp_path / "node", archive=archive)


def test_name_is_sha256_with_fanout(blobs: BlobStore) -> None:
    scan = b"CT slice " * 1000
    d = blobs.put(scan)
    assert d == sha256(scan)
    h = d.hex()
    assert blobs.path_of(d, Tier.ONLINE) == blobs.root / "online" / h[:2] / h[2:4] / h
    assert blobs.path_of(d, Tier.ONLINE).read_bytes() == scan
    assert blobs.get(d) == scan and blobs.tier_of(d) is Tier.ONLINE and d in blobs
    assert blobs.put(scan) == d  # idempotent
    assert blobs.put(b"") == sha256(b"")  # an empty file is a blob too
    assert list((blobs.root / "tmp").iterdir()) == []  # no temporaries left


@given(data=st.binary(max_size=3000))
def test_roundtrip_any_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    b = BlobStore(tmp_path_factory.mktemp("b"), fsync=False)
    d = b.put(data)
    assert b.get(d) == data and d in list(b.iter_digests(Tier.ONLINE))


def test_tampered_file_is_detected(blobs: BlobStore) -> None:
    d = blobs.put(b"ultrasound video frames")
    path = blobs.path_of(d, Tier.ONLINE)
    path.write_bytes(b"ultrasound video frameS")
    with pytest.raises(BlobCorrupted) as info:
        blobs.get(d)
    assert info.value.digest == d and "online" in info.value.where
    path.write_bytes(b"")  # truncated
    with pytest.raises(BlobCorrupted):
        blobs.read_local(d)


def test_repair_from_archive(blobs: BlobStore, archive: BlobStore) -> None:
    data = b"MRI " * 500
    d = blobs.put(data)
    archive.put(data, tier=Tier.NEARLINE)
    blobs.path_of(d, Tier.ONLINE).write_bytes(b"garbage")
    blobs.repair(d)
    assert blobs.get(d) == data


def test_missing_and_bad_names(blobs: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        blobs.get(sha256(b"never stored"))
    with pytest.raises(InvalidInput):
        blobs.get(b"short")
    with pytest.raises(InvalidInput):
        blobs.put("text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        blobs.put(b"x", tier=Tier.OFFLINE)
    assert b"short" not in blobs and "x" not in blobs
    received = b"pathology slide"
    with pytest.raises(BlobCorrupted):
        blobs.put_expected(sha256(b"something else"), received)
    blobs.put_expected(sha256(received), received, tier=Tier.NEARLINE)
    assert blobs.tier_of(sha256(received)) is Tier.NEARLINE


def test_failed_write_leaves_no_file(blobs: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="no space"):
        blobs.put(b"x-ray")
    monkeypatch.undo()
    assert sha256(b"x-ray") not in blobs
    assert list((blobs.root / "tmp").iterdir()) == []


def test_sweep_temporaries(blobs: BlobStore) -> None:
    (blobs.root / "tmp" / "crash123.tmp").write_bytes(b"half a scan")
    assert blobs.sweep_temporaries() == 1
    assert list((blobs.root / "tmp").iterdir()) == []


def test_tier_moves_and_fetch_from_archive(blobs: BlobStore, archive: BlobStore) -> None:
    data = b"ECG trace " * 300
    d = blobs.put(data)
    assert blobs.move(d, Tier.NEARLINE) is Tier.ONLINE
    assert blobs.tier_of(d) is Tier.NEARLINE
    assert not blobs.path_of(d, Tier.ONLINE).exists()
    assert blobs.usage(Tier.NEARLINE)[:2] == (1, len(data))
    # offline needs the archive to hold a verified copy first
    with pytest.raises(ArchiveMissing):
        blobs.move(d, Tier.OFFLINE)
    assert blobs.tier_of(d) is Tier.NEARLINE  # nothing lost
    archive.put(data)
    assert blobs.move(d, Tier.OFFLINE) is Tier.NEARLINE
    assert blobs.tier_of(d) is None and d not in blobs
    assert blobs.get(d) == data  # fetched by hash from the archive
    assert blobs.move(d, Tier.ONLINE) is None  # back from the archive
    assert blobs.tier_of(d) is Tier.ONLINE


def test_corrupted_archive_copy_is_not_trusted(blobs: BlobStore, archive: BlobStore) -> None:
    data = b"CT volume"
    d = blobs.put(data)
    archive.put(data)
    archive.path_of(d, Tier.ONLINE).write_bytes(b"CT volumE")
    with pytest.raises(ArchiveMissing):
        blobs.move(d, Tier.OFFLINE)  # the local copy stays
    assert blobs.get(d) == data
    blobs.delete(d)
    with pytest.raises(BlobCorrupted) as info:
        blobs.get(d)
    assert info.value.where == "the archive" or "authority" in info.value.where


def test_no_archive_means_not_found(tmp_path: Path) -> None:
    lone = BlobStore(tmp_path / "lone")
    d = lone.put(b"x")
    with pytest.raises(ArchiveMissing):
        lone.move(d, Tier.OFFLINE)
    lone.delete(d)
    with pytest.raises(BlobNotFound):
        lone.get(d)
    with pytest.raises(ArchiveMissing):
        lone.repair(d)
