"""The ledger's view of a node store: Medical Chain blocks and transactions in SQLite.

:class:`NodeStore` keeps bytes (canonical bodies, header bytes, ID lists); the ledger works on
:class:`~medbench.ledger.Transaction`, :class:`~medbench.ledger.Block` and
:class:`~medbench.ledger.Genesis`. :class:`LedgerStore` is the bridge, so that chain verification,
tamper localisation and repair (:mod:`medbench.ledger.chain`) run against a node's real database:

* transactions are stored under their ID with ``body = tx.to_wire()``, ``kind`` and
  ``timestamp_us`` as columns, and ``producer`` = the last listed key — the institution for a
  staff record (which carries staff then institution), the worker for an independent one; the
  retention policy keeps by producer (docs/medical-chain.md §1.4);
* the genesis block is stored at height 0 with its canonical bytes as header; block ``h >= 1`` is
  stored with ``header = encode([header fields, blocker signature])`` and its IDs as membership
  rows, so the block is rebuilt exactly from the store; the signature is empty while the block
  awaits it (integrated mode, docs/medical-chain.md §1.5) and :meth:`LedgerStore.set_signature`
  fills it in once, only with one that verifies;
* the attachments an ``add`` record references (:func:`medbench.records.attachments_of`) are
  recorded as blob metadata — digest, the record's producer, the record's timestamp, size — in the
  same commit as the record, which is what lets :func:`medbench.store.retention.apply_retention`
  age and retire the images of other institutions (docs/medical-chain.md §1.4);
* as a ``MutableMapping[bytes, Transaction]`` it is what :func:`medbench.ledger.chain.repair`
  writes restored copies into: a missing body is put back, an altered one is replaced;
* on a node that evicted other institutions' bodies by the retention policy,
  :meth:`LedgerStore.verifiable_bodies` is the ID -> body map to verify against: the node's own
  bodies first, the authority's archive for the rest (every fetched body is still re-hashed by
  the verifier, so a lying archive shows up as ``BODY_ALTERED``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping

from medbench import codec
from medbench.crypto.keys import Scheme
from medbench.ledger.block import Block, BlockHeader, Genesis
from medbench.ledger.errors import LedgerDecodeError
from medbench.ledger.transaction import Kind, Transaction
from medbench.records.visit import attachments_of
from medbench.store.archive import ArchiveBackedBodies, TransactionSource
from medbench.store.node_store import NodeStore
from medbench.store.reads import BodyMap
from medbench.store.rows import BlobRecord, StoredTransaction


def stored(tx: Transaction) -> StoredTransaction:
    """The store row of ``tx`` (see the module docstring for the ``producer`` rule)."""
    return StoredTransaction(tx.id, int(tx.kind), tx.timestamp_us, tx.public_keys[-1], tx.to_wire())


def blob_records_of(tx: Transaction) -> list[BlobRecord]:
    """The blob metadata of the attachments ``tx`` references (only ``add`` records have any):
    produced by the record's producer at the record's timestamp."""
    if tx.kind is not Kind.ADD:
        return []
    producer = tx.public_keys[-1]
    return [
        BlobRecord(a.sha256, producer, tx.timestamp_us, a.size) for a in attachments_of(tx.content)
    ]


def _rows(txs: Iterable[Transaction]) -> tuple[list[StoredTransaction], list[BlobRecord]]:
    batch = list(txs)
    return [stored(t) for t in batch], [r for t in batch for r in blob_records_of(t)]


class LedgerStore(MutableMapping[bytes, Transaction]):
    """Ledger objects over a :class:`NodeStore`; a mapping from transaction ID to transaction.

    Reading a body that no longer decodes raises :class:`LedgerDecodeError`; chain verification
    reads :attr:`bodies` instead, where corruption becomes a finding.
    """

    def __init__(self, store: NodeStore) -> None:
        self.store = store

    @property
    def bodies(self) -> BodyMap:
        """ID -> canonical body bytes, for :func:`medbench.ledger.chain.verify_chain`."""
        return self.store.bodies

    # -- transactions --------------------------------------------------------------------------
    def add(self, txs: Iterable[Transaction]) -> None:
        """Store transactions and their attachments' metadata (one atomic batch; identical
        copies are fine)."""
        rows, blobs = _rows(txs)
        self.store.put_transactions(rows, skip_identical=True, blobs=blobs)

    def verifiable_bodies(self, archive: TransactionSource | None = None) -> Mapping[bytes, bytes]:
        """ID -> body for :func:`medbench.ledger.chain.verify_chain`: this node's bodies, then
        (when given) the authority's archive for the ones retention evicted or the node lost."""
        return self.bodies if archive is None else ArchiveBackedBodies(self.bodies, archive)

    def __getitem__(self, tx_id: bytes) -> Transaction:
        row = self.store.get_transaction(tx_id)
        if row is None:
            raise KeyError(tx_id)
        return Transaction.from_wire(row.body)

    def __setitem__(self, tx_id: bytes, tx: Transaction) -> None:
        if tx.id != tx_id:
            raise ValueError(f"transaction {tx.id.hex()[:12]} stored under {tx_id.hex()[:12]}")
        row = stored(tx)
        if self.store.get_transaction(tx_id) is None:
            self.store.put_transactions([row], skip_identical=True, blobs=blob_records_of(tx))
        else:  # an altered body under this ID: put the genuine one back
            self.store.tamper_transaction(tx_id, row.body)

    def __delitem__(self, tx_id: bytes) -> None:
        self.store.delete_transaction(tx_id)

    def __iter__(self) -> Iterator[bytes]:
        return self.store.iter_transaction_ids()

    def __len__(self) -> int:
        return self.store.transaction_count()

    # -- blocks --------------------------------------------------------------------------------
    def append_genesis(self, genesis: Genesis) -> None:
        """Store the genesis block at height 0."""
        self.store.append_block(
            0, genesis.id, bytes(32), genesis.to_wire(), b"genesis", genesis.timestamp_us, ()
        )

    def append(self, block: Block, txs: Iterable[Transaction] = ()) -> None:
        """Commit ``block`` (and optionally its transactions, with their attachments' metadata)
        atomically."""
        rows, blobs = _rows(txs)
        h = block.header
        self.store.append_block(
            h.height,
            block.id,
            h.previous_id,
            codec.encode([h.to_fields(), block.signature]),
            h.blocker,
            h.timestamp_us,
            block.tx_ids,
            transactions=rows,
            blobs=blobs,
        )

    def block(self, height: int) -> Block | None:
        """The block stored at ``height >= 1``, or ``None``."""
        row = self.store.get_block(height)
        return None if row is None or height == 0 else _block_of(row.header, row.tx_ids, height)

    def set_signature(self, height: int, signature: bytes, scheme: str | Scheme) -> bool:
        """Fill in the blocker signature of the block stored unsigned at ``height``.

        Only an empty signature is filled, and only with one that verifies under the stored
        header's blocker key over its block ID: a stored signature is never overwritten, and a
        forged one changes nothing. Returns whether the store changed. (An integrated-mode node
        stores its blocks before their signature arrives: docs/medical-chain.md §1.5.)
        """
        row = self.store.get_block(height)
        if row is None or height == 0:
            return False
        block = _block_of(row.header, row.tx_ids, height)
        if block.signature or type(signature) is not bytes or not 0 < len(signature) <= 512:
            return False
        signed = Block(block.header, signature, block.tx_ids)
        if not signed.signature_ok(scheme):
            return False
        new = codec.encode([block.header.to_fields(), signature])
        return self.store.replace_block_header(height, row.block_id, row.header, new)

    def genesis(self) -> Genesis:
        """The genesis block stored at height 0."""
        row = self.store.get_block(0)
        if row is None:
            raise LookupError("the store holds no genesis block")
        return Genesis.from_wire(row.header)

    def blocks(self) -> list[Block]:
        """Every block above genesis, in height order, rebuilt from the store."""
        return [_block_of(row.header, row.tx_ids, row.height) for row in self.store.iter_blocks(1)]


def _block_of(header_bytes: bytes, tx_ids: tuple[bytes, ...], height: int) -> Block:
    """The block rebuilt from a stored row; raises :class:`LedgerDecodeError` if malformed."""
    try:
        header_fields, signature = codec.decode(header_bytes)
        return Block(BlockHeader.from_fields(header_fields), signature, tx_ids)
    except (codec.DecodeError, ValueError, TypeError) as exc:
        raise LedgerDecodeError(f"stored block {height} is malformed: {exc}") from None
