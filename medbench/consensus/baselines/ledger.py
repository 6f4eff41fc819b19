"""The full-node half shared by the blockchain baselines: mempool, block tree, commits.

Theory of operation
-------------------
PoW, PoI, PoA and DPoS nodes all keep transactions flooded by clients in a *mempool*, pack the
ones not yet on their main chain into blocks (arrival order, within a per-block budget), keep
every valid block in a :class:`~medbench.consensus.baselines.chain.BlockTree`, and hand final
blocks to the driver in height order as :class:`~medbench.node.Committed` entries whose payload is
a :class:`~medbench.consensus.baselines.common.CommittedBlock`. What *final* means is the
protocol's: ``confirmations`` deep for the Nakamoto-style chains, an auditor quorum for MDSM.
A transaction submitted at this node is reported once in ``Ready.completed`` when it is final.

Subclasses implement block production and validation; this class does the bookkeeping.
"""

from __future__ import annotations

from typing import Any, ClassVar

from medbench.consensus.baselines.chain import BlockTree, DepthCommitter, Entry, HeadChange
from medbench.consensus.baselines.common import (
    BaselineNode,
    CommittedBlock,
    Rejected,
    Submit,
    TxCompleted,
    TxGossip,
    gossip_tx,
    tx_root,
)
from medbench.hashing import sha256
from medbench.merkle import root as merkle_root
from medbench.node import Committed, Note, Ready

MAX_MEMPOOL = 1 << 20
TxRef = tuple[bytes, int, int]


class LedgerNode(BaselineNode):
    """Mempool + block tree + commit bookkeeping for a block-producing baseline node."""

    GENESIS_LABEL: ClassVar[bytes] = b"medbench-genesis"

    def __init__(self, node_id: int, n: int, confirmations: int) -> None:
        super().__init__(node_id, n)
        self.genesis_id = sha256(self.GENESIS_LABEL)
        self.tree = BlockTree(self.genesis_id, None)
        self.committer = DepthCommitter(confirmations)
        self.mempool: dict[bytes, TxRef] = {}
        self.chain_txs: set[bytes] = set()
        self.local_txs: set[bytes] = set()
        self.completed_txs: set[bytes] = set()

    # --- hooks

    def tx_cost(self, tx: TxRef) -> int:
        """Budget units one transaction uses in a block (default: 1)."""
        return 1

    def block_budget(self) -> int:
        """Budget units per block."""
        return 1 << 16

    def producer_of(self, block: Any) -> int:
        """Node ID that produced ``block``."""
        raise NotImplementedError

    def block_id_of(self, block: Any) -> bytes:
        """Recompute ``block``'s ID from its contents, uncounted (for :meth:`verify_chain`)."""
        raise NotImplementedError

    # --- transactions

    def handle_submit(self, src: int, msg: Submit, ready: Ready) -> None:
        """A local client's transaction (signed by the client): keep it and flood it."""
        if msg.tx_id not in self.local_txs:
            self.sign_client_tx()
        self.local_txs.add(msg.tx_id)
        if self.add_tx((msg.tx_id, msg.size, msg.submit_time)):
            gossip_tx(self, TxGossip(msg.tx_id, msg.size, msg.submit_time), ready)

    def handle_tx(self, src: int, msg: TxGossip, ready: Ready) -> None:
        """A peer's transaction: keep it (the sender already flooded it to everyone)."""
        self.add_tx((msg.tx_id, msg.size, msg.submit_time))

    def add_tx(self, tx: TxRef) -> bool:
        """Add to the mempool unless known or final; refuse when the mempool is full."""
        if tx[0] in self.mempool or tx[0] in self.completed_txs:
            return False
        if len(self.mempool) >= MAX_MEMPOOL:
            raise Rejected("mempool_full")
        self.mempool[tx[0]] = (tx[0], tx[1], tx[2])
        return True

    def learn_block_txs(self, txs: Any) -> None:
        """Transactions first heard of inside a block join the mempool (best effort)."""
        for tx in txs:
            if tx[0] not in self.mempool and tx[0] not in self.completed_txs:
                if len(self.mempool) >= MAX_MEMPOOL:
                    return
                self.mempool[tx[0]] = (tx[0], tx[1], tx[2])

    def select_txs(self) -> tuple[TxRef, ...]:
        """Mempool transactions not on the main chain, in arrival order, within the budget."""
        chosen: list[TxRef] = []
        used, budget = 0, self.block_budget()
        for tx_id, tx in self.mempool.items():
            if tx_id in self.chain_txs:
                continue
            cost = self.tx_cost(tx)
            if used + cost > budget:
                break
            used += cost
            chosen.append(tx)
        return tuple(chosen)

    # --- blocks

    def check_block_txs(self, txs: Any, root: bytes) -> None:
        """A block's transactions: none repeated, within the budget, Merkle root matching."""
        if len({t[0] for t in txs}) != len(txs):
            raise Rejected("repeated_transaction")
        if sum(self.tx_cost(t) for t in txs) > self.block_budget():
            raise Rejected("over_block_budget")
        if tx_root(txs, self.counters) != root:
            raise Rejected("bad_merkle_root")

    def after_add(self, added: list[Entry], ready: Ready) -> HeadChange | None:
        """Fork choice, transaction index, commits and notes after blocks were connected."""
        if not added:
            return None
        self.counters.blocks_accepted += len(added)
        for entry in added:  # a block accepted: its transactions' client signatures checked
            self.verify_client_signatures(entry.block.txs)
        change = self.tree.choose_head(added)
        for bid in change.dropped:
            self.chain_txs.difference_update(t[0] for t in self.tree.entries[bid].block.txs)
        for bid in change.added:
            self.chain_txs.update(t[0] for t in self.tree.entries[bid].block.txs)
        if change.dropped:
            ready.notes.append(Note("reorg", len(change.dropped)))
        self.advance_commits(ready)
        return change

    def advance_commits(self, ready: Ready) -> None:
        """Commit what the finality rule now allows (default: depth-k on the main chain)."""
        new, reverted = self.committer.advance(self.tree)
        if reverted:
            ready.notes.append(Note("commit_reverted", reverted))
        for entry in new:
            self.commit(entry, ready)

    def commit(self, entry: Entry, ready: Ready) -> None:
        """Report ``entry`` as final and complete the local transactions it carries."""
        block = entry.block
        ready.committed.append(
            Committed(
                entry.height,
                CommittedBlock(
                    entry.height, entry.block_id, self.producer_of(block), tuple(block.txs)
                ),
            )
        )
        for tx in block.txs:
            self.mempool.pop(tx[0], None)
            if tx[0] in self.local_txs and tx[0] not in self.completed_txs:
                self.completed_txs.add(tx[0])
                ready.completed.append(TxCompleted(tx[0], tx[2]))

    def stored_blocks(self) -> list[tuple[Any, bool]]:
        """Every connected block of the tree (orphans included), with whether it is final."""
        final = set(self.committer.committed)
        return [
            (e.block, bid in final) for bid, e in self.tree.entries.items() if e.block is not None
        ]

    def verify_chain(self) -> tuple[int, str | None]:
        """Walk the final chain: each block names its predecessor and recomputes to its IDs."""
        prev = self.genesis_id
        for h, bid in enumerate(self.committer.committed, start=1):
            block = self.tree.entries[bid].block
            if block.parent != prev:
                return h - 1, f"block {h} does not name block {h - 1} as its parent"
            if merkle_root([t[0] for t in block.txs]) != block.tx_root:
                return h - 1, f"block {h}: Merkle root does not match its transactions"
            if self.block_id_of(block) != bid:
                return h - 1, f"block {h}: ID does not match its header"
            prev = bid
        return len(self.committer.committed), None

    def committed_blocks(self) -> list[Any]:
        """Block objects committed so far, height 1 first."""
        return [self.tree.entries[b].block for b in self.committer.committed]

    @staticmethod
    def distinct_txs(blocks: list[Any]) -> list[TxRef]:
        """Transactions of ``blocks`` at their first inclusion."""
        seen: set[bytes] = set()
        out: list[TxRef] = []
        for b in blocks:
            for tx in b.txs:
                if tx[0] not in seen:
                    seen.add(tx[0])
                    out.append(tx)
        return out

    def stats(self) -> dict[str, int]:
        """Counters plus chain figures: height, orphans, reorgs, committed blocks/transactions."""
        out = super().stats()
        committed = self.committed_blocks()
        out.update(
            height=len(self.tree.main) - 1,
            orphans=self.tree.orphans(),
            known_blocks=len(self.tree.entries) - 1,
            reorgs=self.tree.reorgs,
            max_reorg_depth=self.tree.max_reorg_depth,
            commits_reverted=self.committer.reverted,
            committed_blocks=len(committed),
            committed_txs=len(self.distinct_txs(committed)),
            rewards_paid=0,
            fees_paid=0,
        )
        return out


def tx_gas(size: int) -> int:
    """Homestead intrinsic gas of a transaction carrying ``size`` bytes of data."""
    return 21_000 + 68 * size


class GasLedgerNode(LedgerNode):
    """A ledger whose blocks are bounded by Ethereum gas (PoW of MedRec, Clique of MedRec 2.0)."""

    gas_limit: int = 4_700_000

    def tx_cost(self, tx: TxRef) -> int:
        """Gas of a transaction."""
        return tx_gas(tx[1])

    def block_budget(self) -> int:
        """The block gas limit."""
        return self.gas_limit
