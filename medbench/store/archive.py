"""The health authority's archive: the offline tier every node can fetch from by hash.

Theory of operation
-------------------
docs/medical-chain.md §1.4: all data is also synced to the health authorities for full verification,
and the offline tier (older than two years) lives there. A node that dropped another institution's
data by the retention policy, or lost a body (docs/medical-chain.md §1.2: "a deleted transaction on
one node can be fetched from other nodes"), asks an :class:`Archive` by ID or digest.

Anything with ``fetch_blob`` and ``fetch_transaction`` is an archive: a :class:`BlobStore` serves
blobs and a :class:`NodeStore` serves transactions (each raises a ``KeyError`` subclass when it
does not hold the item), and :class:`AuthorityArchive` pairs the two as the authority's node.
Callers verify what comes back: blobs by rehashing (done in :mod:`medbench.store.blobs`),
transactions by the ledger recomputing the ID; the two fall-back views below at least check that
the archive answered for the ID that was asked.

On a node that applied the retention policy, other institutions' old bodies are gone from the
node's database but still listed in its blocks. :class:`ArchiveBackedBodies` is the ID -> body
bytes map a chain verifier (:func:`medbench.ledger.chain.verify_chain`) reads on such a node: the
node's own bodies first, the archive's for the rest, so the chain verifies end to end;
:class:`ArchiveBackedTransactions` is the same over :class:`StoredTransaction` rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol, runtime_checkable

from medbench.store.blobs import BlobSource, BlobStore, Tier
from medbench.store.errors import TransactionNotFound
from medbench.store.node_store import NodeStore
from medbench.store.rows import ID_SIZE, StoredTransaction


@runtime_checkable
class TransactionSource(Protocol):
    """Anything that serves transactions by ID (a :class:`NodeStore`, the authority's archive)."""

    def fetch_transaction(self, tx_id: bytes) -> StoredTransaction:
        """The transaction with ID ``tx_id``; a ``KeyError`` subclass if not held."""
        ...


@runtime_checkable
class Archive(BlobSource, TransactionSource, Protocol):
    """Where data that left a node can be fetched again (the offline tier): blobs and bodies."""


class AuthorityArchive:
    """The health authority's full copy: one node store for bodies, one blob store for files."""

    def __init__(self, store: NodeStore, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs

    def ingest_transactions(self, txs: Iterable[StoredTransaction]) -> int:
        """Receive synced transactions (re-delivery is fine); return how many were new."""
        return self.store.put_transactions(txs, skip_identical=True)

    def ingest_blob(self, data: bytes) -> bytes:
        """Receive a synced blob; return its digest. The archive keeps it near-line (tape)."""
        return self.blobs.put(data, tier=Tier.NEARLINE)

    def fetch_blob(self, digest: bytes) -> bytes:
        """Archive protocol: the verified blob or :class:`~medbench.store.errors.BlobNotFound`."""
        return self.blobs.read_local(digest)

    def fetch_transaction(self, tx_id: bytes) -> StoredTransaction:
        """Archive protocol: the transaction or :class:`TransactionNotFound`."""
        return self.store.fetch_transaction(tx_id)


def _from_archive(archive: TransactionSource, key: object) -> StoredTransaction:
    if not isinstance(key, bytes) or len(key) != ID_SIZE:
        raise KeyError(key)
    try:
        tx = archive.fetch_transaction(key)
    except KeyError:
        raise TransactionNotFound(key) from None
    if tx.tx_id != key:
        raise TransactionNotFound(key)
    return tx


class ArchiveBackedBodies(Mapping[bytes, bytes]):
    """ID -> canonical body bytes: the node's own first, then the archive's (for verifiers).

    Iteration and ``len`` cover the local bodies only (the archive is not enumerable), so a
    verifier's "stored but unlisted" check sees just this node; lookups of IDs the node evicted or
    lost are answered by the archive and counted in :attr:`fetched`.
    """

    __slots__ = ("_archive", "_local", "fetched")

    def __init__(self, local: Mapping[bytes, bytes], archive: TransactionSource) -> None:
        """Fall back from ``local`` (e.g. :attr:`NodeStore.bodies`) to ``archive``."""
        self._local = local
        self._archive = archive
        self.fetched = 0
        """How many lookups the archive answered."""

    def __getitem__(self, key: bytes) -> bytes:
        try:
            return self._local[key]
        except KeyError:
            pass
        body = _from_archive(self._archive, key).body
        self.fetched += 1
        return body

    def __contains__(self, key: object) -> bool:
        if key in self._local:
            return True
        try:
            _from_archive(self._archive, key)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._local)

    def __len__(self) -> int:
        return len(self._local)


class ArchiveBackedTransactions(Mapping[bytes, StoredTransaction]):
    """``Mapping`` of transactions: the node's own first, then the archive's (for verifiers).

    Iteration and ``len`` cover the local store only (the archive is not enumerable); lookups of
    IDs the node evicted or lost are answered by the archive.
    """

    __slots__ = ("_archive", "_local", "fetched")

    def __init__(
        self, local: Mapping[bytes, StoredTransaction], archive: TransactionSource
    ) -> None:
        self._local = local
        self._archive = archive
        self.fetched = 0
        """How many lookups the archive answered."""

    def __getitem__(self, key: bytes) -> StoredTransaction:
        try:
            return self._local[key]
        except KeyError:
            pass
        tx = _from_archive(self._archive, key)
        self.fetched += 1
        return tx

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._local)

    def __len__(self) -> int:
        return len(self._local)
