"""PBFT vote quorums: distinct-voter counting, thresholds 2f+1 / f+1, equivocation evidence.

Served by the native core when it is built and by :mod:`medbench.reference.quorum` otherwise; see
the reference module for the theory of operation.
"""

from __future__ import annotations

from medbench.backend import load

_impl = load("quorum")

Status = _impl.Status
Evidence = _impl.Evidence
QuorumTracker = _impl.QuorumTracker
max_faulty = _impl.max_faulty
strong_quorum = _impl.strong_quorum
weak_quorum = _impl.weak_quorum
implementation = _impl.implementation

__all__ = [
    "Evidence",
    "QuorumTracker",
    "Status",
    "implementation",
    "max_faulty",
    "strong_quorum",
    "weak_quorum",
]
