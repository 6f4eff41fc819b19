"""The replica's message log: one slot per sequence number, and the records it persists.

Theory of operation
-------------------
TOCS 2002 §4.2 keeps, per sequence number ``n`` inside the watermarks, the accepted PRE-PREPARE
and the PREPARE/COMMIT messages received for it. A :class:`Slot` holds:

* the pre-prepare accepted *in the current view* (at most one per view: a second one with another
  digest is equivocation and is refused);
* the PREPAREs received, keyed by ``(view, digest)`` so early prepares (before their pre-prepare)
  are kept; the counting itself is done by :class:`medbench.quorum.QuorumTracker`;
* ``proof``: the highest-view *prepared certificate* (pre-prepare + 2f prepares). It survives view
  changes: it is what the replica reports in its VIEW-CHANGE (TOCS §4.4), and it is persisted
  before the COMMIT that it justifies is sent, so a restarted replica cannot forget it;
* ``commit_sent`` (prepared in this view, so this replica voted COMMIT once, never again with
  another digest) and ``committed`` (committed-local; permanent).

Slots at or below the stable checkpoint are garbage-collected (:meth:`Log.collect`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from medbench.consensus.pbft.messages import Checkpoint, Item, Prepare, PreparedProof, PrePrepare

PREPARE_PHASE = 1
"""QuorumTracker phase of PREPARE votes (the pre-prepare counts as the primary's)."""
COMMIT_PHASE = 2
"""QuorumTracker phase of COMMIT votes."""


@dataclass(slots=True)
class Slot:
    """Everything the replica knows about one sequence number."""

    sequence: int
    view: int = -1
    pre_prepare: PrePrepare | None = None
    digest: bytes | None = None
    prepares: dict[tuple[int, bytes], dict[int, Prepare]] = field(default_factory=dict)
    proof: PreparedProof | None = None
    commit_sent: bool = False
    committed: bool = False

    def accept(self, pp: PrePrepare) -> None:
        """Accept ``pp`` as this slot's pre-prepare for ``pp.view`` (view-specific flags reset)."""
        if pp.view != self.view:
            self.commit_sent = False
        self.view = pp.view
        self.pre_prepare = pp
        self.digest = pp.batch_digest

    def add_prepare(self, msg: Prepare) -> None:
        """Keep ``msg`` so it can go into a prepared certificate."""
        key = (msg.view, msg.batch_digest)
        votes = self.prepares.get(key)
        if votes is None:
            votes = self.prepares[key] = {}
        votes[msg.replica] = msg

    def certificate(self, primary: int, need: int) -> PreparedProof:
        """The prepared certificate: the accepted pre-prepare plus ``need`` backup prepares."""
        pp = self.pre_prepare
        assert pp is not None, f"slot {self.sequence}: certificate without a pre-prepare"
        votes = self.prepares.get((pp.view, pp.batch_digest), {})
        chosen = tuple(votes[r] for r in sorted(votes) if r != primary)[:need]
        assert len(chosen) == need, (
            f"slot {self.sequence}: {len(chosen)} backup prepares, need {need}"
        )
        return PreparedProof(pp, chosen)


class Log:
    """The slots between the stable checkpoint and the high watermark."""

    def __init__(self) -> None:
        self._slots: dict[int, Slot] = {}

    def get(self, sequence: int) -> Slot | None:
        """The slot for ``sequence`` if the replica has heard of it."""
        return self._slots.get(sequence)

    def slot(self, sequence: int) -> Slot:
        """The slot for ``sequence``, created empty if needed."""
        s = self._slots.get(sequence)
        if s is None:
            s = self._slots[sequence] = Slot(sequence)
        return s

    def collect(self, stable: int) -> None:
        """Drop every slot at or below the stable checkpoint ``stable`` (TOCS §4.3)."""
        for seq in [s for s in self._slots if s <= stable]:
            del self._slots[seq]

    def __iter__(self) -> Iterator[Slot]:
        return iter(sorted(self._slots.values(), key=lambda s: s.sequence))

    def __len__(self) -> int:
        return len(self._slots)


# --- records the replica persists (Ready.persist) and restores from after a crash -------------


@dataclass(frozen=True, slots=True)
class ExecutedBatch:
    """A committed batch as executed: what goes out in ``Ready.committed`` and is persisted.

    ``requests`` are the requests actually executed (duplicates by client timestamp skipped);
    ``blocks`` the blocks appended to the chain by this batch; ``state_digest`` the chained digest
    after it (:func:`medbench.consensus.pbft.checkpoint.chain_digest`).
    """

    sequence: int
    timestamp: int
    batch_digest: bytes
    items: tuple[Item, ...]
    requests: tuple[Any, ...]
    blocks: tuple[Any, ...]
    state_digest: bytes


@dataclass(frozen=True, slots=True)
class StableRecord:
    """The replica's stable checkpoint and its 2f+1 proof."""

    sequence: int
    state_digest: bytes
    proof: tuple[Checkpoint, ...]


@dataclass(frozen=True, slots=True)
class ViewRecord:
    """The replica entered ``view``; ``active`` once its NEW-VIEW was accepted."""

    view: int
    active: bool
