"""Recovery of a crashed HotStuff replica from the records it persisted (``Ready.persist``).

Theory of operation
-------------------
The driver writes every ``Ready.persist`` record (:mod:`.persist`) before the step's messages
leave. After a crash, :func:`replay` sorts those records into what
:meth:`~.replica.Replica.recover` rebuilds:

* the **safety state** — the replica's own votes and the lock records — goes to
  :meth:`~.safety.SafetyRules.restore` *and nothing else*: the last vote is known from the vote
  record alone, never guessed from the blocks, so a restart that lost it would vote again (the
  tests show it), and one that kept it answers a repeated proposal with the same vote;
* the **blocks** (admitted blocks and the blocks of the replica's own proposals, parents first)
  rebuild the tree, and the highest :class:`~.persist.CommitRecord` says how far the ledger
  reached: those blocks are executed again, in order, without replies (the reply cache, the
  client timestamps and the state digest come back exactly);
* the replica's own **proposals** restore the last view it proposed in (it never proposes twice
  in a view), and its own **NEW-VIEWs** the view its pacemaker had reached.

What the replica missed while down it fetches from its peers (:mod:`.sync`): its first output
asks each of them for its highest QC and the chain below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from medbench.consensus.hotstuff.messages import Block, NewView, Proposal, Vote
from medbench.consensus.hotstuff.persist import CommitRecord
from medbench.consensus.hotstuff.safety import LockRecord


@dataclass
class Replayed:
    """The persisted records of one replica, sorted for :meth:`~.replica.Replica.recover`."""

    blocks: list[Block] = field(default_factory=list)
    safety_records: list[Any] = field(default_factory=list)
    commit: CommitRecord | None = None
    last_proposed_view: int = 0
    last_new_view: int = 0


def replay(records: Iterable[Any], node_id: int) -> Replayed:
    """Sort ``records`` (in the order they were persisted) into a :class:`Replayed`."""
    out = Replayed()
    for rec in records:
        t = type(rec)
        if t is Block:
            out.blocks.append(rec)
        elif t is Vote or t is LockRecord:
            out.safety_records.append(rec)
        elif t is Proposal and rec.replica == node_id:
            out.blocks.append(rec.block)
            out.last_proposed_view = max(out.last_proposed_view, rec.block.view)
        elif t is NewView and rec.replica == node_id:
            out.last_new_view = max(out.last_new_view, rec.view)
        elif t is CommitRecord and (out.commit is None or rec.height > out.commit.height):
            out.commit = rec
    return out
