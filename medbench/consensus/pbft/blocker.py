"""Blocks on top of PBFT: the rotating blocker of Medical Chain, or one block per batch.

Theory of operation
-------------------
Medical Chain (docs/medical-chain.md §1.5, §1.7 step 5) first orders *transactions* with PBFT; then
a *blocker* packs the IDs of accepted transactions into a block, signs it and sends the BLOCK
message to the primary, and the block is ordered by PBFT a second time. The blocker rotates:

    B = L mod (N - 1),   L = current chain length (genesis included), N = validators,

counted among the non-primary replicas, so the primary (which already carries all client traffic)
never blocks. medbench numbers the non-primaries from the primary on, ``VA_{(p + B) mod N}``, with
``B = 0`` standing for the last of them (``N - 1``), so with primary ``VA_0`` the blocker is
exactly ``VA_B`` — the paper's worked example ``L = 1, N = 4 -> B = 1 -> VA_1`` (see
:func:`blocker_for`). The block names the view its blocker computed its turn in; backups prepare
it only in that view, and execution checks it deterministically (:meth:`Chain.check`): right
height, right predecessor, a time not before the predecessor's, the expected blocker for
(height, view), and every listed ID an accepted transaction not yet in a block. Before that, each
backup admits a BLOCK only if its time lies within ``max_clock_skew_us`` of its own clock (TOCS
§4.6, as for a pre-prepare), so a faulty blocker cannot date the chain into the future.

``integrated`` mode skips the second round: every committed PBFT batch *is* the next block (its
blocker field is -1; the batch's commit certificate stands for the blocker's signature).

The block format sits behind :class:`BlockFormat` so that the ledger package can supply the real
signed block; :class:`DefaultBlockFormat` builds the paper's header (height, previous block ID,
blocker, Merkle root of the transaction IDs, timestamp) with block ID = SHA-256 of the canonical
header.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from medbench import codec, merkle
from medbench.consensus.pbft.messages import Block
from medbench.hashing import sha256
from medbench.rotation import blocker_for

ZERO_ID = bytes(32)
INTEGRATED_BLOCKER = -1


class BlockMode(StrEnum):
    """How blocks are made: by a rotating blocker (the paper), or one per batch."""

    BLOCKER = "blocker"
    INTEGRATED = "integrated"


@runtime_checkable
class BlockFormat(Protocol):
    """What the replica needs from a block format (the ledger package supplies its own)."""

    def build(
        self, height: int, prev_id: bytes, blocker: int, tx_ids: tuple[bytes, ...], timestamp: int
    ) -> Any:
        """A block at ``height`` after ``prev_id`` listing ``tx_ids``."""
        ...

    def block_id(self, block: Any) -> bytes:
        """The block's 32-byte ID."""
        ...

    def validate(self, block: Any) -> str | None:
        """``None`` when the block is well formed, else the reason it is not."""
        ...


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The paper's header (docs/medical-chain.md §1.2), with the height made explicit."""

    height: int
    prev_id: bytes
    blocker: int
    merkle_root: bytes
    timestamp: int

    def encode(self) -> bytes:
        """Canonical bytes of the header."""
        return codec.encode(
            (self.height, self.prev_id, self.blocker, self.merkle_root, self.timestamp)
        )


@dataclass(frozen=True, slots=True)
class SimpleBlock:
    """Header plus the transaction IDs (blocks hold IDs only, never bodies: docs/medical-chain.md
    §1.2)."""

    header: BlockHeader
    tx_ids: tuple[bytes, ...]
    id: bytes

    def __repr__(self) -> str:
        h = self.header
        return (
            f"SimpleBlock(h={h.height} b={h.blocker} txs={len(self.tx_ids)} id={self.id[:4].hex()})"
        )


class DefaultBlockFormat:
    """Header = (height, prev ID, blocker, Merkle root of tx IDs, timestamp); ID = its sha256."""

    def build(
        self, height: int, prev_id: bytes, blocker: int, tx_ids: tuple[bytes, ...], timestamp: int
    ) -> SimpleBlock:
        """Build the block and compute its ID."""
        header = BlockHeader(height, prev_id, blocker, merkle.root(list(tx_ids)), timestamp)
        return SimpleBlock(header, tx_ids, sha256(header.encode()))

    def block_id(self, block: Any) -> bytes:
        """The stored ID (recomputed by :meth:`validate`)."""
        return block.id  # type: ignore[no-any-return]

    def validate(self, block: Any) -> str | None:
        """Check the Merkle root and the ID against the contents."""
        if not isinstance(block, SimpleBlock):
            return "not a SimpleBlock"
        if merkle.root(list(block.tx_ids)) != block.header.merkle_root:
            return "merkle root does not match the transaction IDs"
        if sha256(block.header.encode()) != block.id:
            return "block ID does not match the header"
        return None


class Chain:
    """One replica's chain of blocks and its accepted-but-unblocked transactions (deterministic).

    Every honest replica applies the same committed batches in the same order, so its chain is
    the same; the safety checker compares :attr:`ids` across replicas.
    """

    def __init__(self, n: int, mode: BlockMode, fmt: BlockFormat | None = None) -> None:
        self.n = n
        self.mode = BlockMode(mode)
        self.format: BlockFormat = fmt if fmt is not None else DefaultBlockFormat()
        genesis = self.format.build(0, ZERO_ID, INTEGRATED_BLOCKER, (), 0)
        self.blocks: list[Any] = [genesis]
        self.ids: list[bytes] = [self.format.block_id(genesis)]
        self.head_time = 0  # the newest block's timestamp: block times never run back
        self.unblocked: dict[bytes, None] = {}  # accepted, not yet in a block (insertion order)
        self.blocked: set[bytes] = set()

    @property
    def length(self) -> int:
        """``L``: blocks in the chain, genesis included."""
        return len(self.blocks)

    @property
    def head_id(self) -> bytes:
        """ID of the newest block."""
        return self.ids[-1]

    def accept(self, tx_id: bytes) -> None:
        """A transaction was executed (accepted by PBFT): it waits for a block."""
        if tx_id not in self.blocked:
            self.unblocked[tx_id] = None

    def pending(self, limit: int) -> tuple[bytes, ...]:
        """Up to ``limit`` accepted-but-unblocked IDs, oldest first."""
        out: list[bytes] = []
        for tx in self.unblocked:
            if len(out) >= limit:
                break
            out.append(tx)
        return tuple(out)

    def check(self, msg: Block) -> str | None:
        """Deterministic validity of a committed BLOCK message; ``None`` if it may be appended."""
        if self.mode is not BlockMode.BLOCKER:
            return "block messages are not used in integrated mode"
        if msg.height != self.length:
            return "wrong height"
        if msg.prev_id != self.head_id:
            return "wrong previous block"
        if msg.blocker != blocker_for(msg.height, msg.view, self.n):
            return "not the expected blocker"
        if msg.timestamp < self.head_time:
            return "block time before its predecessor"
        if not msg.tx_ids:
            return "empty block"
        if len(set(msg.tx_ids)) != len(msg.tx_ids):
            return "duplicate transaction ID"
        for tx in msg.tx_ids:
            if tx not in self.unblocked:
                return "transaction not accepted or already in a block"
        return None

    def append(self, blocker: int, tx_ids: tuple[bytes, ...], timestamp: int) -> Any:
        """Append the next block (already checked) and mark its transactions blocked."""
        block = self.format.build(self.length, self.head_id, blocker, tx_ids, timestamp)
        reason = self.format.validate(block)
        if reason is not None:
            raise AssertionError(f"block format rejected its own block: {reason}")
        self.blocks.append(block)
        self.ids.append(self.format.block_id(block))
        self.head_time = max(self.head_time, timestamp)
        for tx in tx_ids:
            self.unblocked.pop(tx, None)
            self.blocked.add(tx)
        return block
