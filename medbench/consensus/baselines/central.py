"""The central-server "Medical Blockchain" of docs/medical-chain.md §2 (Flask system): a relay, no
consensus.

Theory of operation
-------------------
One *central server* (node ``center``, 0 by default) and many *node servers*, one per medical
system; node servers do not know each other. Rules, from the seed paper's §A.2:

1. The central server creates the genesis block. Each block's ``hash`` is the SHA-256 of all its
   other fields (``index, timestamp, prev_hash, producer, txs``): :func:`block_digest`.
2. A node server registers (:class:`Register`) on its first tick; the central server answers with
   every cached block (:class:`Sync`); the node adds them in order after checking linkage.
3. A node server packs the transactions its users submitted into a block on its tip (at most one
   block in flight, at most one block per ``block_interval_us``) and sends it to the central
   server, which checks only linkage (index, ``prev_hash``, recomputed ``hash``), appends it and
   broadcasts it to every registered node, the producer included. A block that no longer links
   (another node's block got there first) is refused (:class:`Refuse`) and its transactions go
   back to the producer's queue.
4. A node server accepts from the central server, and only from it, any block or history whose
   linkage checks out, and commits it at once: there is no consensus, no signature and no vote.
   An update of an already stored block is accepted too ("complete the addition and update of all
   block information in order"), which is what lets a Byzantine centre rewrite history: the
   :class:`Rewrite` fault removes a transaction from a past block, re-hashes and re-links every
   later block and pushes the new history; every node accepts it, because linkage is all it can
   check (:func:`verify_linkage` passes on both histories). Nodes count it in a
   ``history_replaced`` note and re-commit the changed heights.
5. A crashed central server halts all progress: node servers cannot reach each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from medbench import codec
from medbench.consensus.baselines.common import (
    BaselineNode,
    Check,
    CommittedBlock,
    Counters,
    MalformedMessage,
    Rejected,
    Submit,
    TxCompleted,
    WireMessage,
    b32,
    check_param_names,
    seq_of,
    tx_entries,
    u64,
)
from medbench.hashing import sha256
from medbench.node import Committed, Note, Ready, Send

MAX_SYNC_BLOCKS = 1 << 16
MAX_PENDING = 1 << 20
MAX_BLOCK_TXS = 4096


def block_digest(index: int, timestamp: int, prev_hash: bytes, producer: int, txs: Any) -> bytes:
    """The hash of all other fields of a block (rule 1)."""
    digest: bytes = sha256(codec.encode([index, timestamp, prev_hash, producer, list(txs)]))
    return digest


@dataclass(frozen=True, slots=True)
class RelayBlock(WireMessage):
    """A block: node -> centre (a submission) or centre -> node (an "add block" command)."""

    index: int
    timestamp: int
    prev_hash: bytes
    producer: int
    txs: tuple[tuple[bytes, int, int], ...]
    hash: bytes

    KIND: ClassVar[str] = "relay_block"
    SCHEMA: ClassVar[tuple[Check, ...]] = (u64, u64, b32, u64, tx_entries, b32)

    def digest(self, counters: Counters) -> bytes:
        """Recompute the hash from the other fields (counted)."""
        counters.hash_block += 1
        return block_digest(self.index, self.timestamp, self.prev_hash, self.producer, self.txs)


def relay_block(index: int, timestamp: int, prev: bytes, producer: int, txs: Any) -> RelayBlock:
    """A block with its hash filled in."""
    txs = tuple(tuple(t) for t in txs)
    return RelayBlock(
        index, timestamp, prev, producer, txs, block_digest(index, timestamp, prev, producer, txs)
    )


def _block(v: Any) -> None:
    """A nested block inside a Sync."""
    if not isinstance(v, RelayBlock):
        if type(v) not in (tuple, list) or len(v) != 6:
            raise MalformedMessage("expected a block")
        v = RelayBlock(*v)
    v.check()


@dataclass(frozen=True, slots=True)
class Sync(WireMessage):
    """Centre -> node: the whole cached chain, genesis first."""

    blocks: tuple[RelayBlock, ...]

    KIND: ClassVar[str] = "sync"
    SCHEMA: ClassVar[tuple[Check, ...]] = (seq_of(_block, MAX_SYNC_BLOCKS),)

    def encode(self) -> bytes:
        """``[kind, [block fields, ...]]``."""
        return codec.encode([self.KIND, [list(b.fields()) for b in self.chain()]])

    def chain(self) -> list[RelayBlock]:
        """The blocks as :class:`RelayBlock` objects."""
        return [b if isinstance(b, RelayBlock) else RelayBlock(*b) for b in self.blocks]


@dataclass(frozen=True, slots=True)
class Register(WireMessage):
    """Node -> centre: please register me and send me every cached block."""

    node: int

    KIND: ClassVar[str] = "register"
    SCHEMA: ClassVar[tuple[Check, ...]] = (u64,)


@dataclass(frozen=True, slots=True)
class Refuse(WireMessage):
    """Centre -> node: your block ``index`` does not link to my chain."""

    index: int

    KIND: ClassVar[str] = "refuse"
    SCHEMA: ClassVar[tuple[Check, ...]] = (u64,)


@dataclass(frozen=True, slots=True)
class Rewrite(WireMessage):
    """Local fault (centre only): drop ``tx_id`` from block ``index`` and re-link what follows."""

    index: int
    tx_id: bytes

    KIND: ClassVar[str] = "rewrite"
    SCHEMA: ClassVar[tuple[Check, ...]] = (u64, b32)
    LOCAL: ClassVar[bool] = True


def verify_linkage(chain: list[RelayBlock]) -> bool:
    """Everything a node can check: every hash recomputes and every block names its predecessor."""
    for i, b in enumerate(chain):
        if b.index != i or b.hash != block_digest(
            b.index, b.timestamp, b.prev_hash, b.producer, b.txs
        ):
            return False
        if i and b.prev_hash != chain[i - 1].hash:
            return False
    return True


def _check_chain(chain: list[RelayBlock]) -> tuple[int, str | None]:
    """(blocks after genesis, the first block whose index, hash or link is wrong, or None)."""
    for i, b in enumerate(chain):
        if b.index != i:
            return max(0, i - 1), f"block {i} carries index {b.index}"
        if b.hash != block_digest(b.index, b.timestamp, b.prev_hash, b.producer, b.txs):
            return max(0, i - 1), f"block {i}: hash does not recompute"
        if i and b.prev_hash != chain[i - 1].hash:
            return i - 1, f"block {i} does not name block {i - 1} as its predecessor"
    return max(0, len(chain) - 1), None


@dataclass(frozen=True, slots=True)
class CentralParams:
    """Parameters of the central-relay system."""

    center: int = 0
    block_interval_us: int = 1_000_000
    max_block_txs: int = MAX_BLOCK_TXS

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> CentralParams:
        """Build from a plain dict; unknown keys are a caller error."""
        check_param_names(cls, params, "central-relay")
        return cls(**params)


class CentralServer(BaselineNode):
    """The central server: registry, block cache and broadcaster (rules 1-3)."""

    HANDLERS: ClassVar[dict[type, str]] = {
        Register: "handle_register",
        RelayBlock: "handle_block",
        Rewrite: "handle_rewrite",
    }

    def __init__(self, node_id: int, n: int, params: CentralParams) -> None:
        super().__init__(node_id, n)
        self.params = params
        self.chain: list[RelayBlock] = [relay_block(0, 0, bytes(32), node_id, ())]
        self.counters.hash_block += 1
        self.registered: list[int] = []

    def handle_register(self, src: int, msg: Register, ready: Ready) -> None:
        """Register ``src`` and send it the cached chain."""
        if msg.node != src:
            raise Rejected("register_other_node", msg.node)
        if src not in self.registered:
            self.registered.append(src)
        ready.messages.append(Send((src,), Sync(tuple(self.chain))))

    def handle_block(self, src: int, msg: RelayBlock, ready: Ready) -> None:
        """Append a linking block and broadcast it; refuse one that does not link."""
        if src not in self.registered:
            raise Rejected("not_registered", src)
        if msg.producer != src:
            raise Rejected("producer_mismatch", msg.producer)
        if len(msg.txs) > self.params.max_block_txs:
            raise Rejected("block_too_large")
        if msg.digest(self.counters) != msg.hash:
            raise Rejected("bad_hash")
        if msg.index != len(self.chain) or msg.prev_hash != self.chain[-1].hash:
            ready.messages.append(Send((src,), Refuse(msg.index)))
            raise Rejected("does_not_link", msg.index)
        self.chain.append(msg)
        self.counters.blocks_accepted += 1
        self.verify_client_signatures(msg.txs)
        ready.messages.append(Send(tuple(self.registered), msg))

    def handle_rewrite(self, src: int, msg: Rewrite, ready: Ready) -> None:
        """Byzantine fault: rewrite history from ``index`` and push it to every node (rule 4)."""
        if not 1 <= msg.index < len(self.chain):
            raise Rejected("no_such_block", msg.index)
        new = self.chain[: msg.index]
        for old in self.chain[msg.index :]:
            txs = tuple(t for t in old.txs if t[0] != msg.tx_id)
            new.append(relay_block(old.index, old.timestamp, new[-1].hash, old.producer, txs))
            self.counters.hash_block += 1
        self.chain = new
        ready.notes.append(Note("byzantine_rewrite", msg.index))
        if self.registered:
            ready.messages.append(Send(tuple(self.registered), Sync(tuple(self.chain))))

    def stored_blocks(self) -> list[tuple[Any, bool]]:
        """The cached chain (genesis excluded): the centre's word is final."""
        return [(b, True) for b in self.chain[1:]]

    def verify_chain(self) -> tuple[int, str | None]:
        """Linkage and recomputed hashes of the cached chain."""
        return _check_chain(self.chain)

    def stats(self) -> dict[str, int]:
        """Counters plus the cached chain length."""
        out = super().stats()
        out.update(height=len(self.chain) - 1, registered=len(self.registered))
        return out


class NodeServer(BaselineNode):
    """A node server of one medical system (rules 2-4)."""

    HANDLERS: ClassVar[dict[type, str]] = {
        Submit: "handle_submit",
        Sync: "handle_sync",
        RelayBlock: "handle_block",
        Refuse: "handle_refuse",
    }

    def __init__(self, node_id: int, n: int, params: CentralParams) -> None:
        super().__init__(node_id, n)
        self.params = params
        self.center = params.center
        self.chain: list[RelayBlock] = []
        self.pending: dict[bytes, tuple[bytes, int, int]] = {}
        self.inflight: RelayBlock | None = None
        self.next_block_at = 0
        self.registered = False
        self.completed_txs: set[bytes] = set()
        self.replaced = 0

    def stored_blocks(self) -> list[tuple[Any, bool]]:
        """The chain as accepted from the centre (genesis excluded); all of it is final."""
        return [(b, True) for b in self.chain[1:]]

    def verify_chain(self) -> tuple[int, str | None]:
        """Linkage and recomputed hashes of the stored chain (all a node server can check)."""
        return _check_chain(self.chain)

    # --- timers

    def next_deadline(self) -> int | None:
        """First tick (to register), then the next block time while transactions wait."""
        if not self.registered:
            return 0
        if self.pending and self.inflight is None and self.chain:
            return max(self.next_block_at, self.now)
        return None

    def on_tick(self, ready: Ready) -> None:
        """Register once; then send one block of pending transactions per interval."""
        if not self.registered:
            self.registered = True
            ready.messages.append(Send((self.center,), Register(self.node_id)))
            return
        if not (self.pending and self.inflight is None and self.chain):
            return
        if self.now < self.next_block_at:
            return
        txs = list(self.pending.values())[: self.params.max_block_txs]
        tip = self.chain[-1]
        self.counters.hash_block += 1
        block = relay_block(
            len(self.chain), max(self.now, tip.timestamp), tip.hash, self.node_id, txs
        )
        for t in txs:
            del self.pending[t[0]]
        self.inflight = block
        self.next_block_at = self.now + self.params.block_interval_us
        self.counters.blocks_produced += 1
        ready.messages.append(Send((self.center,), block))

    # --- handlers

    def handle_submit(self, src: int, msg: Submit, ready: Ready) -> None:
        """A user of this medical system adds a record."""
        if msg.tx_id in self.pending or msg.tx_id in self.completed_txs:
            return
        if len(self.pending) >= MAX_PENDING:
            raise Rejected("queue_full")
        self.sign_client_tx()
        self.pending[msg.tx_id] = (msg.tx_id, msg.size, msg.submit_time)

    def _from_center(self, src: int) -> None:
        if src != self.center:
            raise Rejected("not_from_center", src)

    def handle_block(self, src: int, msg: RelayBlock, ready: Ready) -> None:
        """The centre's "add block": append if it links to our tip."""
        self._from_center(src)
        if msg.digest(self.counters) != msg.hash:
            raise Rejected("bad_hash")
        if not self.chain or msg.index > len(self.chain):
            ready.messages.append(Send((self.center,), Register(self.node_id)))  # resync
            raise Rejected("gap", msg.index)
        if msg.index < len(self.chain):
            if self.chain[msg.index] == msg:
                raise Rejected("duplicate_block", msg.index)
            if msg.index == 0 or msg.prev_hash != self.chain[msg.index - 1].hash:
                raise Rejected("does_not_link", msg.index)
            self._replace([*self.chain[: msg.index], msg], ready)
            return
        if msg.prev_hash != self.chain[-1].hash:
            raise Rejected("does_not_link", msg.index)
        self._append(msg, ready)

    def handle_sync(self, src: int, msg: Sync, ready: Ready) -> None:
        """The centre's cached chain: accept it if its linkage checks out (all a node can check)."""
        self._from_center(src)
        chain = msg.chain()
        self.counters.hash_block += len(chain)
        if not chain or not verify_linkage(chain):
            raise Rejected("bad_linkage")
        self._replace(chain, ready)

    def handle_refuse(self, src: int, msg: Refuse, ready: Ready) -> None:
        """Our block did not link: queue its transactions again."""
        self._from_center(src)
        if self.inflight is None or self.inflight.index != msg.index:
            raise Rejected("unexpected_refuse", msg.index)
        requeued = {t[0]: tuple(t) for t in self.inflight.txs}
        requeued.update(self.pending)
        self.pending = requeued  # type: ignore[assignment]
        self.inflight = None

    # --- chain updates

    def _append(self, block: RelayBlock, ready: Ready) -> None:
        self.chain.append(block)
        if block.index == 0:
            return  # genesis: made by the centre, nothing to commit
        self.counters.blocks_accepted += 1
        self.verify_client_signatures(block.txs)
        ready.committed.append(
            Committed(
                block.index, CommittedBlock(block.index, block.hash, block.producer, block.txs)
            )
        )
        if self.inflight is not None and self.inflight.hash == block.hash:
            self.inflight = None
        for t in block.txs:
            if block.producer == self.node_id and t[0] not in self.completed_txs:
                self.completed_txs.add(t[0])
                ready.completed.append(TxCompleted(t[0], t[2]))

    def _replace(self, chain: list[RelayBlock], ready: Ready) -> None:
        """Adopt ``chain``: keep the common prefix, (re)commit the rest."""
        same = 0
        while same < min(len(chain), len(self.chain)) and chain[same] == self.chain[same]:
            same += 1
        if same < len(self.chain):
            self.replaced += len(self.chain) - same
            ready.notes.append(Note("history_replaced", (same, len(self.chain) - same)))
        del self.chain[same:]
        for block in chain[same:]:
            self._append(block, ready)

    def stats(self) -> dict[str, int]:
        """Counters plus chain length and replaced blocks."""
        out = super().stats()
        out.update(
            height=len(self.chain) - 1,
            replaced_blocks=self.replaced,
            committed_blocks=max(0, len(self.chain) - 1),
            committed_txs=sum(len(b.txs) for b in self.chain),
            rewards_paid=0,
            fees_paid=0,
        )
        return out
