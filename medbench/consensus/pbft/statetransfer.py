"""Checkpoint and state-transfer handlers of the replica (Castro & Liskov, TOCS 2002 §4.3, §5.3).

Theory of operation
-------------------
Every ``checkpoint_interval`` executed sequences a replica broadcasts its CHECKPOINT; 2f+1
matching ones make it *stable* (:mod:`.checkpoint`): the low watermark moves, the log and the vote
counts below it are dropped. A stable checkpoint beyond the replica's last executed batch means it
fell behind: it sends FETCH to one of the replicas that signed the proof (another one after each
``fetch_timeout_us``), and accepts a STATE answer only if the batches it carries chain, digest by
digest, from its own state to the 2f+1-certified one. A restarted replica asks everyone.

The handlers are functions of the :class:`~.self.Replica` whose state they change; the
replica's handler table binds them.
"""

from __future__ import annotations

from medbench.consensus.pbft.checkpoint import chain_digest, verify_proof
from medbench.consensus.pbft.core import ReplicaCore
from medbench.consensus.pbft.log import StableRecord
from medbench.consensus.pbft.messages import (
    Checkpoint,
    Fetch,
    State,
    StateBatch,
    compute_batch_digest,
)
from medbench.node import Note


class StateTransfer(ReplicaCore):
    """Checkpoints and state transfer of a replica (TOCS §4.3, §5.3; see the module docstring)."""

    def handle_checkpoint(self, src: int, msg: Checkpoint) -> None:
        """Collect checkpoints; 2f+1 matching make one stable (or reveal that we fell behind)."""
        if src != msg.replica or msg.replica >= self.n:
            self._reject(msg, "forged sender")
            return
        if msg.sequence <= self.checkpoints.stable:
            return  # stale but harmless: the replica already has a newer stable checkpoint
        if msg.sequence % self.config.checkpoint_interval:
            self._reject(msg, "checkpoint off the interval")  # no honest replica sends one
            return
        if not self._verify(src, msg):
            self._reject(msg, "not authentic")
            return
        self.add_checkpoint(msg)

    def add_checkpoint(self, msg: Checkpoint) -> None:
        proof = self.checkpoints.add(msg, self.quorum)
        for first, second in self.checkpoints.take_evidence():
            self._ready.notes.append(Note("equivocation", ("checkpoint", first, second)))
        if proof is not None:
            self.make_stable(msg.sequence, msg.state_digest, proof)

    def make_stable(self, s: int, digest: bytes, proof: tuple[Checkpoint, ...]) -> None:
        if s <= self.checkpoints.stable:
            return
        if s <= self.last_executed:
            own = self.history.get(s)
            if own is not None and own.state_digest != digest:
                self._ready.notes.append(Note("state-divergence", s))
        self.checkpoints.make_stable(s, digest, proof)
        self.log.collect(s)
        self.votes.forget_below(s + 1)
        # votes at executed sequences are closed (_may_refuse): forget them, or the requests of
        # every executed batch a NEW-VIEW re-issues would stay in ``voted`` for ever
        done = min(s, self.last_executed)
        self.voted = {k: q for k, q in self.voted.items() if q > done}
        self._ready.persist.append(StableRecord(s, digest, proof))
        if s > self.last_executed:
            self.start_fetch(s, digest, proof)
        if self.next_sequence < s:
            self.next_sequence = s
        if self.is_primary and self.active:
            self._maybe_send_batch()

    def start_fetch(self, s: int, digest: bytes, proof: tuple[Checkpoint, ...]) -> None:
        target = self.fetch_target
        if target is not None and target[0] >= s:
            return
        self.fetch_target = (s, digest, proof)
        self.fetch_round = 0
        self._ready.notes.append(Note("state-transfer", (self.last_executed, s)))
        self.send_fetch()

    def send_fetch(self) -> None:
        target = self.fetch_target
        assert target is not None
        peers = [c.replica for c in target[2] if c.replica != self.node_id] or list(self.others)
        dst = peers[self.fetch_round % len(peers)]
        self.fetch_round += 1
        msg = self._seal(Fetch(self.last_executed + 1, self.node_id))
        self._send((dst,), msg)
        self.fetch_deadline = self.now + self.config.fetch_timeout_us

    def handle_fetch(self, src: int, msg: Fetch) -> None:
        """Answer with the executed batches from ``msg.sequence`` to a stable checkpoint.

        The answer ends at the furthest checkpoint this replica made stable whose batches fit
        in ``max_state_bytes`` (at least the first one past ``msg.sequence``), with that
        checkpoint's proof: a replica far behind receives its history in bounded pieces, checks
        each against its 2f+1 certificate and asks for the next, so no STATE outgrows the
        wire's frame limit.
        """
        if src != msg.replica or msg.replica >= self.n or src == self.node_id:
            self._reject(msg, "forged sender")
            return
        if not self._verify(src, msg):
            self._reject(msg, "not authentic")
            return
        checkpoints = self.checkpoints
        stable = checkpoints.stable
        if stable == 0 or not 1 <= msg.sequence <= stable:
            self._reject(msg, "nothing to transfer")
            return
        budget = self.config.max_state_bytes
        proofs = checkpoints.proofs
        batches: list[StateBatch] = []
        end = 0
        size = 0
        for s in range(msg.sequence, stable + 1):
            b = self.history.get(s)
            if b is None:
                self._reject(msg, "history incomplete")
                return
            size += 64 + sum(len(item.encode()) for item in b.items)
            if size > budget and end:
                break
            batches.append(StateBatch(s, b.timestamp, b.items))
            if s == stable or s in proofs:
                end = s
                if size > budget:
                    break
        del batches[end + 1 - msg.sequence :]
        proof = checkpoints.stable_proof if end == stable else proofs[end]
        state = State(msg.sequence, end, tuple(batches), proof, self.node_id)
        self._send((src,), self._seal(state))

    def handle_state(self, src: int, msg: State) -> None:
        """Check a STATE answer against its 2f+1 checkpoint proof, then apply it."""
        if src != msg.replica or msg.replica >= self.n:
            self._reject(msg, "forged sender")
            return
        if msg.sequence != self.last_executed + 1 or msg.checkpoint_sequence < msg.sequence:
            self._reject(msg, "unexpected state")
            return
        if len(msg.batches) != msg.checkpoint_sequence + 1 - msg.sequence:
            self._reject(msg, "state batches incomplete")
            return
        if not self._verify(src, msg):
            self._reject(msg, "not authentic")
            return
        digest = verify_proof(
            msg.proof, msg.checkpoint_sequence, self.n, self.quorum, self.keyring.verify
        )
        if digest is None:
            self._reject(msg, "bad checkpoint proof")
            return
        d = self.state_digest
        digests = []
        for i, b in enumerate(msg.batches):
            if b.sequence != msg.sequence + i:
                self._reject(msg, "state batches out of order")
                return
            bd = compute_batch_digest(b.timestamp, b.items)
            digests.append(bd)
            d = chain_digest(d, b.sequence, bd)
            self.hash_work["digest"] += 2
        if d != digest:
            self._reject(msg, "state does not match its proof")
            return
        for b, bd in zip(msg.batches, digests, strict=True):
            self._execute(b.sequence, b.timestamp, b.items, bd, replies=False)
        self._ready.notes.append(Note("state-transferred", (msg.sequence, msg.checkpoint_sequence)))
        cs = msg.checkpoint_sequence
        if cs > self.checkpoints.stable:
            self.checkpoints.make_stable(cs, digest, msg.proof)
            self.log.collect(cs)
            self.votes.forget_below(cs + 1)
            self._ready.persist.append(StableRecord(cs, digest, msg.proof))
        if self.next_sequence < cs:
            self.next_sequence = cs
        target = self.fetch_target
        if target is not None and cs >= target[0]:
            self.fetch_target = None
            self.fetch_deadline = None
        elif target is not None:
            self.send_fetch()
        else:
            # a restart's FETCH has no target: the answer may be one piece of a longer history
            # (handle_fetch bounds it), so ask its sender for more; "nothing to transfer" ends it
            self._send((src,), self._seal(Fetch(self.last_executed + 1, self.node_id)))
        self._execute_ready()
