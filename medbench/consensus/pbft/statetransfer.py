"""Checkpoint and state-transfer handlers of the replica (Castro & Liskov, TOCS 2002 §4.3, §5.3).

Theory of operation
-------------------
Every ``checkpoint_interval`` executed sequences a replica broadcasts its CHECKPOINT; 2f+1
matching ones make it *stable* (:mod:`.checkpoint`): the low watermark moves, the log and the vote
counts below it are dropped. A stable checkpoint beyond the replica's last executed batch means it
fell behind: it sends FETCH to one of the replicas that signed the proof (another one after each
``fetch_timeout_us``), and accepts a STATE answer only if the batches it carries chain, digest by
digest, from its own state to the 2f+1-certified one. A restarted replica asks everyone.

The handlers are functions of the :class:`~.replica.Replica` whose state they change; the
replica's handler table binds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medbench.consensus.pbft.checkpoint import chain_digest, verify_proof
from medbench.consensus.pbft.log import StableRecord
from medbench.consensus.pbft.messages import (
    Checkpoint,
    Fetch,
    State,
    StateBatch,
    compute_batch_digest,
)
from medbench.node import Note

if TYPE_CHECKING:
    from medbench.consensus.pbft.replica import Replica


# --- checkpoints and state transfer (TOCS §4.3, §5.3) ----------------------------------------


def handle_checkpoint(replica: Replica, src: int, msg: Checkpoint) -> None:
    """Collect checkpoints; 2f+1 matching make one stable (or reveal that we fell behind)."""
    if src != msg.replica or msg.replica >= replica.n:
        replica._reject(msg, "forged sender")
        return
    if msg.sequence <= replica.checkpoints.stable:
        return  # stale but harmless: the replica already has a newer stable checkpoint
    if not replica._verify(src, msg):
        replica._reject(msg, "not authentic")
        return
    add_checkpoint(replica, msg)


def add_checkpoint(replica: Replica, msg: Checkpoint) -> None:
    proof = replica.checkpoints.add(msg, replica.quorum)
    if proof is not None:
        make_stable(replica, msg.sequence, msg.state_digest, proof)


def make_stable(replica: Replica, s: int, digest: bytes, proof: tuple[Checkpoint, ...]) -> None:
    if s <= replica.checkpoints.stable:
        return
    if s <= replica.last_executed:
        own = replica.history.get(s)
        if own is not None and own.state_digest != digest:
            replica._ready.notes.append(Note("state-divergence", s))
    replica.checkpoints.make_stable(s, digest, proof)
    replica.log.collect(s)
    replica.votes.forget_below(s + 1)
    replica._ready.persist.append(StableRecord(s, digest, proof))
    if s > replica.last_executed:
        start_fetch(replica, s, digest, proof)
    if replica.next_sequence < s:
        replica.next_sequence = s
    if replica.is_primary and replica.active:
        replica._maybe_send_batch()


def start_fetch(replica: Replica, s: int, digest: bytes, proof: tuple[Checkpoint, ...]) -> None:
    target = replica.fetch_target
    if target is not None and target[0] >= s:
        return
    replica.fetch_target = (s, digest, proof)
    replica.fetch_round = 0
    replica._ready.notes.append(Note("state-transfer", (replica.last_executed, s)))
    send_fetch(replica)


def send_fetch(replica: Replica) -> None:
    target = replica.fetch_target
    assert target is not None
    peers = [c.replica for c in target[2] if c.replica != replica.node_id] or list(replica.others)
    dst = peers[replica.fetch_round % len(peers)]
    replica.fetch_round += 1
    msg = replica._seal(Fetch(replica.last_executed + 1, replica.node_id))
    replica._send((dst,), msg)
    replica.fetch_deadline = replica.now + replica.config.fetch_timeout_us


def handle_fetch(replica: Replica, src: int, msg: Fetch) -> None:
    """Answer with the executed batches from ``msg.sequence`` to the stable checkpoint."""
    if src != msg.replica or msg.replica >= replica.n or src == replica.node_id:
        replica._reject(msg, "forged sender")
        return
    if not replica._verify(src, msg):
        replica._reject(msg, "not authentic")
        return
    stable = replica.checkpoints.stable
    if stable == 0 or not 1 <= msg.sequence <= stable:
        replica._reject(msg, "nothing to transfer")
        return
    batches = tuple(
        StateBatch(s, b.timestamp, b.items)
        for s in range(msg.sequence, stable + 1)
        if (b := replica.history.get(s)) is not None
    )
    if len(batches) != stable + 1 - msg.sequence:
        replica._reject(msg, "history incomplete")
        return
    state = State(msg.sequence, stable, batches, replica.checkpoints.stable_proof, replica.node_id)
    replica._send((src,), replica._seal(state))


def handle_state(replica: Replica, src: int, msg: State) -> None:
    """Check a STATE answer against its 2f+1 checkpoint proof, then apply it."""
    if src != msg.replica or msg.replica >= replica.n:
        replica._reject(msg, "forged sender")
        return
    if msg.sequence != replica.last_executed + 1 or msg.checkpoint_sequence < msg.sequence:
        replica._reject(msg, "unexpected state")
        return
    if len(msg.batches) != msg.checkpoint_sequence + 1 - msg.sequence:
        replica._reject(msg, "state batches incomplete")
        return
    if not replica._verify(src, msg):
        replica._reject(msg, "not authentic")
        return
    digest = verify_proof(
        msg.proof, msg.checkpoint_sequence, replica.n, replica.quorum, replica.keyring.verify
    )
    if digest is None:
        replica._reject(msg, "bad checkpoint proof")
        return
    d = replica.state_digest
    digests = []
    for i, b in enumerate(msg.batches):
        if b.sequence != msg.sequence + i:
            replica._reject(msg, "state batches out of order")
            return
        bd = compute_batch_digest(b.timestamp, b.items)
        digests.append(bd)
        d = chain_digest(d, b.sequence, bd)
        replica.hash_work["digest"] += 2
    if d != digest:
        replica._reject(msg, "state does not match its proof")
        return
    for b, bd in zip(msg.batches, digests, strict=True):
        replica._execute(b.sequence, b.timestamp, b.items, bd, replies=False)
    replica._ready.notes.append(Note("state-transferred", (msg.sequence, msg.checkpoint_sequence)))
    cs = msg.checkpoint_sequence
    if cs > replica.checkpoints.stable:
        replica.checkpoints.make_stable(cs, digest, msg.proof)
        replica.log.collect(cs)
        replica.votes.forget_below(cs + 1)
        replica._ready.persist.append(StableRecord(cs, digest, msg.proof))
    if replica.next_sequence < cs:
        replica.next_sequence = cs
    target = replica.fetch_target
    if target is not None and cs >= target[0]:
        replica.fetch_target = None
        replica.fetch_deadline = None
    elif target is not None:
        send_fetch(replica)
    replica._execute_ready()
