"""The PBFT replica: a sans-IO state machine (Castro & Liskov, OSDI 1999 / TOCS 2002).

Theory of operation
-------------------
``Replica`` implements :class:`medbench.node.Node`. It owns no clock, socket, random module or
database: its driver calls ``step(src, msg)`` for every message and ``tick(now_us)`` for time, and
gets one :class:`medbench.node.Ready` back. **The driver's duty: write ``Ready.persist`` to stable
storage before delivering ``Ready.messages``** (a replica must never contradict, after a crash, a
vote it already sent), then hand ``Ready.committed`` (executed batches, in sequence order) to the
application. A crashed replica is rebuilt by :meth:`Replica.recover` from those records.

Replicas are ``0..n-1``; the primary of view ``v`` is ``v mod n`` (docs/medical-chain.md §1.1).
Clients are any other node id. The protocol, rule by rule (TOCS section in brackets):

* REQUEST [§4.1]: authenticated by the client, checked by the pluggable *validator* (Medical
  Chain's rule checks, docs/medical-chain.md §1.5). A request whose client timestamp is not newer
  than the client's last executed one is answered from the cached last reply (exactly-once). The
  primary queues it; a backup relays it to the primary and starts the view-change timer for it.
* Refusals: an authentic request the validator refuses — on arrival, inside a PRE-PREPARE, or
  when a new view re-judges what waits — is answered with an authenticated REPLY carrying the
  typed reason (``Reply.refusal``, the part of the reason before its first colon) and is
  remembered (:mod:`.refusals`): a retransmission gets the same refusal, and this replica never
  re-judges, proposes or prepares that (client, timestamp) again; a request with a newer
  timestamp is judged afresh. The client completes on 2f+1 matching refusals: at least f+1 of
  them are honest, and an honest replica persists its refusal and never prepares that request,
  so at most 2f replicas are left to prepare it and it can never commit. (A result needs only
  f+1 matching replies: execution is ordered, so every honest replica computes the same one.)
  A replica never refuses a request it voted for at a sequence it has not executed yet (its
  PREPARE may sit in a certificate a later NEW-VIEW re-issues). Honest replicas that split at
  admission (one judged before a grant executed, one after) could leave a request neither
  committable nor refused for ever: a request still pending after f+1 whole views that executed
  other batches is given up (refusal ``unordered``, :meth:`~.viewchange.ViewChanges._rejudge`),
  and the client takes 2f+1 refusals of mixed reasons once no single reason can reach 2f+1.
  Meanwhile a backup prepares no fresh pre-prepare holding it (a primary re-proposing it at
  ever higher sequences would otherwise keep this replica's vote, and the request, open).
* Batching [§5.1]: the primary sends a PRE-PREPARE when ``max_batch_size`` requests wait, or when
  the oldest has waited ``max_batch_delay_us`` (0: at once), and only inside the watermarks.
* Agreed time [§4.6, non-determinism]: the primary puts its clock reading (from ``tick``, never
  behind the previous batch's) in the PRE-PREPARE; a backup refuses a timestamp more than
  ``max_clock_skew_us`` away from its own clock or before the previous batch's. At execution the
  batch's *agreed time* is ``max(timestamp, previous agreed time)`` (monotone, the same on every
  honest replica) and is what the service judges every request of the batch at.
* PRE-PREPARE [§4.2]: a backup accepts it in its current view, inside ``(h, h+L]``, if it has not
  accepted another digest for that view and sequence, the digest matches the batch, its time is
  acceptable and every request is authentic and valid; then it broadcasts PREPARE. The
  pre-prepare counts as the primary's prepare vote, so *prepared* = pre-prepare + 2f+1 matching
  votes (docs/medical-chain.md §1.1).
* COMMIT [§4.2]: once prepared a replica persists the certificate and broadcasts COMMIT; with 2f+1
  matching commits the batch is *committed-local* and executed in sequence order; replies go to
  clients, the chain of blocks advances (:mod:`.blocker`).
* CHECKPOINT [§4.3]: every ``checkpoint_interval`` sequences (:mod:`.checkpoint`).
* View change [§4.4]: the timer of a pending request expires -> VIEW-CHANGE for ``v+1``; f+1 view
  changes for higher views make a replica join; the new primary sends NEW-VIEW
  (:mod:`.viewchange`); timeouts double for every view change that does not bring progress.
* State transfer [§5.3]: a stable checkpoint beyond the last executed batch (or a restart) sends
  FETCH; the STATE answer is accepted only if its batches chain to the 2f+1-certified digest.
* Blocks (docs/medical-chain.md §1.5): in ``blocker`` mode the rotating blocker sends BLOCK to the
  primary, which orders it like a request; in ``integrated`` mode each executed batch is a block.

Choices where the papers leave room (each is exercised by ``tests/pbft``):

* the primary runs the request timer too: if its own proposals do not commit it moves on, which
  keeps a group live when the primary is cut off from a quorum;
* the timer of a view being entered starts only once 2f+1 VIEW-CHANGEs for it are in (TOCS
  §4.5.2), VIEW-CHANGEs are re-sent every ``view_change_timeout_us`` while a view is being
  entered, a replica answers a stale VIEW-CHANGE with the NEW-VIEW it installed (any replica may
  relay it: it is the primary's authenticated message) or with its own VIEW-CHANGE of that view;
  messages of a view that arrive before its NEW-VIEW are buffered (bounded) and replayed;
* in blocker mode, accepted transactions waiting longer than ``block_interval_us`` plus the
  view-change timeout for a block make the replica change view (new primary, hence new blocker);
* the executed history (the ordered batches: the ledger) is kept in memory for state transfer;
  a STATE answer carries everything from the requested sequence to the sender's stable checkpoint.

Bad input from a peer never raises: it is dropped, counted in :attr:`Replica.rejections` and
reported as a ``Note("reject", (kind, reason))``. Handlers are chosen from one table keyed by
message type; local kinds (:data:`.messages.LOCAL_KINDS`) from a peer are rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from medbench.consensus.auth import Keyring
from medbench.consensus.pbft.blocker import BlockFormat, BlockMode
from medbench.consensus.pbft.core import (
    FUTURE_LIMIT,
    INVALID,
    Config,
    Service,
    Validator,
    accept_all,
    acknowledge,
    refusal_code,
)
from medbench.consensus.pbft.messages import (
    LOCAL_KINDS,
    Block,
    Checkpoint,
    Commit,
    Fetch,
    NewView,
    Prepare,
    PrePrepare,
    Request,
    State,
    Timeout,
    ViewChange,
)
from medbench.consensus.pbft.recovery import Recovery
from medbench.node import Note, Ready


class Replica(Recovery):
    """One PBFT replica (see the module docstring)."""

    def __init__(
        self,
        node_id: int,
        config: Config,
        keyring: Keyring,
        validator: Validator = accept_all,
        service: Service = acknowledge,
        block_format: BlockFormat | None = None,
    ) -> None:
        super().__init__(node_id, config, keyring, validator, service, block_format)
        self._handlers = {
            Request: self.handle_request,
            PrePrepare: self.handle_pre_prepare,
            Prepare: self.handle_prepare,
            Commit: self.handle_commit,
            Checkpoint: self.handle_checkpoint,
            ViewChange: self.handle_view_change,
            NewView: self.handle_new_view,
            Fetch: self.handle_fetch,
            State: self.handle_state,
            Block: self.handle_block,
        }
        # local events: only the node's own driver may deliver them (src == node_id)
        self._local_handlers: dict[type, Callable[[int, Any], None]] = {
            Timeout: self.handle_timeout,
        }
        assert all(t.KIND in LOCAL_KINDS for t in self._local_handlers)  # type: ignore[attr-defined]
        assert not any(t.KIND in LOCAL_KINDS for t in self._handlers)  # type: ignore[attr-defined]

    # --- the node interface ----------------------------------------------------------------------

    def step(self, src: int, msg: Any) -> Ready:
        """Handle ``msg`` from node ``src``; never raises on bad input from a peer."""
        ready = self._ready = Ready()
        self.handled += 1
        handler = self._handlers.get(type(msg))
        if handler is not None:
            handler(src, msg)
            return ready
        handler = self._local_handlers.get(type(msg))
        if handler is None:
            self._reject(msg, "unknown message type")
        elif src != self.node_id:
            self._reject(msg, "local kind from the network")
        else:
            handler(src, msg)
        return ready

    def tick(self, now: int) -> Ready:
        """The clock reads ``now`` µs: batch timeouts, view-change and fetch timers, blocks."""
        ready = self._ready = Ready()
        if now > self.now:
            self.now = now
        if self.queue and self.is_primary and self.active:
            self._maybe_send_batch()
        if self.active:
            pending = self.pending
            while pending:  # drop timers of requests executed meanwhile (e.g. state transfer)
                key = next(iter(pending))
                if key[1] > self.last_timestamp.get(key[0], 0):
                    break
                del pending[key]
            if pending:  # the primary too: its own proposals not committing is a reason to move
                oldest = next(iter(pending.values()))[0]
                if now - oldest >= self._timeout():
                    self.handle_timeout(self.node_id, Timeout("request"))
        elif self.vc_deadline is not None and now >= self.vc_deadline:
            self.handle_timeout(self.node_id, Timeout("view-change"))
        elif now >= self.vc_resend_at:
            # view changes lost on the way are sent again (TOCS §5.2: retransmission)
            own = self.own_view_changes.get(self.view)
            if own is not None:
                self._send(self.others, own)
            self.vc_resend_at = now + self.config.view_change_timeout_us
        if self.fetch_deadline is not None and now >= self.fetch_deadline:
            self.handle_timeout(self.node_id, Timeout("fetch"))
        if self.config.block_mode is BlockMode.BLOCKER:
            self._maybe_propose_block()
            since = self.unblocked_since
            limit = self.config.block_interval_us + self._timeout()
            if self.active and since is not None and now - since >= limit:
                # accepted transactions wait too long for a block: the blocker or the primary is
                # faulty; a new view brings a new primary and so a new blocker
                # (docs/medical-chain.md §1.5)
                self.unblocked_since = now
                ready.notes.append(Note("block-stalled", self.chain.length))
                self.start_view_change(self.view + 1)
        return ready

    # --- recovery from persisted records --------------------------------------------------------

    @classmethod
    def recover(
        cls,
        node_id: int,
        config: Config,
        keyring: Keyring,
        records: Iterable[Any],
        validator: Validator = accept_all,
        service: Service = acknowledge,
        block_format: BlockFormat | None = None,
        now: int = 0,
    ) -> tuple[Replica, Ready]:
        """Rebuild a crashed replica from its persisted records; the Ready holds its FETCH."""
        r = cls(node_id, config, keyring, validator, service, block_format)
        return r, r.restore(records, now)


__all__ = [
    "FUTURE_LIMIT",
    "INVALID",
    "Config",
    "Replica",
    "Service",
    "Validator",
    "accept_all",
    "acknowledge",
    "refusal_code",
]
