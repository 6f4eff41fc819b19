"""The rows the node store keeps, as frozen slotted dataclasses that validate on construction.

The store is deliberately ignorant of what a transaction or a block *means* (that is
``medbench.ledger``): it holds the canonical bytes the ledger produced plus the few columns it needs
to index, link and age them. Each record checks its own shape when built, so a malformed value is a
typed :class:`~medbench.store.errors.InvalidInput` at the boundary, never a bad row on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medbench.store.errors import InvalidInput

ID_SIZE = 32
"""Length of every transaction ID, block ID and digest (SHA-256)."""
MAX_KEY_BYTES = 1024
"""Largest producer / blocker key accepted (an RSA-4096 DER key fits; Ed25519 is 32)."""
MAX_RECORD_BYTES = 64 * 1024 * 1024
"""Largest body / header / log record accepted in one row (64 MiB)."""
MAX_KIND = 0xFFFF
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def check_id(value: Any, what: str = "ID") -> bytes:
    """Return ``value`` as ``bytes`` if it is a 32-byte ID, else raise :class:`InvalidInput`."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidInput(f"{what} must be bytes, got {type(value).__name__}")
    out = bytes(value)
    if len(out) != ID_SIZE:
        raise InvalidInput(f"{what} must be {ID_SIZE} bytes, got {len(out)}")
    return out


def check_blob(
    value: Any, what: str, *, max_len: int = MAX_RECORD_BYTES, empty: bool = False
) -> bytes:
    """Return ``value`` as ``bytes`` if it is a byte string of an allowed length."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidInput(f"{what} must be bytes, got {type(value).__name__}")
    out = bytes(value)
    if not empty and not out:
        raise InvalidInput(f"{what} must not be empty")
    if len(out) > max_len:
        raise InvalidInput(f"{what} of {len(out)} bytes exceeds {max_len}")
    return out


def check_int(value: Any, what: str, lo: int = 0, hi: int = INT64_MAX) -> int:
    """Return ``value`` if it is an ``int`` (not a ``bool``) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise InvalidInput(f"{what} = {value} outside [{lo}, {hi}]")
    return int(value)


@dataclass(frozen=True, slots=True)
class StoredTransaction:
    """One transaction as a node keeps it (docs/medical-chain.md §1.2: bodies live in each node's
    database).

    ``body`` is the ledger's canonical encoding of the whole transaction (type, content, timestamp,
    keys, signatures), so a verifier can decode it and recompute ``tx_id``; ``kind``,
    ``timestamp_us`` and ``producer`` (the producing institution's raw public key) are copies kept
    as columns for retention and queries.
    """

    tx_id: bytes
    kind: int
    timestamp_us: int
    producer: bytes
    body: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "tx_id", check_id(self.tx_id, "transaction ID"))
        object.__setattr__(self, "kind", check_int(self.kind, "kind", 0, MAX_KIND))
        object.__setattr__(
            self, "timestamp_us", check_int(self.timestamp_us, "timestamp_us", INT64_MIN)
        )
        object.__setattr__(
            self, "producer", check_blob(self.producer, "producer", max_len=MAX_KEY_BYTES)
        )
        object.__setattr__(self, "body", check_blob(self.body, "body"))

    @property
    def size(self) -> int:
        """Length of the canonical body in bytes."""
        return len(self.body)

    def __repr__(self) -> str:
        return (
            f"StoredTransaction({self.tx_id.hex()[:12]}, kind={self.kind}, "
            f"t={self.timestamp_us}, producer={self.producer.hex()[:8]}, {self.size} B)"
        )


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """One block: its header bytes, the columns that link it, and its transaction IDs in order.

    docs/medical-chain.md §1.2: the header holds the previous block ID, the blocker's key, the
    Merkle root and the timestamp; the IDs sit outside the header. The store checks the links
    (height, previous ID, one block per transaction ID); the ledger checks the header and the Merkle
    root.
    """

    height: int
    block_id: bytes
    prev_id: bytes
    header: bytes
    blocker: bytes
    timestamp_us: int
    tx_ids: tuple[bytes, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "height", check_int(self.height, "height"))
        object.__setattr__(self, "block_id", check_id(self.block_id, "block ID"))
        object.__setattr__(self, "prev_id", check_id(self.prev_id, "previous block ID"))
        object.__setattr__(self, "header", check_blob(self.header, "header"))
        object.__setattr__(
            self, "blocker", check_blob(self.blocker, "blocker", max_len=MAX_KEY_BYTES)
        )
        object.__setattr__(
            self, "timestamp_us", check_int(self.timestamp_us, "timestamp_us", INT64_MIN)
        )
        if isinstance(self.tx_ids, (bytes, str)):
            raise InvalidInput("tx_ids must be a sequence of IDs, not a single bytes/str")
        try:
            ids = tuple(check_id(t, "transaction ID") for t in self.tx_ids)
        except TypeError as exc:
            raise InvalidInput(f"tx_ids must be iterable: {exc}") from None
        if len(set(ids)) != len(ids):
            raise InvalidInput(f"block {self.height} lists a transaction ID twice")
        object.__setattr__(self, "tx_ids", ids)

    def __repr__(self) -> str:
        return (
            f"StoredBlock(h={self.height}, {self.block_id.hex()[:12]} "
            f"<- {self.prev_id.hex()[:12]}, "
            f"{len(self.tx_ids)} IDs)"
        )


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One consensus-log record (a PRE-PREPARE, PREPARE, COMMIT, view-change ... as bytes).

    ``index`` is the store's append counter (total order of appends); ``sequence`` and ``view``
    are PBFT's; ``digest`` is the SHA-256 of ``record``, computed by the store when it was
    appended and checked when it is read.
    """

    index: int
    sequence: int
    view: int
    digest: bytes
    record: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A PBFT checkpoint: the state digest at ``sequence`` and the certificate proving it stable."""

    sequence: int
    state_digest: bytes
    certificate: bytes


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """What the node store knows about an off-chain blob: who produced it, when (for retention)."""

    digest: bytes
    producer: bytes
    produced_at_us: int
    size: int
