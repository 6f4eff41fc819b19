"""Typed errors of the node store and the blob store.

Every refusal of the store is one of these classes, so a driver can tell bad input (a peer sent a
block at the wrong height, an ID of the wrong length) from a broken disk (a blob whose bytes no
longer hash to its name) and count each with its reason. The store raises them *before* it writes,
or rolls back what it wrote, so a refused call never leaves a half-written store behind.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store package raises on purpose."""


class InvalidInput(StoreError, ValueError):
    """An argument is malformed: wrong type, wrong ID length, out-of-range integer, ..."""


class SchemaTooNew(StoreError):
    """The file was written by a newer medbench whose schema this version cannot read."""

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"store schema version {found} is newer than the newest this code supports "
            f"({supported}); upgrade medbench to open it"
        )
        self.found = found
        self.supported = supported


class NotANodeStore(StoreError):
    """The file is an SQLite database, but not one of medbench's node stores."""


class MigrationError(StoreError):
    """The schema is older than the code and no migration step is registered for it."""


class DuplicateTransaction(StoreError):
    """A transaction with this ID is already stored (``identical`` says whether byte-equal)."""

    def __init__(self, tx_id: bytes, identical: bool) -> None:
        what = "an identical" if identical else "a DIFFERENT"
        super().__init__(f"transaction {tx_id.hex()[:16]} already stored ({what} record)")
        self.tx_id = tx_id
        self.identical = identical


class TransactionNotFound(StoreError, KeyError):
    """The store holds no transaction with this ID."""

    def __init__(self, tx_id: bytes) -> None:
        super().__init__(f"transaction {tx_id.hex()[:16]} not in the store")
        self.tx_id = tx_id

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class BlockRefused(StoreError):
    """Base of the reasons :meth:`NodeStore.append_block` refuses a block."""


class WrongHeight(BlockRefused):
    """The block's height is not the next one (the tip height + 1, or 0 on an empty chain)."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"block height {got} refused: the next height is {expected}")
        self.expected = expected
        self.got = got


class PreviousIdMismatch(BlockRefused):
    """The block's previous-block ID is not the ID of the block stored one height below."""

    def __init__(self, height: int, expected: bytes, got: bytes) -> None:
        super().__init__(
            f"block {height} names previous {got.hex()[:16]}, "
            f"but block {height - 1} is {expected.hex()[:16]}"
        )
        self.height = height
        self.expected = expected
        self.got = got


class DuplicateBlockId(BlockRefused):
    """Another stored block already has this block ID."""

    def __init__(self, block_id: bytes, height: int) -> None:
        super().__init__(f"block ID {block_id.hex()[:16]} is already block {height}")
        self.block_id = block_id
        self.height = height


class AlreadyInBlock(BlockRefused):
    """Transaction IDs that an earlier block already holds (an ID joins at most one block)."""

    def __init__(self, where: dict[bytes, int]) -> None:
        first = next(iter(where))
        super().__init__(
            f"{len(where)} transaction ID(s) already in a block, "
            f"e.g. {first.hex()[:16]} in block {where[first]}"
        )
        self.where = where


class MissingTransactions(BlockRefused):
    """Transaction IDs the block lists but whose bodies this node does not hold."""

    def __init__(self, tx_ids: list[bytes]) -> None:
        super().__init__(
            f"{len(tx_ids)} transaction ID(s) not in the store, e.g. {tx_ids[0].hex()[:16]}"
        )
        self.tx_ids = tx_ids


class LogCorrupted(StoreError):
    """Consensus-log records whose bytes no longer match the digest stored with them.

    ``entries`` lists ``(index, sequence)`` of each. A replica must not replay such a log: a
    lost or altered vote could make it vote twice.
    """

    def __init__(self, entries: list[tuple[int, int]]) -> None:
        self.entries = entries
        shown = ", ".join(f"#{i} (sequence {s})" for i, s in entries[:5])
        more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        super().__init__(
            f"{len(entries)} consensus-log record(s) do not match their digest: {shown}{more}"
        )


class CheckpointConflict(StoreError):
    """A checkpoint at this sequence is stored with a different state digest."""

    def __init__(self, sequence: int) -> None:
        super().__init__(f"a different checkpoint is already stored at sequence {sequence}")
        self.sequence = sequence


class BlobNotFound(StoreError, KeyError):
    """No tier holds the blob and no archive could supply it."""

    def __init__(self, digest: bytes) -> None:
        super().__init__(f"blob {digest.hex()[:16]} not found")
        self.digest = digest

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class BlobCorrupted(StoreError):
    """A blob's bytes do not hash to its name: the file was altered or damaged."""

    def __init__(self, digest: bytes, actual: bytes, where: str) -> None:
        super().__init__(
            f"blob {digest.hex()[:16]} in {where} hashes to {actual.hex()[:16]}: "
            "tampered or damaged"
        )
        self.digest = digest
        self.actual = actual
        self.where = where


class ArchiveMissing(StoreError):
    """A move to the offline tier was refused: the archive does not hold a verified copy."""

    def __init__(self, what: str, key: bytes) -> None:
        super().__init__(f"archive has no verified copy of {what} {key.hex()[:16]}; kept locally")
        self.key = key
