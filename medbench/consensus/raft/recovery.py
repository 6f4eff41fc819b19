"""Recovery of a crashed Raft node from the records it persisted (``Ready.persist``).

Theory of operation
-------------------
Figure 2's persistent state — ``currentTerm``, ``votedFor``, ``log[]`` — and the snapshot of §7
reach stable storage before the node answers any RPC (:mod:`.persist`). :func:`replay` folds the
records, in the order they were written, into what :meth:`~.replica.Replica.recover` restores:

* the last :class:`~.persist.HardState` gives the term, the vote (so a restarted node never
  votes twice in a term) and the commit index;
* :class:`~.messages.Entry` and :class:`~.persist.Truncate` records rebuild the log (an entry
  for an index the log already has replaces it and what follows, as the follower did);
* a :class:`~.messages.Snapshot` replaces the prefix it covers (keeping the suffix if the
  snapshot's last entry is in the log with its term, else the whole log, §7).

The node then restores the snapshot into its state machine and applies the committed entries
again without replying; it restarts as a follower and catches up from the leader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from medbench.consensus.raft.log import RaftLog
from medbench.consensus.raft.messages import NO_NODE, Entry, Snapshot
from medbench.consensus.raft.persist import HardState, Truncate


@dataclass
class Replayed:
    """The persisted state of one node, folded from its records."""

    term: int = 0
    voted_for: int = NO_NODE
    commit: int = 0
    log: RaftLog = field(default_factory=RaftLog)
    snapshot: Snapshot | None = None


def replay(records: Iterable[Any]) -> Replayed:
    """Fold ``records`` (in the order they were persisted) into a :class:`Replayed`."""
    out = Replayed()
    log = out.log
    for rec in records:
        t = type(rec)
        if t is HardState:
            out.term, out.voted_for, out.commit = rec.term, rec.voted_for, rec.commit
        elif t is Entry:
            if rec.index <= log.snapshot_index:
                continue  # covered by a snapshot taken since
            if rec.index <= log.last_index:
                log.truncate_from(rec.index)
            if rec.index == log.last_index + 1:
                log.append(rec)
        elif t is Truncate:
            if rec.index > log.snapshot_index:
                log.truncate_from(rec.index)
        elif t is Snapshot and (out.snapshot is None or rec.last_index > out.snapshot.last_index):
            if log.term_at(rec.last_index) == rec.last_term:
                log.compact(rec.last_index, rec.last_term)
            else:
                log.reset(rec.last_index, rec.last_term)
            out.snapshot = rec
    return out
