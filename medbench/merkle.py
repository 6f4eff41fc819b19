"""Merkle trees (RFC 9162 / RFC 6962) over transaction IDs: roots, proofs, tamper localisation.

Served by the native core when it is built and by :mod:`medbench.reference.merkle` otherwise; both
give the same bytes. See the reference module for the theory of operation.
"""

from __future__ import annotations

from medbench.backend import load

_impl = load("merkle")

leaf_hash = _impl.leaf_hash
node_hash = _impl.node_hash
root = _impl.root
inclusion_proof = _impl.inclusion_proof
verify_inclusion = _impl.verify_inclusion
consistency_proof = _impl.consistency_proof
verify_consistency = _impl.verify_consistency
diff = _impl.diff
implementation = _impl.implementation

__all__ = [
    "consistency_proof",
    "diff",
    "implementation",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]
