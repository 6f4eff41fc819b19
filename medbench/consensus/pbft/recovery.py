"""Recovery of a crashed replica from the records it persisted (Ready.persist).

Theory of operation
-------------------
A replica's driver writes every ``Ready.persist`` record to stable storage before it sends the
step's messages. After a crash, :meth:`Recovery.restore` replays those records into a fresh replica:

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

Records that contradict themselves — an executed batch whose items do not hash to its digest, or
whose re-execution does not reach the state digest persisted with it — stop the restart with a
:class:`RecoveryError`: a replica never runs on a state it cannot vouch for. (The Medical Chain
node also checks every record's bytes against the digest its store keeps, so a flipped bit on
disk is refused before decoding.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medbench.consensus.pbft.log import (
    COMMIT_PHASE,
    PREPARE_PHASE,
    ExecutedBatch,
    StableRecord,
    ViewRecord,
)
from medbench.consensus.pbft.messages import (
    Checkpoint,
    Commit,
    Fetch,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    ViewChange,
    compute_batch_digest,
)
from medbench.consensus.pbft.viewchange import ViewChanges
from medbench.node import Ready, Send


class RecoveryError(ValueError):
    """The persisted records contradict themselves: the replica refuses to start from them."""


class Recovery(ViewChanges):
    """Restart from persisted records (see the module docstring)."""

    def _replay(self, rec: ExecutedBatch) -> None:
        """Execute a persisted batch again, after checking it is the batch it claims to be: its
        digest recomputed from its items, and the chained state digest it reached recomputed
        after execution (defect 2 of issue 13: an altered record was re-executed silently, and
        the replica held another state under its peers' digest)."""
        self.hash_work["digest"] += 1
        if compute_batch_digest(rec.timestamp, rec.items) != rec.batch_digest:
            raise RecoveryError(f"executed batch {rec.sequence}: items do not match its digest")
        done = self._execute(rec.sequence, rec.timestamp, rec.items, rec.batch_digest, False)
        if done.state_digest != rec.state_digest:
            raise RecoveryError(
                f"executed batch {rec.sequence}: state digest differs from the one persisted"
            )

    def restore(self, records: Iterable[Any], now: int) -> Ready:
        """Replay ``records`` into this fresh replica; return its first output (a FETCH)."""
        node_id = self.node_id
        self.now = now
        self._ready = Ready()
        active = True
        view = 0
        own: list[PrePrepare | Prepare | Commit] = []
        new_views: dict[int, NewView] = {}
        view_changes: dict[int, ViewChange] = {}
        own_checkpoints: dict[int, Checkpoint] = {}
        for rec in records:
            if isinstance(rec, ExecutedBatch):
                if rec.sequence == self.last_executed + 1:
                    self._replay(rec)
            elif isinstance(rec, StableRecord):
                if rec.sequence > self.checkpoints.stable:
                    self.checkpoints.make_stable(rec.sequence, rec.state_digest, rec.proof)
                    self.log.collect(rec.sequence)
                    self.votes.forget_below(rec.sequence + 1)
            elif isinstance(rec, ViewRecord):
                if rec.view >= view:
                    view, active = rec.view, rec.active
            elif isinstance(rec, PreparedProof):
                slot = self.log.slot(rec.pre_prepare.sequence)
                if slot.proof is None or slot.proof.pre_prepare.view <= rec.pre_prepare.view:
                    slot.proof = rec
            elif isinstance(rec, (PrePrepare, Prepare, Commit)):
                own.append(rec)
                if isinstance(rec, PrePrepare):
                    self._note_votes(rec)  # it voted for these requests: never refuse them
            elif isinstance(rec, NewView):
                new_views[rec.view] = rec
                for pp in rec.pre_prepares:
                    self._note_votes(pp)
            elif isinstance(rec, ViewChange) and rec.replica == node_id:
                view_changes[rec.view] = rec
            elif isinstance(rec, Checkpoint) and rec.replica == node_id:
                own_checkpoints[rec.sequence] = rec  # counted and sent again below
            elif (
                isinstance(rec, Reply)
                and rec.replica == node_id
                and rec.refusal
                and rec.timestamp > self.last_timestamp.get(rec.client, 0)
            ):
                # a refusal this replica answered: it stays refused for that timestamp (see
                # .refusals); a later executed request of the client supersedes it
                self.refused.add(rec)
        self.view = view
        self.active = active
        stable = self.checkpoints.stable
        self.log.collect(stable)
        self.new_view_sent = {v for v, nv in new_views.items() if nv.replica == node_id}
        if not active and view in view_changes:
            self.own_view_changes[view] = view_changes[
                view
            ]  # resent by tick() while entering the view
        nv = new_views.get(view)
        if nv is not None and active:
            # the pre-prepares this replica accepted with the NEW-VIEW (TOCS §4.4): without them a
            # restarted backup would take another batch for the same (view, sequence)
            self.last_new_view = nv
            for pp in nv.pre_prepares:
                if pp.sequence <= stable:
                    continue
                self.log.slot(pp.sequence).accept(pp)
                self.votes.add(PREPARE_PHASE, pp.view, pp.sequence, pp.batch_digest, pp.replica)
                if pp.replica == node_id:
                    self.next_sequence = max(self.next_sequence, pp.sequence)
        # restore this replica's votes of its current view, so it never votes twice
        for m in own:
            if m.view != view or m.sequence <= stable:
                continue
            slot = self.log.slot(m.sequence)
            if isinstance(m, PrePrepare):
                slot.accept(m)
                self.votes.add(PREPARE_PHASE, m.view, m.sequence, m.batch_digest, m.replica)
                if m.replica == node_id:
                    self.next_sequence = max(self.next_sequence, m.sequence)
            elif isinstance(m, Prepare):
                self.votes.add(PREPARE_PHASE, m.view, m.sequence, m.batch_digest, node_id)
                slot.add_prepare(m)
            else:
                slot.commit_sent = True
                self.votes.add(COMMIT_PHASE, m.view, m.sequence, m.batch_digest, node_id)
        self.next_sequence = max(self.next_sequence, stable, self.last_executed)
        if not active:
            self.vc_deadline = now + self._timeout()
        ready = Ready()
        self._ready = ready
        # its own checkpoints count again, and go out again (peers may have lost them too)
        for s, cp in sorted(own_checkpoints.items()):
            if stable < s <= self.last_executed and cp.state_digest == self.history[s].state_digest:
                self.own_checkpoints[s] = cp
                self.add_checkpoint(cp)
        self.resend_checkpoints()
        # ask every peer for what was committed while this replica was down
        ready.messages.append(Send(self.others, self._seal(Fetch(self.last_executed + 1, node_id))))
        return ready
