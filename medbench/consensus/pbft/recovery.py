"""Recovery of a crashed replica from the records it persisted (Ready.persist).

Theory of operation
-------------------
A replica's driver writes every ``Ready.persist`` record to stable storage before it sends the
step's messages. After a crash, :func:`restore` replays those records into a fresh replica:

* :class:`~.log.ExecutedBatch` records are executed again, in order, without replies: the ledger,
  the chain of blocks, the client reply cache and the state digest come back exactly;
* :class:`~.log.StableRecord` restores the stable checkpoint and its proof (the watermarks);
* :class:`~.log.ViewRecord` restores the view and whether the replica was changing views;
* :class:`~.messages.PreparedProof` restores the prepared certificates the replica must report in
  a VIEW-CHANGE (so a restart never loses a prepared batch, TOCS §4.4);
* the newest :class:`~.messages.NewView` of the current view restores the pre-prepares the
  replica accepted when it entered that view (a backup persists the NEW-VIEW, not each re-issued
  pre-prepare), and its own VIEW-CHANGE of a view it is still entering is restored for resending;
* its own PRE-PREPAREs, PREPAREs and COMMITs of the current view restore its votes, so it never
  votes for a different batch at a sequence where it already voted.

The replica itself refuses a pre-prepare that contradicts a PREPARE it already sent
(:meth:`~.replica.Replica.handle_pre_prepare`), so a lost pre-prepare record cannot turn into a
second vote either.

What the replica missed while down it asks every peer for with a FETCH (state transfer, verified
against a 2f+1 checkpoint certificate before use).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from medbench.consensus.pbft.log import (
    COMMIT_PHASE,
    PREPARE_PHASE,
    ExecutedBatch,
    StableRecord,
    ViewRecord,
)
from medbench.consensus.pbft.messages import (
    Commit,
    Fetch,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    ViewChange,
)
from medbench.node import Ready, Send

if TYPE_CHECKING:
    from medbench.consensus.pbft.replica import Replica


def restore(r: Replica, records: Iterable[Any], now: int) -> tuple[Replica, Ready]:
    """Replay ``records`` into the fresh replica ``r``; return it and its first output."""
    node_id = r.node_id
    r.now = now
    r._ready = Ready()
    active = True
    view = 0
    own: list[PrePrepare | Prepare | Commit] = []
    new_views: dict[int, NewView] = {}
    view_changes: dict[int, ViewChange] = {}
    for rec in records:
        if isinstance(rec, ExecutedBatch):
            if rec.sequence == r.last_executed + 1:
                r._execute(rec.sequence, rec.timestamp, rec.items, rec.batch_digest, False)
        elif isinstance(rec, StableRecord):
            if rec.sequence > r.checkpoints.stable:
                r.checkpoints.make_stable(rec.sequence, rec.state_digest, rec.proof)
                r.log.collect(rec.sequence)
                r.votes.forget_below(rec.sequence + 1)
        elif isinstance(rec, ViewRecord):
            if rec.view >= view:
                view, active = rec.view, rec.active
        elif isinstance(rec, PreparedProof):
            slot = r.log.slot(rec.pre_prepare.sequence)
            if slot.proof is None or slot.proof.pre_prepare.view <= rec.pre_prepare.view:
                slot.proof = rec
        elif isinstance(rec, (PrePrepare, Prepare, Commit)):
            own.append(rec)
        elif isinstance(rec, NewView):
            new_views[rec.view] = rec
        elif isinstance(rec, ViewChange) and rec.replica == node_id:
            view_changes[rec.view] = rec
        elif isinstance(rec, Reply) and rec.replica == node_id and rec.refusal:
            # a refusal this replica answered: it stays refused for that timestamp (see
            # Replica._refuse); a later executed request of the client supersedes it
            old = r.refused.get(rec.client)
            if (old is None or old.timestamp <= rec.timestamp) and rec.timestamp > (
                r.last_timestamp.get(rec.client, 0)
            ):
                r.refused[rec.client] = rec
    r.view = view
    r.active = active
    stable = r.checkpoints.stable
    r.log.collect(stable)
    r.new_view_sent = {v for v, nv in new_views.items() if nv.replica == node_id}
    if not active and view in view_changes:
        r.own_view_changes[view] = view_changes[view]  # resent by tick() while entering the view
    nv = new_views.get(view)
    if nv is not None and active:
        # the pre-prepares this replica accepted with the NEW-VIEW (TOCS §4.4): without them a
        # restarted backup would take another batch for the same (view, sequence)
        r.last_new_view = nv
        for pp in nv.pre_prepares:
            if pp.sequence <= stable:
                continue
            r.log.slot(pp.sequence).accept(pp)
            r.votes.add(PREPARE_PHASE, pp.view, pp.sequence, pp.batch_digest, pp.replica)
            if pp.replica == node_id:
                r.next_sequence = max(r.next_sequence, pp.sequence)
    # restore this replica's votes of its current view, so it never votes twice
    for m in own:
        if m.view != view or m.sequence <= stable:
            continue
        slot = r.log.slot(m.sequence)
        if isinstance(m, PrePrepare):
            slot.accept(m)
            r.votes.add(PREPARE_PHASE, m.view, m.sequence, m.batch_digest, m.replica)
            if m.replica == node_id:
                r.next_sequence = max(r.next_sequence, m.sequence)
        elif isinstance(m, Prepare):
            r.votes.add(PREPARE_PHASE, m.view, m.sequence, m.batch_digest, node_id)
            slot.add_prepare(m)
        else:
            slot.commit_sent = True
            r.votes.add(COMMIT_PHASE, m.view, m.sequence, m.batch_digest, node_id)
    r.next_sequence = max(r.next_sequence, stable, r.last_executed)
    if not active:
        r.vc_deadline = now + r._timeout()
    ready = Ready()
    r._ready = ready
    # ask every peer for what was committed while this replica was down
    ready.messages.append(Send(r.others, r._seal(Fetch(r.last_executed + 1, node_id))))
    return r, ready
