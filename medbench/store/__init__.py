"""Node storage for Medical Chain (docs/medical-chain.md §1.4): SQLite per node, blob store with
tiers, retention.

* :mod:`medbench.store.node_store` — :class:`NodeStore`: transactions, blocks (IDs only), block
  membership, consensus log and checkpoints, with atomic block append; its reads, ``Mapping``
  views and consistent snapshots are in :mod:`medbench.store.reads`, its schema and migration
  hook in :mod:`medbench.store.schema`, its typed errors in :mod:`medbench.store.errors`;
* :mod:`medbench.store.blobs` — :class:`BlobStore`: content-addressed files for images and scans
  in online / near-line tiers, the health authority's archive as the offline tier;
* :mod:`medbench.store.archive` — the health authority's archive (the offline tier) and the
  ``BlobSource`` / ``TransactionSource`` protocols any node store or blob store satisfies;
* :mod:`medbench.store.retention` — the retention policy as a pure function and its applier;
* :mod:`medbench.store.accounting` — bytes on disk per category and the storage overhead;
* :mod:`medbench.store.rows` — the rows it keeps, validated on construction.

``medbench store report | check`` is :mod:`medbench.cli.store`.
"""

from __future__ import annotations

from medbench.store.errors import (
    AlreadyInBlock,
    ArchiveMissing,
    BlobCorrupted,
    BlobNotFound,
    BlockRefused,
    CheckpointConflict,
    DuplicateBlockId,
    DuplicateTransaction,
    InvalidInput,
    LogCorrupted,
    MigrationError,
    MissingTransactions,
    NotANodeStore,
    PreviousIdMismatch,
    SchemaTooNew,
    StoreError,
    TransactionNotFound,
    WrongHeight,
)
from medbench.store.node_store import NodeStore
from medbench.store.reads import BodyMap, Snapshot, TransactionMap
from medbench.store.rows import (
    ID_SIZE,
    BlobRecord,
    Checkpoint,
    LogEntry,
    StoredBlock,
    StoredTransaction,
)

__all__ = [
    "ID_SIZE",
    "AlreadyInBlock",
    "ArchiveMissing",
    "BlobCorrupted",
    "BlobNotFound",
    "BlobRecord",
    "BlockRefused",
    "BodyMap",
    "Checkpoint",
    "CheckpointConflict",
    "DuplicateBlockId",
    "DuplicateTransaction",
    "InvalidInput",
    "LogCorrupted",
    "LogEntry",
    "MigrationError",
    "MissingTransactions",
    "NodeStore",
    "NotANodeStore",
    "PreviousIdMismatch",
    "SchemaTooNew",
    "Snapshot",
    "StoreError",
    "StoredBlock",
    "StoredTransaction",
    "TransactionMap",
    "TransactionNotFound",
    "WrongHeight",
]
