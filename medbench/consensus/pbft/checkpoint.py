"""Checkpoints, watermarks and the chained state digest (Castro & Liskov, TOCS 2002 §4.3).

Theory of operation
-------------------
The replicated state is the ordered history of executed batches (the ledger). Its digest is a
hash chain, ``D_s = sha256(D_{s-1} || s || batch_digest_s)`` with ``D_0`` fixed, so two replicas
have the same digest at ``s`` exactly when they executed the same batches at ``1..s``, and a
replica can check a run of batches received by state transfer against one trusted digest.

Every ``K`` sequence numbers a replica broadcasts ``<CHECKPOINT, s, D_s, i>``. When 2f+1 replicas
sent matching ones, the checkpoint is *stable*: the 2f+1 messages are its proof, the low watermark
``h`` moves to ``s``, and the log and vote counts below it are discarded. Protocol messages are
accepted only for ``h < n <= h + L`` (the log window ``L``).

Checkpoints above the window are still useful: they tell a replica that it fell behind. For those
only the newest checkpoint of each replica is kept (memory bounded by ``n``); when 2f+1 of them
agree the replica has a proof and starts a state transfer.

Inside the window each replica's vote counts once per sequence: the first digest it sent is kept,
a second, different one is equivocation, kept as evidence (both messages) and not counted, and the
replica refuses checkpoints at sequences that are not multiples of ``K`` (no honest replica sends
them). So the votes held are bounded by ``n * L / K``, whatever a faulty replica sends.
"""

from __future__ import annotations

from medbench.consensus.pbft.messages import Checkpoint, Verify
from medbench.hashing import sha256

GENESIS_DIGEST = sha256(b"medbench/pbft/genesis-state")


def chain_digest(prev: bytes, sequence: int, batch_digest: bytes) -> bytes:
    """``D_s = sha256(D_{s-1} || s (8 bytes, big-endian) || batch_digest)``."""
    digest: bytes = sha256(prev + sequence.to_bytes(8, "big") + batch_digest)
    return digest


def verify_proof(
    proof: tuple[Checkpoint, ...],
    sequence: int,
    n: int,
    quorum: int,
    verify: Verify,
) -> bytes | None:
    """The state digest ``proof`` certifies for ``sequence``, or ``None`` if it is no proof.

    A proof is at least ``quorum`` (2f+1) CHECKPOINT messages from distinct replicas for the
    same sequence and digest, each with a valid authenticator.
    """
    if len(proof) < quorum or len(proof) > n:
        return None
    digest = proof[0].state_digest
    seen: set[int] = set()
    for c in proof:
        if c.sequence != sequence or c.state_digest != digest:
            return None
        if not 0 <= c.replica < n or c.replica in seen:
            return None
        seen.add(c.replica)
    for c in proof:
        if not verify(c.replica, c.body(), c.auth):
            return None
    return digest


class Checkpoints:
    """Stable checkpoint, watermarks and the checkpoint votes of one replica."""

    def __init__(self, n: int, interval: int, window: int) -> None:
        if interval < 1 or window < interval:
            raise ValueError("need checkpoint interval >= 1 and log window >= interval")
        self.n = n
        self.interval = interval
        self.window = window
        self.stable = 0
        self.stable_digest = GENESIS_DIGEST
        self.stable_proof: tuple[Checkpoint, ...] = ()
        # every checkpoint this replica made stable: a state transfer may end at any of them,
        # so a replica far behind is sent its history in bounded pieces (statetransfer)
        self.proofs: dict[int, tuple[Checkpoint, ...]] = {}
        # sequence -> digest -> replica -> message (inside the window)
        self._votes: dict[int, dict[bytes, dict[int, Checkpoint]]] = {}
        # newest checkpoint per replica above the window
        self._far: dict[int, Checkpoint] = {}
        # (first, second): a replica's two different digests for one sequence
        self.evidence: list[tuple[Checkpoint, Checkpoint]] = []

    @property
    def low(self) -> int:
        """Low watermark ``h``."""
        return self.stable

    @property
    def high(self) -> int:
        """High watermark ``h + L``."""
        return self.stable + self.window

    def add(self, msg: Checkpoint, quorum: int) -> tuple[Checkpoint, ...] | None:
        """Record an authenticated checkpoint; return a proof if it makes one (else ``None``)."""
        s = msg.sequence
        if s <= self.stable:
            return None
        if s > self.high:
            old = self._far.get(msg.replica)
            if old is None or old.sequence < s:
                self._far[msg.replica] = msg
            same = [
                c
                for c in self._far.values()
                if c.sequence == s and c.state_digest == msg.state_digest
            ]
            return tuple(same) if len(same) >= quorum else None
        by_digest = self._votes.setdefault(s, {})
        for digest, held in by_digest.items():  # at most one digest per replica: <= n entries
            first = held.get(msg.replica)
            if first is not None:
                if digest != msg.state_digest:
                    self.evidence.append((first, msg))
                return None
        voters = by_digest.setdefault(msg.state_digest, {})
        voters[msg.replica] = msg
        if len(voters) == quorum:
            return tuple(voters[r] for r in sorted(voters))
        return None

    def take_evidence(self) -> list[tuple[Checkpoint, Checkpoint]]:
        """Return and clear the checkpoint equivocations seen so far."""
        out, self.evidence = self.evidence, []
        return out

    def make_stable(self, sequence: int, digest: bytes, proof: tuple[Checkpoint, ...]) -> None:
        """Move the low watermark to ``sequence`` and forget older votes."""
        assert sequence > self.stable, f"stable checkpoint going back: {sequence} <= {self.stable}"
        self.stable = sequence
        self.stable_digest = digest
        self.stable_proof = proof
        self.proofs[sequence] = proof
        for s in [s for s in self._votes if s <= sequence]:
            del self._votes[s]
        for r in [r for r, c in self._far.items() if c.sequence <= self.high]:
            msg = self._far.pop(r)
            if msg.sequence > sequence:
                by_digest = self._votes.setdefault(msg.sequence, {})
                by_digest.setdefault(msg.state_digest, {})[msg.replica] = msg
