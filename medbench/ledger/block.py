"""Blocks of transaction IDs and the genesis block that names the consortium.

Theory of operation
-------------------
docs/medical-chain.md §1.2: a block header is (previous block ID, blocker's public key, Merkle root
over the transaction IDs, timestamp); outside the header are the blocker's signature, the count of
IDs and the IDs themselves. Blocks never hold transaction bodies — those live in each node's
database, keyed by ID — which keeps the chain small enough for every node (and outside auditors) to
hold.

medbench adds the ``height`` to the header so that a reordered chain is caught by the header
alone. Then:

* ``header = [height, previous_id, blocker, merkle_root, timestamp_us]``;
* ``block ID = SHA-256(codec.encode(header))``;
* ``signature`` = the blocker's signature over the 32-byte block ID;
* ``merkle_root = medbench.merkle.root(tx_ids)`` (RFC 9162 tree over the IDs, so one ID can be
  proven with :meth:`Block.inclusion_proof` and a tampered one located with ``merkle.diff``);
* wire form ``[header, signature, count, [ids]]``: the explicit count of §1.2 is checked against
  the list on decoding.

The **genesis** block (height 0) carries no transactions: it names the consortium — chain name,
signature scheme, validator keys in replica order (``VA_0 .. VA_{N-1}``) and the root of trust
(e.g. the root CA certificate's SHA-256 fingerprint). Its ID is the ``previous_id`` of block 1, so
every block commits to the consortium it was made in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from medbench import codec, merkle
from medbench.crypto.keys import (
    MAX_PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    Scheme,
    SigningKey,
    is_known_scheme,
    verify,
)
from medbench.hashing import sha256
from medbench.ledger.errors import LedgerDecodeError

ID_SIZE = 32
ZERO_ID = bytes(ID_SIZE)
MAX_BLOCK_TRANSACTIONS = 1 << 16
"""Most transaction IDs one block may list."""
MAX_VALIDATORS = 1024
GENESIS_TAG = "medbench-genesis"
_MAX_TS = (1 << 63) - 1

_BLOCK_LIMITS = codec.Limits(
    max_bytes=MAX_BLOCK_TRANSACTIONS * (ID_SIZE + 2) + 4096,
    max_depth=2,
    max_container_len=MAX_BLOCK_TRANSACTIONS,
)
_GENESIS_LIMITS = codec.Limits(
    max_bytes=MAX_VALIDATORS * (MAX_PUBLIC_KEY_SIZE + 3) + 8192,
    max_depth=2,
    max_container_len=MAX_VALIDATORS,
)


def _is_id(x: Any) -> bool:
    return type(x) is bytes and len(x) == ID_SIZE


def _is_ts(x: Any) -> bool:
    return type(x) is int and 0 <= x <= _MAX_TS


@dataclass(frozen=True, slots=True)
class Genesis:
    """Block 0: the consortium (validators in replica order, scheme, root of trust)."""

    chain_id: str
    scheme: Scheme
    validators: tuple[bytes, ...]
    root_of_trust: bytes
    timestamp_us: int
    id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.chain_id, str) or not is_known_scheme(self.scheme):
            raise ValueError("genesis needs a str chain_id and a known scheme")
        if type(self.validators) is not tuple or not 1 <= len(self.validators) <= MAX_VALIDATORS:
            raise ValueError("validators must be a tuple of 1..1024 keys")
        if any(type(v) is not bytes or not v for v in self.validators):
            raise ValueError("validator keys must be non-empty bytes")
        if len(set(self.validators)) != len(self.validators):
            raise ValueError("a validator is listed twice")
        if type(self.root_of_trust) is not bytes or not _is_ts(self.timestamp_us):
            raise ValueError("root_of_trust must be bytes and timestamp_us a 63-bit int")
        object.__setattr__(self, "scheme", Scheme(self.scheme))
        object.__setattr__(self, "id", sha256(codec.encode(self.to_fields())))

    @property
    def height(self) -> int:
        """Always 0."""
        return 0

    def to_fields(self) -> list[Any]:
        """``["medbench-genesis", chain_id, scheme, [validators], root_of_trust, timestamp_us]``."""
        return [
            GENESIS_TAG,
            self.chain_id,
            str(self.scheme),
            list(self.validators),
            self.root_of_trust,
            self.timestamp_us,
        ]

    def to_wire(self) -> bytes:
        """The canonical bytes (hashed into :attr:`id`)."""
        return codec.encode(self.to_fields())

    @classmethod
    def from_wire(cls, data: bytes) -> Genesis:
        """Decode hostile bytes; raises only :class:`LedgerDecodeError`."""
        try:
            f = codec.decode(data, _GENESIS_LIMITS)
        except codec.DecodeError as exc:
            raise LedgerDecodeError(f"malformed genesis: {exc}") from None
        if type(f) is not list or len(f) != 6 or f[0] != GENESIS_TAG or type(f[3]) is not list:
            raise LedgerDecodeError("a genesis is a 6-field array tagged medbench-genesis")
        if not all(type(v) is bytes and 0 < len(v) <= MAX_PUBLIC_KEY_SIZE for v in f[3]):
            raise LedgerDecodeError("malformed validator key")
        try:
            return cls(f[1], f[2], tuple(f[3]), f[4], f[5])
        except (ValueError, TypeError) as exc:
            raise LedgerDecodeError(f"malformed genesis: {exc}") from None


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """``(height, previous_id, blocker, merkle_root, timestamp_us)``; :attr:`id` is its hash."""

    height: int
    previous_id: bytes
    blocker: bytes
    merkle_root: bytes
    timestamp_us: int
    id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.height) is not int or not 1 <= self.height <= _MAX_TS:
            raise ValueError("height must be a positive int (genesis is height 0)")
        if not (_is_id(self.previous_id) and _is_id(self.merkle_root)):
            raise ValueError("previous_id and merkle_root must be 32 bytes")
        if type(self.blocker) is not bytes or not 0 < len(self.blocker) <= MAX_PUBLIC_KEY_SIZE:
            raise ValueError("blocker must be a raw public key")
        if not _is_ts(self.timestamp_us):
            raise ValueError("timestamp_us must be a non-negative 63-bit int")
        object.__setattr__(self, "id", sha256(codec.encode(self.to_fields())))

    def to_fields(self) -> list[Any]:
        """``[height, previous_id, blocker, merkle_root, timestamp_us]``."""
        return [self.height, self.previous_id, self.blocker, self.merkle_root, self.timestamp_us]

    @classmethod
    def from_fields(cls, f: Any) -> BlockHeader:
        """Parse untrusted fields; raises only :class:`LedgerDecodeError`."""
        if type(f) is not list or len(f) != 5:
            raise LedgerDecodeError("a block header is a 5-field array")
        try:
            return cls(*f)
        except (ValueError, TypeError) as exc:
            raise LedgerDecodeError(f"malformed block header: {exc}") from None


@dataclass(frozen=True, slots=True)
class Block:
    """A signed header plus the transaction IDs it lists (never the bodies)."""

    header: BlockHeader
    signature: bytes
    tx_ids: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if type(self.signature) is not bytes or len(self.signature) > 512:
            raise ValueError("signature must be bytes of at most 512")
        if type(self.tx_ids) is not tuple or len(self.tx_ids) > MAX_BLOCK_TRANSACTIONS:
            raise ValueError(f"tx_ids must be a tuple of at most {MAX_BLOCK_TRANSACTIONS} IDs")
        if not all(_is_id(t) for t in self.tx_ids):
            raise ValueError("every transaction ID is 32 bytes")

    @classmethod
    def make(
        cls,
        height: int,
        previous_id: bytes,
        blocker: SigningKey,
        tx_ids: Sequence[bytes],
        timestamp_us: int,
    ) -> Block:
        """Build and sign the block ``blocker`` proposes at ``height`` on top of ``previous_id``."""
        ids = tuple(tx_ids)
        header = BlockHeader(height, previous_id, blocker.public, merkle.root(ids), timestamp_us)
        return cls(header, blocker.sign(header.id), ids)

    @property
    def id(self) -> bytes:
        """The block ID: SHA-256 of the canonical header."""
        return self.header.id

    @property
    def height(self) -> int:
        """The header's height."""
        return self.header.height

    def signature_ok(self, scheme: str | Scheme) -> bool:
        """True if :attr:`signature` is the header's blocker's valid signature over the ID."""
        if not is_known_scheme(scheme) or len(self.signature) != SIGNATURE_SIZE[Scheme(scheme)]:
            return False
        return verify(scheme, self.header.blocker, self.header.id, self.signature)

    def root_ok(self) -> bool:
        """True if the header's Merkle root is the root of the listed IDs."""
        computed: bytes = merkle.root(self.tx_ids)
        return computed == self.header.merkle_root

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The RFC 9162 audit path of ``tx_ids[index]`` under the header's Merkle root."""
        return list(merkle.inclusion_proof(self.tx_ids, index))

    def to_fields(self) -> list[Any]:
        """``[header, signature, count, [ids]]``."""
        return [self.header.to_fields(), self.signature, len(self.tx_ids), list(self.tx_ids)]

    def to_wire(self) -> bytes:
        """The canonical bytes of the whole block (header, signature, count, IDs)."""
        return codec.encode(self.to_fields())

    @classmethod
    def from_fields(cls, f: Any) -> Block:
        """Parse untrusted fields; raises only :class:`LedgerDecodeError`."""
        if type(f) is not list or len(f) != 4:
            raise LedgerDecodeError("a block is a 4-field array")
        header_fields, sig, count, ids = f
        header = BlockHeader.from_fields(header_fields)
        if type(ids) is not list or type(count) is not int or count != len(ids):
            raise LedgerDecodeError("the block's ID count does not match its ID list")
        try:
            return cls(header, sig, tuple(ids))
        except (ValueError, TypeError) as exc:
            raise LedgerDecodeError(f"malformed block: {exc}") from None

    @classmethod
    def from_wire(cls, data: bytes) -> Block:
        """Decode hostile bytes; raises only :class:`LedgerDecodeError`."""
        try:
            f = codec.decode(data, _BLOCK_LIMITS)
        except codec.DecodeError as exc:
            raise LedgerDecodeError(f"malformed block: {exc}") from None
        return cls.from_fields(f)

    def __repr__(self) -> str:
        return (
            f"Block(h={self.height}, id={self.id[:4].hex()}, "
            f"prev={self.header.previous_id[:4].hex()}, blocker={self.header.blocker[:4].hex()}, "
            f"{len(self.tx_ids)} txs)"
        )


def verify_inclusion(
    header: BlockHeader, tx_id: bytes, index: int, count: int, proof: Sequence[bytes]
) -> bool:
    """True if ``tx_id`` is entry ``index`` of the ``count`` IDs under ``header``'s Merkle root.

    What an outside auditor checks against a published header; never raises.
    """
    return bool(merkle.verify_inclusion(tx_id, index, count, proof, header.merkle_root))
