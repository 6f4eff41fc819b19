"""Hash work of a node: one accounting rule for every protocol of Table 1 (docs/medical-chain.md
§1.8).

Theory of operation
-------------------
Table 1's *compute demand* counts SHA-256 evaluations per committed transaction. The paper
describes Medical Chain's as "a Merkle tree plus 2 hashes per block"; MedRec's and ModelChain's
as mining. So that the rows compare, every protocol's simulator node counts, at each node, the
hashes that node itself evaluates, in these categories (:data:`CATEGORIES`):

* ``tx_id`` — the ID of a transaction is the hash of its body: a node hashes each distinct
  committed transaction once (to compute or check its ID), however often it sees it;
* ``merkle`` — each Merkle root over transaction IDs the node builds or checks: an RFC 6962 tree
  over ``k`` leaves costs ``2k - 1`` evaluations (``k`` leaf hashes, ``k - 1`` inner nodes), and
  the empty tree one (:func:`merkle_hashes`);
* ``block_id`` — each block header hash the node computes (building or checking a block);
* ``digest`` — other protocol digests (PBFT: the batch digest a PRE-PREPARE names, recomputed by
  every backup, and the chained state digest of each executed batch);
* ``mac`` — HMAC-SHA256 authenticators (two SHA-256 passes each), when PBFT uses MACs;
* ``mining`` — nonce trials of proof of work (modeled: hash rate x mining time; or real).

Everything except ``mining`` is charged to the node's CPU as the simulator operation ``hash``
(one unit per evaluation, priced by the cost profile); modeled mining runs on separate hardware
and is added to the compute demand only (see :mod:`medbench.experiments.baselines`).
"""

from __future__ import annotations

from collections.abc import Mapping

CATEGORIES: tuple[str, ...] = ("tx_id", "merkle", "block_id", "digest", "mac", "mining")
"""Hash-work categories, in report order."""


def merkle_hashes(n_leaves: int) -> int:
    """SHA-256 evaluations of an RFC 6962 root over ``n_leaves`` leaves (2n-1, or 1 if empty)."""
    if n_leaves < 0:
        raise ValueError("a Merkle tree cannot have a negative number of leaves")
    return 2 * n_leaves - 1 if n_leaves else 1


def block_hashes(n_tx_ids: int) -> dict[str, int]:
    """Hashes of building *or* checking one block over ``n_tx_ids`` IDs: Merkle root + block ID."""
    return {"merkle": merkle_hashes(n_tx_ids), "block_id": 1}


class HashTally:
    """Per-category hash counts of one node (see the module docstring)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(CATEGORIES, 0)

    def add(self, category: str, count: int = 1) -> None:
        """Count ``count`` more evaluations of ``category`` (a name of :data:`CATEGORIES`)."""
        if category not in self.counts:
            raise KeyError(f"unknown hash category {category!r}; known: {CATEGORIES}")
        self.counts[category] += count

    def add_all(self, counts: Mapping[str, int]) -> None:
        """Add every category of ``counts``."""
        for category, count in counts.items():
            self.add(category, count)

    def charged(self) -> int:
        """Evaluations the node's CPU performs (everything but modeled ``mining``)."""
        return sum(v for k, v in self.counts.items() if k != "mining")

    def as_stats(self) -> dict[str, int]:
        """``hash.<category>`` entries for a node's ``stats()``."""
        return {f"hash.{k}": v for k, v in self.counts.items()}


__all__ = ["CATEGORIES", "HashTally", "block_hashes", "merkle_hashes"]
