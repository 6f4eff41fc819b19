"""HotStuff's voting rules in one small module (after Diem's *safety-rules*).

Theory of operation
-------------------
Safety rests on two pieces of state only, both here and both persisted: the view of the last
vote (the paper's ``vheight``, Algorithm 3 ``onReceiveProposal``) and the locked QC (the QC of
``b_lock``). :class:`SafetyRules` is the only code that signs a vote.

* **Vote at most once per view** (Algorithm 3: ``b_new.height > vheight``; views stand for
  heights because a block's view grows strictly along every chain). A repeat of the block this
  replica already voted for in that view is answered with the *same* vote (a lost vote can be
  resent; a restarted replica that kept its record says nothing new); any other block in a view
  at or below the last vote is refused.
* **safeNode** (§4.2, Algorithm 1): vote for ``b_new`` only if it extends ``b_lock`` or its
  justify QC is higher than the lock. The replica admits only blocks whose parent *is* the
  block their justify QC certifies (``b.parent == b.justify.node``, as Diem requires), so the
  predicate is decided from the QC alone: ``justify.view > locked.view`` is the liveness
  clause; ``justify.view == locked.view`` means the parent is the locked block itself (a second
  certified block in one view would need a quorum to vote twice), hence it extends the lock;
  ``justify.view < locked.view`` puts every ancestor of ``b_new`` below the lock's view, so it
  cannot extend it.
* **Locking** (Algorithm 3 ``update``): on a block ``b*`` with ``b'' = b*.justify.node`` and
  ``b' = b''.justify.node``, lock on ``b'`` (the head of the two-chain) if it is higher than the
  current lock: :meth:`SafetyRules.update_lock` takes ``b''.justify``, the QC of ``b'``.

The records to persist come back with each decision (:class:`VoteDecision`, :class:`LockRecord`);
the replica puts them in ``Ready.persist`` of the same step that sends the vote, and the driver
writes them *before* sending (medbench.node), so a restart never forgets a vote it sent.
:meth:`SafetyRules.restore` rebuilds the state from those records alone (not from the blocks a
replica stored: a replica that lost its vote record would vote again, which
``tests/hotstuff`` demonstrates).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from medbench.consensus.auth import Keyring
from medbench.consensus.hotstuff.messages import GENESIS_QC, QC, Block, Vote, own_vote


@dataclass(frozen=True, slots=True)
class LockRecord:
    """Persisted when the lock moves: the QC of the new ``b_lock``."""

    qc: QC


class VoteDecision(NamedTuple):
    """The answer of :meth:`SafetyRules.vote`.

    ``vote`` is the vote to send (``None`` if refused, then ``reason`` says why); ``records``
    must be persisted before it is sent; ``repeat`` is True when this is the vote already cast
    for this block (nothing new to persist).
    """

    vote: Vote | None
    records: tuple[Any, ...]
    reason: str | None
    repeat: bool


class SafetyRules:
    """The last vote and the lock of one replica (see the module docstring)."""

    def __init__(self, node_id: int, keyring: Keyring) -> None:
        self.node_id = node_id
        self.keyring = keyring
        self.last_voted_view = 0
        self.last_vote: Vote | None = None
        self.locked: QC = GENESIS_QC

    def update_lock(self, qc: QC) -> LockRecord | None:
        """Lock on the block ``qc`` certifies if it is higher than the lock; the record to
        persist, or ``None`` if the lock did not move."""
        if qc.view > self.locked.view:
            self.locked = qc
            return LockRecord(qc)
        return None

    def safe_node(self, block: Block) -> str | None:
        """Why ``block`` fails the safeNode predicate, or ``None`` (module docstring)."""
        justify = block.justify
        if block.parent != justify.block_hash:
            return "parent is not the justified block"
        locked = self.locked
        if justify.view > locked.view:
            return None
        if justify.view == locked.view and justify.block_hash == locked.block_hash:
            return None
        return "does not extend the locked block"

    def vote(self, block: Block) -> VoteDecision:
        """Decide whether to vote for ``block``; sign the vote if so."""
        last = self.last_vote
        h = block.hash
        if block.view <= self.last_voted_view:
            if last is not None and last.view == block.view and last.block_hash == h:
                return VoteDecision(last, (), None, True)
            return VoteDecision(None, (), "already voted in this view or a later one", False)
        reason = self.safe_node(block)
        if reason is not None:
            return VoteDecision(None, (), reason, False)
        vote = own_vote(block.view, h, self.node_id)
        object.__setattr__(vote, "auth", self.keyring.sign(vote.body()))
        self.last_voted_view = block.view
        self.last_vote = vote
        return VoteDecision(vote, (vote,), None, False)

    def restore(self, records: Iterable[Any]) -> None:
        """Rebuild the last vote and the lock from persisted :class:`Vote` (own) and
        :class:`LockRecord` records, in any order."""
        for rec in records:
            if type(rec) is Vote and rec.replica == self.node_id:
                if rec.view > self.last_voted_view:
                    self.last_voted_view = rec.view
                    self.last_vote = rec
            elif type(rec) is LockRecord and rec.qc.view > self.locked.view:
                self.locked = rec.qc
