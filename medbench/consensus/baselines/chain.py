"""A block tree with heaviest-chain fork choice, orphan accounting and depth-k commits.

Theory of operation
-------------------
Nakamoto-style protocols (PoW of MedRec 2016, PoI of ModelChain, Clique PoA of MedRec 2.0) keep
every valid block they hear of in a tree rooted at genesis. Each block has a *weight* (PoW: its
difficulty; Clique: 2 in turn, 1 out of turn) and the *head* is the leaf of greatest total weight
("heaviest chain"; with a fixed difficulty, the longest chain). On a tie the block seen first
stays head, as Bitcoin and Ethereum do, which is what makes orphans depend on propagation delay.

A block whose parent is unknown waits in a bounded buffer and is connected when the parent
arrives; a block whose parent was refused is refused too (``invalid_ancestor``). Blocks off the
main chain are *orphans* (Ethereum calls them uncles/ommers).

Commits are probabilistic: a block is committed once ``depth`` blocks are on top of it on the main
chain. A reorganisation that removes an already committed block is a safety violation of the
probabilistic kind; it is counted and its blocks are committed again from the new branch, so the
metrics see the same sequence number with a different block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medbench.consensus.baselines.common import Rejected

MAX_PENDING = 1024
MAX_INVALID = 1 << 16


@dataclass(slots=True)
class Entry:
    """One block in the tree."""

    block_id: bytes
    parent: bytes
    height: int
    total: int  # total weight from genesis
    block: Any


@dataclass(slots=True)
class HeadChange:
    """What moving the head did to the main chain: blocks dropped from it and added to it."""

    dropped: list[bytes]
    added: list[bytes]

    @property
    def reorg_depth(self) -> int:
        """Main-chain blocks dropped (0 = plain extension or no change)."""
        return len(self.dropped)


class BlockTree:
    """Every known block, the heaviest head, and the main chain indexed by height."""

    def __init__(self, genesis_id: bytes, genesis_block: Any = None) -> None:
        self.genesis_id = genesis_id
        self.entries: dict[bytes, Entry] = {genesis_id: Entry(genesis_id, b"", 0, 0, genesis_block)}
        self.main: list[bytes] = [genesis_id]
        self.pending: dict[bytes, list[tuple[bytes, int, Any]]] = {}
        self.n_pending = 0
        self.invalid: set[bytes] = set()  # refused blocks: their descendants are refused too
        self.reorgs = 0
        self.max_reorg_depth = 0

    @property
    def head(self) -> Entry:
        """The tip of the heaviest chain."""
        return self.entries[self.main[-1]]

    def __contains__(self, block_id: bytes) -> bool:
        return block_id in self.entries

    def get(self, block_id: bytes) -> Entry | None:
        """The entry of ``block_id`` if known."""
        return self.entries.get(block_id)

    def add(
        self,
        block_id: bytes,
        parent: bytes,
        weight: int,
        block: Any,
        validate: Callable[[Entry, Any], None],
    ) -> tuple[list[Entry], list[Rejected]]:
        """Insert a block (and any buffered descendants); return the entries connected.

        ``validate(parent_entry, block)`` runs when a block is connected to its parent and raises
        :class:`Rejected` to refuse it (a refused block's buffered descendants are dropped too;
        their refusals are returned). Raises :class:`Rejected` for a duplicate or when the
        unknown-parent buffer is full. A block with an unknown parent is buffered (no entries).
        """
        if block_id in self.entries:
            raise Rejected("duplicate_block")
        if parent in self.invalid:
            self._mark_invalid(block_id)
            raise Rejected("invalid_ancestor")
        if parent not in self.entries:
            if self.n_pending >= MAX_PENDING:
                raise Rejected("orphan_buffer_full")
            waiting = self.pending.setdefault(parent, [])
            if any(b == block_id for b, _, _ in waiting):
                raise Rejected("duplicate_block")
            waiting.append((block_id, weight, block))
            self.n_pending += 1
            return [], []
        added: list[Entry] = []
        refused: list[Rejected] = []
        stack = [(block_id, parent, weight, block)]
        while stack:
            bid, par, w, blk = stack.pop()
            if bid in self.entries:
                continue
            pe = self.entries[par]
            try:
                validate(pe, blk)
            except Rejected as exc:
                refused.append(exc)
                self._mark_invalid(bid)
                self._drop_pending(bid, refused)
                continue
            entry = Entry(bid, par, pe.height + 1, pe.total + w, blk)
            self.entries[bid] = entry
            added.append(entry)
            for cbid, cw, cblk in self.pending.pop(bid, []):
                self.n_pending -= 1
                stack.append((cbid, bid, cw, cblk))
        return added, refused

    def _mark_invalid(self, block_id: bytes) -> None:
        """Remember a refused block so its descendants are refused at once (bounded memory)."""
        if len(self.invalid) >= MAX_INVALID:
            self.invalid.clear()
        self.invalid.add(block_id)

    def _drop_pending(self, block_id: bytes, refused: list[Rejected]) -> None:
        """Forget the buffered descendants of a refused block."""
        stack = [block_id]
        while stack:
            for cbid, _, _ in self.pending.pop(stack.pop(), []):
                self.n_pending -= 1
                self._mark_invalid(cbid)
                refused.append(Rejected("invalid_ancestor"))
                stack.append(cbid)

    def choose_head(self, candidates: list[Entry]) -> HeadChange:
        """Move the head to the heaviest of ``candidates`` if strictly heavier (first seen wins)."""
        best = self.head
        for e in candidates:
            if e.total > best.total:
                best = e
        if best.block_id == self.main[-1]:
            return HeadChange([], [])
        # Walk back from the new head to the main chain.
        branch: list[bytes] = []
        cur = best
        while cur.height >= len(self.main) or self.main[cur.height] != cur.block_id:
            branch.append(cur.block_id)
            cur = self.entries[cur.parent]
        fork_height = cur.height
        dropped = self.main[fork_height + 1 :]
        del self.main[fork_height + 1 :]
        branch.reverse()
        self.main.extend(branch)
        if dropped:
            self.reorgs += 1
            self.max_reorg_depth = max(self.max_reorg_depth, len(dropped))
        return HeadChange(dropped, branch)

    def is_ancestor(self, ancestor: bytes, block_id: bytes) -> bool:
        """True iff ``ancestor`` is ``block_id`` or one of its ancestors."""
        a = self.entries.get(ancestor)
        cur = self.entries.get(block_id)
        if a is None or cur is None:
            return False
        while cur.height > a.height:
            cur = self.entries[cur.parent]
        return cur.block_id == ancestor

    def orphans(self) -> int:
        """Known blocks that are not on the main chain (genesis excluded)."""
        return len(self.entries) - len(self.main)

    def main_blocks(self) -> list[Any]:
        """The block objects of the main chain, genesis first."""
        return [self.entries[b].block for b in self.main]


class DepthCommitter:
    """Commits main-chain blocks ``depth`` deep, in height order; counts reverted commits."""

    def __init__(self, depth: int) -> None:
        if depth < 0:
            raise ValueError("confirmation depth must be >= 0")
        self.depth = depth
        self.committed: list[bytes] = []  # committed main-chain block IDs, height 1 first
        self.reverted = 0

    def advance(self, tree: BlockTree) -> tuple[list[Entry], int]:
        """Newly committed entries (in order) and how many earlier commits were reverted."""
        reverted = 0
        # Undo commits that are no longer on the main chain.
        while self.committed:
            h = len(self.committed)
            if h < len(tree.main) and tree.main[h] == self.committed[-1]:
                break
            self.committed.pop()
            reverted += 1
        self.reverted += reverted
        out: list[Entry] = []
        last = len(tree.main) - 1 - self.depth
        for h in range(len(self.committed) + 1, last + 1):
            self.committed.append(tree.main[h])
            out.append(tree.entries[tree.main[h]])
        return out, reverted
