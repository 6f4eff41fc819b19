"""The next leader's vote collection: distinct voters per block, QCs, equivocation evidence.

Theory of operation
-------------------
Algorithm 3 ``onReceiveVote``: the leader of view ``v + 1`` keeps, per ``(view, block)``, the
votes of distinct replicas (``V[b]``, duplicates ignored) and forms a :class:`~.messages.QC` once
``quorum`` of them are in (``strong_quorum(n)``, see :mod:`.certificates`). A replica that votes
for two blocks in one view is *equivocating*: its second vote is not counted and
:meth:`VoteCollector.add` returns both votes as evidence. Votes arrive authenticated (the caller
checks signatures, cheapest checks first); a QC formed here is marked as verified in the run's
:class:`~.certificates.VerdictMemo`, if any, since each of its votes was. Everything at or below a
committed view is forgotten (:meth:`VoteCollector.forget_below`).
"""

from __future__ import annotations

from enum import IntEnum

from medbench.consensus.hotstuff.certificates import VerdictMemo
from medbench.consensus.hotstuff.messages import QC, Vote


class Added(IntEnum):
    """What :meth:`VoteCollector.add` did with a vote."""

    COUNTED = 0
    DUPLICATE = 1
    CONFLICT = 2


class VoteCollector:
    """Votes by ``(view, block)`` and by ``(view, voter)`` (see the module docstring)."""

    def __init__(self, quorum: int, memo: VerdictMemo | None) -> None:
        self.quorum = quorum
        self.memo = memo
        self.votes: dict[tuple[int, bytes], dict[int, Vote]] = {}
        self.first: dict[tuple[int, int], Vote] = {}  # (view, voter) -> its first vote
        self.formed: set[tuple[int, bytes]] = set()  # QCs formed, by (view, block)

    def add(self, vote: Vote) -> tuple[Added, QC | None, tuple[Vote, Vote] | None]:
        """Count ``vote``: what happened, the QC it completed (if any), and on a conflict the
        evidence ``(first vote, this vote)``."""
        v, r, h = vote.view, vote.replica, vote.block_hash
        first = self.first.get((v, r))
        if first is not None:
            if first.block_hash != h:
                return Added.CONFLICT, None, (first, vote)
            return Added.DUPLICATE, None, None
        self.first[(v, r)] = vote
        key = (v, h)
        if key in self.formed:
            return Added.COUNTED, None, None
        votes = self.votes.get(key)
        if votes is None:
            votes = self.votes[key] = {}
        votes[r] = vote
        if len(votes) < self.quorum:
            return Added.COUNTED, None, None
        qc = QC(v, h, tuple(votes[i] for i in sorted(votes)))
        if self.memo is not None:
            object.__setattr__(qc, "_verdict", self.memo)  # every vote in it was verified
        self.formed.add(key)
        del self.votes[key]
        return Added.COUNTED, qc, None

    def pending_above(self, view: int) -> bool:
        """Votes for a view above ``view`` are being collected (a QC may still form)."""
        return any(v > view for v, _ in self.votes)

    def forget_below(self, view: int) -> None:
        """Forget every vote of a view at or below ``view``."""
        for vkey in [k for k in self.votes if k[0] <= view]:
            del self.votes[vkey]
        for fkey in [k for k in self.first if k[0] <= view]:
            del self.first[fkey]
        self.formed = {k for k in self.formed if k[0] > view}
