"""Real ledger blocks under PBFT: the blocker's signed :class:`medbench.ledger.Block`.

Theory of operation
-------------------
PBFT orders the blocker's BLOCK message (docs/medical-chain.md §1.5,
:mod:`medbench.consensus.pbft.blocker`); every replica then builds the block itself through a
:class:`~medbench.consensus.pbft.BlockFormat`.
:class:`LedgerBlockFormat` makes that block the ledger's own: header ``(height, previous ID,
blocker's raw public key, Merkle root, timestamp)``, block ID = SHA-256 of the header, signature =
the blocker's validator key over the ID (replica ``i`` is ``genesis.validators[i]``).

Two translations are needed:

* the PBFT chain lists *request digests*; the ledger block lists *transaction IDs*. The
  :class:`~medbench.medchain.validation.AccessValidator` records, at execution, which ledger
  transaction each accepted request carried (:attr:`LedgerBlockFormat.ledger_ids`); a request
  refused at execution maps to nothing and is left out of the ledger block (deterministically:
  execution is the same on every honest replica);
* only the blocker holds its private key. The blocker's node sends its signature beside the BLOCK
  message (:class:`BlockSignature`); every node keeps the signatures it received
  (:meth:`add_signature`, bounded) and :meth:`signature_for` returns one only after it verified
  against the header's blocker key. The node admits a BLOCK or a PRE-PREPARE holding a block
  only once that signature is there (:mod:`medbench.medchain.node`), so a block signed by
  anybody but the expected blocker is never prepared by an honest replica and the stall makes the
  view — hence the blocker — change.

In ``integrated`` mode there is no BLOCK message: every replica builds the block of each committed
batch, and the one validator the rotation under ``VA_0`` names for that height signs it on
execution and sends its :class:`BlockSignature`. That validator may be crashed or slow, so a
node stores the block at once with an empty signature and fills the signature in when it
arrives (:meth:`medbench.store.LedgerStore.set_signature`: once, only one that verifies); the
signed blocks above an unsigned one vouch for it through the hash chain (the signature is not
part of the block ID), and :func:`medbench.ledger.verify_chain` reports an unsigned tip as
``UNSIGNED_TIP`` (docs/medical-chain.md §1.5).

Block timestamps are the primary's PBFT clock (TOCS §4.6), counted from the genesis timestamp.
The genesis block is the chain's block 0 (``build(0, ...)`` returns it), so PBFT's chain IDs are
the ledger's block IDs. :func:`primary_for` recovers which primary a stored block was made under
(the header names the blocker, and ``blocker = VA_{(p + B) mod N}`` has one solution ``p``), which
is what :func:`medbench.ledger.verify_chain` needs to check the rotation.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

from medbench import codec, merkle
from medbench.crypto.keys import SigningKey, verify
from medbench.ledger.block import Block, BlockHeader, Genesis
from medbench.rotation import blocker_offset, expected_blocker

MAX_SIGNATURES = 1024
"""Most unverified block signatures a node keeps (older ones are forgotten first)."""


@dataclass(frozen=True, slots=True)
class BlockSignature:
    """A blocker's signature over a block ID, sent beside its BLOCK (a node-level message)."""

    KIND: ClassVar[str] = "block-signature"
    block_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if type(self.block_id) is not bytes or len(self.block_id) != 32:
            raise ValueError("block_id is 32 bytes")
        if type(self.signature) is not bytes or not 0 < len(self.signature) <= 512:
            raise ValueError("signature is 1..512 bytes")

    @property
    def kind(self) -> str:
        """The message kind (for traces and counters)."""
        return self.KIND

    def encode(self) -> bytes:
        """Canonical wire bytes."""
        return codec.encode([self.KIND, self.block_id, self.signature])


@dataclass(frozen=True, slots=True)
class SignatureWanted:
    """Ask peers for the signature of a committed block this node lacks (e.g. after catch-up)."""

    KIND: ClassVar[str] = "signature-wanted"
    block_id: bytes

    def __post_init__(self) -> None:
        if type(self.block_id) is not bytes or len(self.block_id) != 32:
            raise ValueError("block_id is 32 bytes")

    @property
    def kind(self) -> str:
        """The message kind (for traces and counters)."""
        return self.KIND

    def encode(self) -> bytes:
        """Canonical wire bytes."""
        return codec.encode([self.KIND, self.block_id])


def decode_side_message(data: bytes) -> BlockSignature | SignatureWanted:
    """Parse a node-level message from a peer; raises only ``ValueError``."""
    try:
        f = codec.decode(data, codec.Limits(max_bytes=1024, max_depth=1, max_container_len=3))
    except codec.DecodeError as exc:
        raise ValueError(f"malformed side message: {exc}") from None
    if type(f) is list and len(f) == 3 and f[0] == BlockSignature.KIND:
        return BlockSignature(f[1], f[2])
    if type(f) is list and len(f) == 2 and f[0] == SignatureWanted.KIND:
        return SignatureWanted(f[1])
    raise ValueError("not a block-signature or signature-wanted message")


def primary_for(genesis: Genesis, header: BlockHeader) -> bytes | None:
    """The primary's key under which ``header``'s blocker was the expected one (or ``None``)."""
    validators = genesis.validators
    if header.blocker not in validators or len(validators) < 2:
        return None
    b = validators.index(header.blocker)
    p = validators[(b - blocker_offset(header.height, len(validators))) % len(validators)]
    assert expected_blocker(header.height, validators, p) == header.blocker
    return p


class LedgerBlockFormat:
    """A :class:`~medbench.consensus.pbft.BlockFormat` whose blocks are ledger blocks."""

    def __init__(self, genesis: Genesis, key: SigningKey | None = None) -> None:
        self.genesis = genesis
        self.key = key  # this node's validator key: signs the blocks it is the blocker of
        self.ledger_ids: dict[bytes, bytes] = {}  # request digest -> accepted transaction ID
        self.head_timestamp = genesis.timestamp_us  # of the newest block built (the chain's clock)
        self._unverified: OrderedDict[bytes, bytes] = OrderedDict()
        self._verified: dict[bytes, bytes] = {}

    # --- translation ----------------------------------------------------------------------------
    def header_for(
        self, height: int, prev_id: bytes, blocker: int, req_ids: tuple[bytes, ...], ts: int
    ) -> BlockHeader | None:
        """The ledger header of a PBFT block, or ``None`` if a request is unknown here."""
        validators = self.genesis.validators
        if not 0 <= blocker < len(validators) or height < 1:
            return None
        ids = []
        for r in req_ids:
            if r not in self.ledger_ids:
                return None
            tx_id = self.ledger_ids[r]
            if tx_id:
                ids.append(tx_id)
        # PBFT's clock counts microseconds since the genesis block
        ts = self.genesis.timestamp_us + ts
        return BlockHeader(height, prev_id, validators[blocker], merkle.root(ids), ts)

    def tx_ids(self, req_ids: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """The ledger transaction IDs of accepted requests, in block order."""
        return tuple(t for t in (self.ledger_ids.get(r, b"") for r in req_ids) if t)

    # --- signatures -----------------------------------------------------------------------------
    def sign(self, header: BlockHeader) -> bytes | None:
        """This node's signature of ``header`` if it names this node's key as blocker."""
        if self.key is None or header.blocker != self.key.public:
            return None
        sig = self.key.sign(header.id)
        self._verified[header.id] = sig
        return sig

    def add_signature(self, block_id: bytes, signature: bytes) -> None:
        """Keep a signature a peer sent (verified later, against the header it must match)."""
        if block_id in self._verified:
            return
        self._unverified[block_id] = signature
        while len(self._unverified) > MAX_SIGNATURES:
            self._unverified.popitem(last=False)

    def signature_for(self, header: BlockHeader) -> bytes | None:
        """A verified signature of ``header`` by its blocker, or ``None``."""
        sig = self._verified.get(header.id)
        if sig is not None:
            return sig
        sig = self._unverified.get(header.id)
        if sig is None or not verify(self.genesis.scheme, header.blocker, header.id, sig):
            return None
        del self._unverified[header.id]
        self._verified[header.id] = sig
        return sig

    def known_signature(self, block_id: bytes) -> bytes | None:
        """A verified signature by block ID (to answer :class:`SignatureWanted`)."""
        return self._verified.get(block_id)

    def complete(self, block: Block) -> Block:
        """``block`` with its blocker's signature filled in, if it is known by now."""
        if block.signature:
            return block
        sig = self.signature_for(block.header)
        return block if sig is None else Block(block.header, sig, block.tx_ids)

    # --- the BlockFormat protocol ---------------------------------------------------------------
    def build(
        self, height: int, prev_id: bytes, blocker: int, tx_ids: tuple[bytes, ...], timestamp: int
    ) -> Any:
        """The genesis at height 0, else the ledger block (signed if the signature is known).

        ``blocker == -1`` (integrated mode) names the blocker of the rotation under primary
        ``VA_0``; that validator signs on execution and sends the signature like a blocker.
        """
        if height == 0:
            return self.genesis
        validators = self.genesis.validators
        if blocker < 0:
            blocker = validators.index(expected_blocker(height, validators, validators[0]))
        header = self.header_for(height, prev_id, blocker, tx_ids, timestamp)
        assert header is not None, f"block {height} lists a request this replica never executed"
        sig = self.signature_for(header) or self.sign(header) or b""
        self.head_timestamp = max(self.head_timestamp, header.timestamp_us)
        return Block(header, sig, self.tx_ids(tx_ids))

    def block_id(self, block: Any) -> bytes:
        """The ledger block ID (the genesis ID at height 0)."""
        return block.id  # type: ignore[no-any-return]

    def validate(self, block: Any) -> str | None:
        """Merkle root, blocker among the validators, and the signature when it is present.

        A block whose signature has not arrived yet is valid but incomplete: in blocker mode the
        node persists it only once :meth:`complete` fills the signature in (a block caught up by
        state transfer), in integrated mode at once, and fills the signature in later.
        """
        if isinstance(block, Genesis):
            return None if block == self.genesis else "not this consortium's genesis"
        if not isinstance(block, Block):
            return "not a ledger block"
        if not block.root_ok():
            return "merkle root does not match the transaction IDs"
        if primary_for(self.genesis, block.header) is None:
            return "blocker is not a validator"
        if block.signature and not block.signature_ok(self.genesis.scheme):
            return "blocker signature does not verify"
        return None
