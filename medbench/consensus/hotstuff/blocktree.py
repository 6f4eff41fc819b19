"""The tree of blocks a HotStuff replica knows, its committed chain, and the commit rule.

Theory of operation
-------------------
Blocks form a tree rooted at genesis (PODC 2019 §4.2: each node points to its parent). A replica
adds a block only once its parent is known, so every stored block chains down to genesis. The
*ledger* is the committed branch: ``ledger[h]`` is the block committed at height ``h``.

**Three-chain commit rule** (§5, Algorithm 3 ``update``): for a QC on ``b''`` with
``b' = b''.justify.node`` and ``b = b'.justify.node``, if ``b'' ← b' ← b`` are direct parents
*and* their views are consecutive (``b''.view = b'.view + 1 = b.view + 2``; the paper's dummy
nodes make "direct parent" mean "consecutive view", we check both), then ``b`` and all its
uncommitted ancestors commit (``onCommit``), in height order. :meth:`BlockTree.three_chain`
answers ``b`` for a QC. Because the replica admits only blocks with ``parent ==
justify.block``, the direct-parent links always hold and the view condition decides.

Committed blocks stay (the ledger is what :mod:`.sync` serves to a lagging replica); uncommitted
blocks at or below the committed height, and blocks that no longer chain to the ledger, are
pruned after each commit.
"""

from __future__ import annotations

from medbench.consensus.hotstuff.messages import GENESIS, QC, Block


class BlockTree:
    """One replica's blocks (see the module docstring)."""

    def __init__(self) -> None:
        self.ledger: list[Block] = [GENESIS]
        self.committed: dict[bytes, Block] = {GENESIS.hash: GENESIS}
        self.pending: dict[bytes, Block] = {}  # known, not committed

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self.pending or block_hash in self.committed

    def get(self, block_hash: bytes) -> Block | None:
        """The block with ``block_hash``, committed or not, or ``None``."""
        b = self.pending.get(block_hash)
        return b if b is not None else self.committed.get(block_hash)

    @property
    def tip(self) -> Block:
        """The highest committed block."""
        return self.ledger[-1]

    @property
    def height(self) -> int:
        """Height of the highest committed block."""
        return len(self.ledger) - 1

    def add(self, block: Block) -> None:
        """Store ``block`` (its parent is known and its height checked by the caller)."""
        self.pending[block.hash] = block

    def is_committed(self, block: Block) -> bool:
        """True when ``block`` is on the ledger."""
        h = block.height
        return h < len(self.ledger) and self.ledger[h].hash == block.hash

    def three_chain(self, qc: QC) -> Block | None:
        """The block ``b`` the three-chain ending in ``qc`` commits, or ``None``."""
        b2 = self.get(qc.block_hash)
        if b2 is None or b2.height == 0:
            return None
        b1 = self.get(b2.justify.block_hash)
        if b1 is None or b1.height == 0:
            return None
        b0 = self.get(b1.justify.block_hash)
        if b0 is None:
            return None
        if b2.parent != b1.hash or b1.parent != b0.hash:
            return None
        if b2.view != b1.view + 1 or b1.view != b0.view + 1:
            return None
        return b0

    def to_commit(self, block: Block) -> list[Block] | None:
        """``block`` and its uncommitted ancestors, lowest first (``[]`` if already committed);
        ``None`` when ``block`` conflicts with the ledger or an ancestor is missing."""
        if block.height < len(self.ledger):
            return [] if self.ledger[block.height].hash == block.hash else None
        chain: list[Block] = []
        b: Block | None = block
        top = len(self.ledger)
        while b is not None and b.height >= top:
            chain.append(b)
            b = self.get(b.parent)
        if b is None or b.hash != self.ledger[-1].hash:
            return None
        chain.reverse()
        return chain

    def append_committed(self, block: Block) -> None:
        """Put the next committed block on the ledger."""
        assert block.height == len(self.ledger), "ledger heights are consecutive"
        self.ledger.append(block)
        self.committed[block.hash] = block
        self.pending.pop(block.hash, None)

    def prune(self) -> int:
        """Drop uncommitted blocks that can no longer commit; return how many."""
        top = len(self.ledger)
        dropped = 0
        for b in sorted(self.pending.values(), key=lambda x: x.height):
            if b.height < top or (b.parent not in self.pending and b.parent != self.tip.hash):
                del self.pending[b.hash]
                dropped += 1
        return dropped

    def uncommitted_chain(self, block_hash: bytes) -> list[Block]:
        """The uncommitted blocks from ``block_hash`` down to the ledger (highest first)."""
        out: list[Block] = []
        b = self.pending.get(block_hash)
        while b is not None:
            out.append(b)
            b = self.pending.get(b.parent)
        return out

    def chain_has_requests(self, block_hash: bytes) -> bool:
        """True when an uncommitted block on the branch ending at ``block_hash`` orders any
        request (the pipeline still has work to finish)."""
        b = self.pending.get(block_hash)
        while b is not None:
            if b.batch:
                return True
            b = self.pending.get(b.parent)
        return False
