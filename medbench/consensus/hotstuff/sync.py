"""Block sync: how a HotStuff replica that missed blocks fetches them from its peers.

Theory of operation
-------------------
The paper assumes a replica can obtain any block a QC names (§4.2: "a replica ... may need to
fetch missing nodes"); medbench does it with one request/response pair and no checkpoints:

* A replica *wants* a block hash only when a verified QC names it (a proposal's justify QC, a
  NEW-VIEW's QC, a QC it formed) or when it is the parent of a block it already trusts. It sends
  ``SYNC-REQUEST(hash, known_height, count)`` to the peer that showed it the QC, and on each
  ``sync_timeout_us`` without an answer to the next replica in turn (a faulty peer cannot stall
  it: some honest replica among the ``n - f`` voters has the block).
* ``SYNC-RESPONSE`` carries the asked block and up to ``count - 1`` ancestors above
  ``known_height``, highest first. The receiver accepts the chain only if its first block has
  exactly the wanted hash (or, for the restart question with an empty hash, the hash the
  response's verified QC certifies) and each next block is the parent of the one before, one
  height lower (:func:`check_chain`). Hashes chain every block to a certified one, so no
  signature of an ancestor needs checking: an honest voter checked it before voting.
* Blocks whose own parent is still unknown are *staged* and the parent of the lowest staged
  block wanted in turn, so a long gap is fetched top-down in chunks of ``max_sync_blocks``;
  once a chain connects to the tree its blocks are admitted oldest first, and each runs the
  replica's ordinary ``update`` (lock, three-chain commit), so a lagging replica commits exactly
  what the certified chain commits. Only certified blocks are ever staged (each hashes into a
  wanted block), so what a faulty peer can make a replica stage is bounded by the real chain;
  ``max_staged_blocks`` bounds it all the same.
* A restarted replica asks every peer once with an empty hash: each answer's QC is verified and
  its chain fetched the same way.

:func:`serve` answers a request from the tree (committed blocks included: the ledger is kept).
"""

from __future__ import annotations

from collections.abc import Callable, Container
from itertools import pairwise

from medbench.consensus.hotstuff.blocktree import BlockTree
from medbench.consensus.hotstuff.messages import QC, Block, SyncRequest, SyncResponse

IGNORE = "duplicate answer"
"""What :func:`check_response` answers for a second answer to a retried request (not an
error: the replica drops it without counting a rejection)."""


def serve(
    tree: BlockTree, qc_high: QC, req: SyncRequest, max_blocks: int
) -> tuple[QC | None, tuple[Block, ...]]:
    """The answer to ``req``: ``(qc, blocks)``, ``qc`` only for the empty-hash question."""
    if req.block_hash == b"":
        qc: QC | None = qc_high
        b = tree.get(qc_high.block_hash)
    else:
        qc = None
        b = tree.get(req.block_hash)
    limit = min(req.count, max_blocks)
    out: list[Block] = []
    while b is not None and b.height > req.known_height and len(out) < limit:
        out.append(b)
        b = tree.get(b.parent) if b.height > 0 else None
    return qc, tuple(out)


def check_chain(blocks: tuple[Block, ...]) -> str | None:
    """Why ``blocks`` (highest first) are not a parent chain, or ``None``."""
    for child, parent in pairwise(blocks):
        if child.parent != parent.hash:
            return "broken chain: a block is not its successor's parent"
        if child.height != parent.height + 1:
            return "broken chain: heights are not consecutive"
    return None


def check_response(
    resp: SyncResponse,
    max_blocks: int,
    qc_reason: Callable[[QC], str | None],
    wanted: Container[bytes],
    known: Container[bytes],
) -> str | None:
    """Why the chain of an (authenticated) ``resp`` cannot be admitted, or ``None``: it must
    hash down from the block its verified QC certifies, or from a wanted hash (``IGNORE`` for
    an answer whose top block is already ``known``)."""
    blocks = resp.blocks
    if not blocks:
        return "empty sync response"
    if len(blocks) > max_blocks:
        return "sync response too long"
    top = blocks[0]
    qc = resp.qc
    if qc is not None:
        reason = qc_reason(qc)
        if reason is not None:
            return f"invalid QC: {reason}"
        if qc.block_hash != top.hash:
            return "QC does not certify the first block"
    elif top.hash not in wanted:
        return IGNORE if top.hash in known else "unsolicited block"
    return check_chain(blocks)


class Either:
    """``x in Either(a, b)``: ``x in a or x in b`` (a block known to the tree or staged)."""

    __slots__ = ("a", "b")

    def __init__(self, a: Container[bytes], b: Container[bytes]) -> None:
        self.a, self.b = a, b

    def __contains__(self, x: object) -> bool:
        return x in self.a or x in self.b


def lowest_staged(staged: dict[bytes, Block], block_hash: bytes) -> Block | None:
    """The lowest staged block of the staged chain through ``block_hash``, if it is staged."""
    bottom = staged.get(block_hash)
    while bottom is not None and bottom.parent in staged:
        bottom = staged[bottom.parent]
    return bottom


class Fetcher:
    """The hashes a replica wants, its staged blocks and its retry schedule."""

    def __init__(self, node_id: int, n: int, timeout_us: int, max_staged: int) -> None:
        self.node_id = node_id
        self.n = n
        self.timeout_us = timeout_us
        self.max_staged = max_staged
        self.wanted: dict[bytes, list[int]] = {}  # hash -> [next peer offset, attempts]
        self.staged: dict[bytes, Block] = {}
        self.deadline: int | None = None

    def want(self, block_hash: bytes, now: int) -> bool:
        """Start wanting ``block_hash``; False if it was already wanted."""
        if block_hash in self.wanted:
            return False
        self.wanted[block_hash] = [1, 0]
        if self.deadline is None:
            self.deadline = now + self.timeout_us
        return True

    def got(self, block_hash: bytes) -> None:
        """``block_hash`` arrived (or is no longer needed)."""
        self.wanted.pop(block_hash, None)
        if not self.wanted:
            self.deadline = None

    def due(self, now: int) -> list[tuple[bytes, int]]:
        """On the retry deadline: ``(hash, peer)`` to ask again, each at the next peer in turn;
        a hash asked of every peer is given up (it will be wanted again if still needed)."""
        if self.deadline is None or now < self.deadline:
            return []
        out = []
        for h, state in list(self.wanted.items()):
            offset, attempts = state
            if attempts >= self.n:
                del self.wanted[h]
                continue
            peer = (self.node_id + offset) % self.n
            if peer == self.node_id:
                offset += 1
                peer = (self.node_id + offset) % self.n
            state[0] = offset + 1
            state[1] = attempts + 1
            out.append((h, peer))
        self.deadline = now + self.timeout_us if self.wanted else None
        return out

    def stage(self, block: Block) -> bool:
        """Keep a certified block whose parent is unknown; False if the stage is full."""
        if len(self.staged) >= self.max_staged and block.hash not in self.staged:
            return False
        self.staged[block.hash] = block
        return True

    def connectable(self, known: BlockTree) -> list[Block]:
        """Staged blocks whose chain now reaches the tree, oldest first (removed from stage)."""
        out: list[Block] = []
        joined: set[bytes] = set()
        for b in sorted(self.staged.values(), key=lambda x: x.height):
            if b.parent in known or b.parent in joined:
                out.append(b)
                joined.add(b.hash)
                del self.staged[b.hash]
        return out

    def drop_below(self, height: int) -> None:
        """Forget staged blocks at or below the committed height."""
        for h in [h for h, b in self.staged.items() if b.height <= height]:
            del self.staged[h]
