"""The Medical Chain node: a PBFT replica, its blocker duty and its SQLite store
(docs/medical-chain.md §1.5).

Theory of operation
-------------------
:class:`MedicalChainNode` has the node interface (``step(src, msg)``, ``tick(now)`` -> ``Ready``)
and wraps one :class:`~medbench.consensus.pbft.Replica` whose validator and service are an
:class:`~medbench.medchain.validation.AccessValidator` and whose block format is a
:class:`~medbench.medchain.block_format.LedgerBlockFormat`. For every ``Ready`` of the replica, in
this order:

1. **persist before send**: every ``Ready.persist`` record goes to the consensus log of the
   node's :class:`~medbench.store.NodeStore` (:func:`~medbench.consensus.pbft.encode_record`, one
   SQLite commit per step), stable checkpoints to its checkpoint table — only then are the
   messages handed back to the driver;
2. **blocker duty**: a BLOCK this replica sends goes out with a :class:`BlockSignature` first
   (the ledger signature over the block ID; FIFO links deliver it before the BLOCK);
3. **ledger**: every block the chain gained is written with the bodies of its transactions in
   one commit (:meth:`~medbench.store.LedgerStore.append`), in height order. In blocker mode a
   block is stored once its signature is known (a block caught up by state transfer waits for a
   :class:`SignatureWanted` answer: every replica that prepared it holds the signature). In
   integrated mode a block is stored at once, signed or not, and its signature is filled in
   (:meth:`~medbench.store.LedgerStore.set_signature`, only if it verifies) when its
   :class:`BlockSignature` arrives — or is asked for again with :class:`SignatureWanted`, at most
   :data:`WANT_LIMIT` blocks per view-change timeout. The one validator that signs a height
   (docs/medical-chain.md §1.5) may be crashed or slow; waiting for it stopped block storage on
   every node. An unsigned stored block is still one this node built from batches PBFT committed
   (no path stores a block a peer sent), and the signed block above it vouches for it through the
   hash chain (:func:`medbench.ledger.verify_chain`).

In blocker mode a BLOCK (at the primary) or a PRE-PREPARE carrying a block (at a backup) is
admitted only when the block's ledger signature by the expected blocker is known and verifies;
until then it is held (bounded, for one view-change timeout) and then dropped with a counted
reason. A block signed by anybody else is therefore never prepared by an honest node: the block
stalls, the view changes and the next blocker builds it.

:meth:`MedicalChainNode.restart` rebuilds a crashed node from its store alone: the consensus log
is decoded and replayed by :meth:`Replica.recover` (which re-executes the batches, so the access
state and the chain come back), stored block signatures are reloaded, and the replica's FETCH asks
peers for what it missed (state transfer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from medbench import codec
from medbench.consensus.pbft import (
    BlockMode,
    Config,
    Keyring,
    Replica,
    decode_record,
    encode_record,
)
from medbench.consensus.pbft.log import StableRecord
from medbench.consensus.pbft.messages import Block as BlockMessage
from medbench.consensus.pbft.messages import MessageError, PrePrepare
from medbench.consensus.pbft.messages import Request as RequestMessage
from medbench.crypto.keys import SigningKey
from medbench.ledger.block import Block, Genesis
from medbench.ledger.chain import ChainReport, RepairResult, repair, verify_chain
from medbench.ledger.transaction import SignerPolicy
from medbench.medchain.block_format import (
    BlockSignature,
    LedgerBlockFormat,
    SignatureWanted,
    primary_for,
)
from medbench.medchain.validation import AccessValidator
from medbench.node import Note, Ready, Send
from medbench.store.errors import LogCorrupted
from medbench.store.ledger_store import LedgerStore
from medbench.store.node_store import NodeStore, Synchronous

HOLD_LIMIT = 64
"""Most messages a node holds while waiting for a block signature."""
WANT_LIMIT = 8
"""Most stored-but-unsigned blocks whose signature a node asks for per view-change timeout."""


@dataclass(frozen=True)
class NodeSetup:
    """Everything needed to (re)build node ``node_id`` from scratch or from its store."""

    node_id: int
    config: Config
    keyring: Keyring
    genesis: Genesis
    key: SigningKey
    store_path: Path
    make_access: Callable[[LedgerBlockFormat], AccessValidator]
    wrap: Callable[[Replica], Any] | None = (
        None  # a fault wrapper (medbench.consensus.pbft.byzantine) or None
    )
    synchronous: Synchronous = "FULL"  # SQLite durability: FULL = on disk before any send


def _merge(into: Ready, other: Ready) -> None:
    into.messages.extend(other.messages)
    into.persist.extend(other.persist)
    into.committed.extend(other.committed)
    into.completed.extend(other.completed)
    into.notes.extend(other.notes)


class MedicalChainNode:
    """One hospital's validator node (see the module docstring)."""

    def __init__(self, setup: NodeSetup, *, now: int = 0, recover: bool = False) -> None:
        self.setup = setup
        self.node_id = setup.node_id
        self.store = NodeStore(setup.store_path, synchronous=setup.synchronous)
        self.ledger = LedgerStore(self.store)
        self.format = LedgerBlockFormat(setup.genesis, setup.key)
        self.access = setup.make_access(self.format)
        self.rejections: Counter[str] = Counter()
        self.held: list[tuple[int, Any, int]] = []
        self.now = now
        self._wanted_at = 0
        self.first = Ready()
        cfg = setup.config
        if self.store.get_block(0) is None:
            self.ledger.append_genesis(setup.genesis)
        stored = self.ledger.blocks()
        self.stored_height = len(stored)
        # block ID -> height of the stored blocks still awaiting their signature (integrated mode)
        self.unsigned: dict[bytes, int] = {b.id: b.height for b in stored if not b.signature}
        if recover:
            for b in stored:
                if b.signature:
                    self.format.add_signature(b.id, b.signature)
            # a log whose record changed on disk, or does not decode, is refused: the node does
            # not start (a lost or altered vote could make it vote twice; defect 2 of issue 13)
            records = []
            for entry in self.store.read_log():  # raises LogCorrupted on a digest mismatch
                try:
                    records.append(decode_record(entry.record))
                except MessageError as exc:
                    raise LogCorrupted([(entry.index, entry.sequence)]) from exc
            self.access.quiet = True  # drafts of replayed batches were submitted before the crash
            self.replica, ready = Replica.recover(
                self.node_id, cfg, setup.keyring, records, self.access, self.execute,
                self.format, now=now,
            )  # fmt: skip
            self.access.quiet = False
            for tx_id in [t for b in stored for t in b.tx_ids]:
                self.access.accepted.pop(tx_id, None)
            self.first = self._drive(ready)
        else:
            self.replica = Replica(
                self.node_id, cfg, setup.keyring, self.access, self.execute, self.format
            )
        self.core = setup.wrap(self.replica) if setup.wrap is not None else self.replica

    def execute(self, request: RequestMessage, agreed_time_us: int) -> bytes:
        """PBFT's service hook: the access service at the batch's agreed time, made absolute
        (PBFT time counts from the genesis timestamp, like the node's clock in :meth:`tick`)."""
        return self.access.service(request, self.setup.genesis.timestamp_us + agreed_time_us)

    @classmethod
    def restart(cls, setup: NodeSetup, now: int) -> MedicalChainNode:
        """Rebuild a crashed node from its store; its first output is in :attr:`first`."""
        return cls(setup, now=now, recover=True)

    @property
    def inner(self) -> Replica:
        """The PBFT replica (what test harnesses inspect)."""
        return self.replica

    def verify(self, policy: SignerPolicy | None = None) -> ChainReport:
        """:func:`medbench.ledger.verify_chain` over this node's SQLite store."""
        blocks = self.ledger.blocks()
        return verify_chain(
            self.setup.genesis, blocks, self.ledger.bodies, primary=self._primaries(blocks),
            policy=policy,
        )  # fmt: skip

    def repair(
        self, peers: Sequence[MedicalChainNode], policy: SignerPolicy | None = None
    ) -> RepairResult:
        """Restore missing or altered bodies from peers' stores (:func:`medbench.ledger.repair`)."""
        blocks = self.ledger.blocks()
        return repair(
            self.setup.genesis, blocks, self.ledger, [p.ledger.bodies for p in peers],
            primary=self._primaries(blocks), policy=policy,
        )  # fmt: skip

    def _primaries(self, blocks: Sequence[Block]) -> Callable[[int], bytes]:
        genesis = self.setup.genesis

        def primary(height: int) -> bytes:
            return primary_for(genesis, blocks[height - 1].header) or b""

        return primary

    def close(self) -> None:
        """Close the store (a crash: nothing in memory survives)."""
        self.store.close()

    # --- the node interface ---------------------------------------------------------------------
    def step(self, src: int, msg: Any) -> Ready:
        """Handle ``msg`` from ``src``; never raises on bad input from a peer."""
        if isinstance(msg, BlockSignature):
            self.format.add_signature(msg.block_id, msg.signature)
            ready = Ready()
            self._retry_held(ready)
            self._persist_blocks(ready)
            self._fill_signature(ready, msg.block_id)
            return ready
        if isinstance(msg, SignatureWanted):
            sig = self.format.known_signature(msg.block_id)
            ready = Ready()
            if sig is not None and 0 <= src < self.replica.n:
                ready.messages.append(Send((src,), BlockSignature(msg.block_id, sig)))
            return ready
        if not self._admissible(src, msg):
            ready = Ready()
            if len(self.held) < HOLD_LIMIT:
                self.held.append((src, msg, self.now))
            else:
                self._refuse(ready, msg, "hold queue full")
            return ready
        return self._drive(self.core.step(src, msg))

    def tick(self, now: int) -> Ready:
        """Advance the clock: the replica's timers, held messages, missing block signatures."""
        self.now = max(self.now, now)
        self.access.clock_us = self.setup.genesis.timestamp_us + self.now  # PBFT time is relative
        ready = self._drive(self.core.tick(now))
        limit = self.setup.config.view_change_timeout_us
        for item in [h for h in self.held if now - h[2] >= limit]:
            self.held.remove(item)
            self._refuse(ready, item[1], "block signature missing or invalid")
        self._retry_held(ready)
        self._persist_blocks(ready)
        if now - self._wanted_at >= limit:
            chain = self.replica.chain
            wanted = (
                [chain.ids[self.stored_height + 1]] if self.stored_height + 1 < chain.length else []
            )
            # the oldest stored-but-unsigned blocks (dict order is height order), bounded per round
            wanted.extend(islice(self.unsigned, WANT_LIMIT))
            if wanted:
                self._wanted_at = now
            for block_id in wanted:
                ready.messages.append(Send(self.replica.others, SignatureWanted(block_id)))
        return ready

    # --- admission of blocks (docs/medical-chain.md §1.5: replicas check the expected blocker
    # signed) ---------
    def _admissible(self, src: int, msg: Any) -> bool:
        """False when ``msg`` must wait for a block's ledger signature; True when the replica may
        judge it now. Only an authentic message from the right sender, whose blocks the replica
        would admit (blocker, time, authenticator), ever waits: anything else goes straight to the
        replica, which rejects it and counts why, so a forged message neither crashes the node
        (defect 4 of issue 13: a header built from a hostile timestamp raised out of ``step``)
        nor takes a place in the bounded hold queue."""
        if self.setup.config.block_mode is not BlockMode.BLOCKER:
            return True
        replica = self.replica
        if isinstance(msg, BlockMessage):
            if src != msg.blocker:
                return True
            blocks: tuple[BlockMessage, ...] = (msg,)
        elif isinstance(msg, PrePrepare):
            blocks = tuple(i for i in msg.batch if isinstance(i, BlockMessage))
            if not blocks:
                return True
            if src != msg.replica or not replica.keyring.verify(src, msg.body(), msg.auth):
                return True
        else:
            return True
        for b in blocks:
            if replica.check_block(b) is not None:
                return True
            header = self.format.header_for(b.height, b.prev_id, b.blocker, b.tx_ids, b.timestamp)
            if header is None or self.format.signature_for(header) is None:
                return False
        return True

    def _retry_held(self, ready: Ready) -> None:
        held, self.held = self.held, []
        for src, msg, since in held:
            if self._admissible(src, msg):
                _merge(ready, self._drive(self.core.step(src, msg)))
            else:
                self.held.append((src, msg, since))

    def _refuse(self, ready: Ready, msg: Any, reason: str) -> None:
        self.rejections[reason] += 1
        ready.notes.append(Note("reject", (str(getattr(msg, "kind", "?")), reason)))

    # --- the driver's duties --------------------------------------------------------------------
    def _drive(self, ready: Ready) -> Ready:
        """Persist, then sign blocks, then store the ledger; return what may now be sent."""
        if ready.persist:
            entries = []
            for rec in ready.persist:
                data = encode_record(rec)
                entries.append((getattr(rec, "sequence", 0), getattr(rec, "view", 0), data))
                if isinstance(rec, StableRecord):
                    cert = codec.encode([c.encode() for c in rec.proof])
                    self.store.save_checkpoint(rec.sequence, rec.state_digest, cert)
            self.store.append_log_batch(entries)
        out: list[Send] = []
        for send in ready.messages:
            m = send.msg
            if isinstance(m, BlockMessage) and m.blocker == self.node_id:
                header = self.format.header_for(
                    m.height, m.prev_id, m.blocker, m.tx_ids, m.timestamp
                )
                sig = None if header is None else self.format.sign(header)
                if header is not None and sig is not None:
                    out.append(Send(self.replica.others, BlockSignature(header.id, sig)))
            out.append(send)
        if self.setup.config.block_mode is BlockMode.INTEGRATED:
            for c in ready.committed:
                for b in c.payload.blocks:
                    if self.format.key is not None and b.header.blocker == self.format.key.public:
                        out.append(Send(self.replica.others, BlockSignature(b.id, b.signature)))
        ready.messages = out
        if ready.committed:
            self._persist_blocks(ready)
        return ready

    def _persist_blocks(self, ready: Ready) -> None:
        """Store the blocks the local chain gained, in height order (see the module docstring).

        Every block comes from ``replica.chain``, which this replica built itself from batches
        PBFT committed (:meth:`LedgerBlockFormat.build`); nothing a peer sends is stored as a
        block, so an empty signature never lets a foreign block in.
        """
        chain = self.replica.chain
        integrated = self.setup.config.block_mode is BlockMode.INTEGRATED
        while self.stored_height + 1 < chain.length:
            h = self.stored_height + 1
            block = self.format.complete(chain.blocks[h])
            if not block.signature and not integrated:
                return  # blocker mode: f+1 honest replicas that prepared it hold the signature
            chain.blocks[h] = block
            txs = [self.access.accepted.pop(t) for t in block.tx_ids if t in self.access.accepted]
            self.ledger.append(block, txs)
            self.stored_height = h
            if not block.signature:
                self.unsigned[block.id] = h
            ready.notes.append(Note("block-stored", h))

    def _fill_signature(self, ready: Ready, block_id: bytes) -> None:
        """Fill in the signature of the stored unsigned block ``block_id`` if one verifies now."""
        h = self.unsigned.get(block_id)
        if h is None:
            return
        stored = self.ledger.block(h)
        if stored is None or stored.id != block_id:
            return
        sig = self.format.signature_for(stored.header)  # checked against the header's blocker
        if sig is None:
            return
        if stored.signature or self.ledger.set_signature(h, sig, self.setup.genesis.scheme):
            del self.unsigned[block_id]
            chain = self.replica.chain
            if h < chain.length and chain.ids[h] == block_id:
                chain.blocks[h] = Block(stored.header, sig, stored.tx_ids)
            ready.notes.append(Note("block-signed", h))
