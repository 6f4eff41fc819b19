"""Content-addressed blob store for off-chain images and scans, with storage tiers.

Theory of operation
-------------------
docs/medical-chain.md §1.3 item 2 and §1.4: images and video (ultrasound, CT) stay off chain at the
producing node and are backed up at the health authority; only their SHA-256 goes on chain, so a
changed file is detected. Storage is tiered: online (recent, disk), near-line (6 months to 2 years,
tape library) and offline (older, tape) — here the offline tier is the health authority's archive
(any object with a ``fetch_blob`` method, :class:`~medbench.store.archive.BlobSource`, e.g. another
node's blob store).

*Names.* A blob is the file ``<root>/<tier>/<h0h1>/<h2h3>/<hex digest>`` where the digest is
``medbench.hashing.sha256(data)``; two levels of 256-way fan-out keep directories small for
millions of files.

*Atomic writes.* Data goes to a temporary file in ``<root>/tmp`` (same file system), is fsynced,
then renamed onto its final name (``os.replace``, atomic on POSIX) and the directory is fsynced. A
crash leaves either no file or the whole file, plus perhaps a stray temporary that
:meth:`BlobStore.sweep_temporaries` removes. Moving between tiers writes the new copy first and
unlinks the old one after, so a crash in between leaves two good copies, never none.

*Reads verify.* Every read rehashes the bytes; a mismatch is :class:`BlobCorrupted` naming the
tier (a tampered or damaged file is reported, never served). :meth:`BlobStore.repair` replaces a
bad local copy from the archive.

*Never drop the last copy.* Moving a blob to the offline tier deletes the local file only after
the archive has returned bytes that hash to the blob's name (:class:`ArchiveMissing` otherwise).
"""

from __future__ import annotations

import contextlib
import enum
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from medbench.hashing import sha256
from medbench.store.errors import ArchiveMissing, BlobCorrupted, BlobNotFound, InvalidInput
from medbench.store.rows import check_blob, check_id


@runtime_checkable
class BlobSource(Protocol):
    """Anything that serves blobs by digest (a :class:`BlobStore`, the authority's archive)."""

    def fetch_blob(self, digest: bytes) -> bytes:
        """The blob named ``digest``; a ``KeyError`` subclass if not held."""
        ...


class Tier(enum.IntEnum):
    """Storage tiers of docs/medical-chain.md §1.4 (Fig. 4), from fastest to slowest."""

    ONLINE = 0
    NEARLINE = 1
    OFFLINE = 2

    @property
    def dirname(self) -> str:
        """Sub-directory of a local tier (``OFFLINE`` has none: it is the archive)."""
        if self is Tier.OFFLINE:
            raise InvalidInput("the offline tier is the archive, not a local directory")
        return self.name.lower()


LOCAL_TIERS: tuple[Tier, ...] = (Tier.ONLINE, Tier.NEARLINE)
MAX_BLOB_BYTES = 4 * 1024 * 1024 * 1024
"""Largest blob accepted (4 GiB: a long ultrasound video)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    """One node's blob files under ``root`` (see the module docstring).

    ``archive`` is the offline tier: reads fall back to it, and moves to ``Tier.OFFLINE`` check
    it. ``fsync=False`` skips the fsyncs (for throw-away benchmark stores only).
    """

    def __init__(
        self, root: str | Path, *, archive: BlobSource | None = None, fsync: bool = True
    ) -> None:
        self.root = Path(root)
        self.archive = archive
        self.fsync = fsync
        for tier in LOCAL_TIERS:
            (self.root / tier.dirname).mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    # -- names -----------------------------------------------------------------------------------
    def path_of(self, digest: bytes, tier: Tier) -> Path:
        """Where a blob lives in a local tier (whether or not it is there)."""
        h = check_id(digest, "blob digest").hex()
        return self.root / tier.dirname / h[0:2] / h[2:4] / h

    def tier_of(self, digest: bytes) -> Tier | None:
        """The fastest local tier holding the blob, or ``None`` if no local tier does."""
        for tier in LOCAL_TIERS:
            if self.path_of(digest, tier).is_file():
                return tier
        return None

    def __contains__(self, digest: object) -> bool:
        if not isinstance(digest, bytes) or len(digest) != 32:
            return False
        return self.tier_of(digest) is not None

    # -- writes ----------------------------------------------------------------------------------
    def _write_atomic(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if self.fsync:
            _fsync_dir(target.parent)

    def put(self, data: bytes, *, tier: Tier = Tier.ONLINE) -> bytes:
        """Store ``data`` in a local tier and return its SHA-256 (its name).

        Idempotent: a blob already held in any local tier is not written again.
        """
        data = check_blob(data, "blob", max_len=MAX_BLOB_BYTES, empty=True)
        tier = Tier(tier)
        tier.dirname  # noqa: B018 - refuses OFFLINE with InvalidInput
        digest: bytes = sha256(data)
        if self.tier_of(digest) is None:
            self._write_atomic(self.path_of(digest, tier), data)
        return digest

    def put_expected(self, digest: bytes, data: bytes, *, tier: Tier = Tier.ONLINE) -> None:
        """Store bytes received for a known name; :class:`BlobCorrupted` if they do not match."""
        digest = check_id(digest, "blob digest")
        actual = sha256(check_blob(data, "blob", max_len=MAX_BLOB_BYTES, empty=True))
        if actual != digest:
            raise BlobCorrupted(digest, actual, "received data")
        self.put(data, tier=tier)

    def delete(self, digest: bytes) -> bool:
        """Remove the blob from every local tier (simulates loss); return whether any was there."""
        found = False
        for tier in LOCAL_TIERS:
            with contextlib.suppress(FileNotFoundError):
                self.path_of(digest, tier).unlink()
                found = True
        return found

    def sweep_temporaries(self) -> int:
        """Delete temporaries left by a crash mid-write; return how many. Call while idle."""
        n = 0
        for p in self._tmp.glob("*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                n += 1
        return n

    # -- reads -----------------------------------------------------------------------------------
    def _read_verified(self, digest: bytes, tier: Tier) -> bytes:
        data = self.path_of(digest, tier).read_bytes()
        actual = sha256(data)
        if actual != digest:
            raise BlobCorrupted(digest, actual, f"{tier.dirname} tier of {self.root}")
        return data

    def read_local(self, digest: bytes) -> bytes:
        """The blob from the fastest local tier, verified; :class:`BlobNotFound` if not local."""
        digest = check_id(digest, "blob digest")
        for tier in LOCAL_TIERS:
            try:
                return self._read_verified(digest, tier)
            except FileNotFoundError:
                continue
        raise BlobNotFound(digest)

    def get(self, digest: bytes) -> bytes:
        """The blob, verified: from a local tier, else from the archive (offline tier).

        A local copy that fails verification raises :class:`BlobCorrupted` (it is reported, not
        silently replaced: call :meth:`repair`). Archive bytes are verified too.
        """
        digest = check_id(digest, "blob digest")
        try:
            return self.read_local(digest)
        except BlobNotFound:
            if self.archive is None:
                raise
        return self._from_archive(digest)

    def _from_archive(self, digest: bytes) -> bytes:
        assert self.archive is not None
        data = self.archive.fetch_blob(digest)
        actual = sha256(data)
        if actual != digest:
            raise BlobCorrupted(digest, actual, "the archive")
        return data

    def repair(self, digest: bytes, *, tier: Tier = Tier.ONLINE) -> None:
        """Replace a missing or corrupted local copy with the archive's verified bytes."""
        digest = check_id(digest, "blob digest")
        if self.archive is None:
            raise ArchiveMissing("blob", digest)
        data = self._from_archive(digest)
        self.delete(digest)
        self._write_atomic(self.path_of(digest, tier), data)

    # -- tiers -----------------------------------------------------------------------------------
    def move(self, digest: bytes, tier: Tier) -> Tier | None:
        """Move a local blob to ``tier``; return the tier it was in (``None`` if it was offline).

        To ``OFFLINE``: the local copies go only after the archive supplied a verified copy
        (:class:`ArchiveMissing` if it cannot); a corrupted local copy may go then, since a good
        one is archived. From offline to a local tier: fetched from the
        archive. Moving local data re-verifies it (:class:`BlobCorrupted` stops the move).
        """
        digest = check_id(digest, "blob digest")
        tier = Tier(tier)
        current = self.tier_of(digest)
        if current == tier:
            return current
        if tier is Tier.OFFLINE:
            if self.archive is None:
                raise ArchiveMissing("blob", digest)
            try:
                self._from_archive(digest)
            except (KeyError, BlobCorrupted):  # BlobNotFound is a KeyError
                raise ArchiveMissing("blob", digest) from None
            self.delete(digest)
            return current
        if current is None:
            if self.archive is None:
                raise BlobNotFound(digest)
            data = self._from_archive(digest)
        else:
            data = self._read_verified(digest, current)
        self._write_atomic(self.path_of(digest, tier), data)
        if current is not None:
            self.path_of(digest, current).unlink()
        return current

    def iter_digests(self, tier: Tier) -> Iterator[bytes]:
        """Names of the blobs in one local tier (directory order)."""
        base = self.root / Tier(tier).dirname
        for first in sorted(base.iterdir()):
            for second in sorted(first.iterdir()):
                for f in sorted(second.iterdir()):
                    try:
                        digest = bytes.fromhex(f.name)
                    except ValueError:
                        continue  # a stray file is not a blob
                    if len(digest) == 32:
                        yield digest

    def usage(self, tier: Tier) -> tuple[int, int, int]:
        """(files, content bytes, bytes allocated on disk) of one local tier."""
        files = size = disk = 0
        base = self.root / Tier(tier).dirname
        for dirpath, _dirs, names in os.walk(base):
            for name in names:
                st = os.stat(os.path.join(dirpath, name))
                files += 1
                size += st.st_size
                disk += st.st_blocks * 512
        return files, size, disk

    # -- archive role ----------------------------------------------------------------------------
    def fetch_blob(self, digest: bytes) -> bytes:
        """Archive protocol: the verified local blob, or :class:`BlobNotFound`."""
        return self.read_local(digest)
