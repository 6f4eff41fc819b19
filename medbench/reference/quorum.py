"""Vote quorums for PBFT certificates (Castro & Liskov, TOCS 2002 §4.2).

Theory of operation
-------------------
A certificate is a set of matching votes from distinct replicas: the same ``(phase, view,
sequence, digest)``. With ``n`` replicas the kit tolerates ``f = (n - 1) // 3`` faulty ones; a
*strong* quorum (prepared, committed, stable checkpoint, new view) is ``ceil((n + f + 1) / 2)``
votes, so that any two strong quorums share at least ``f + 1`` replicas, one of them honest. That
is ``2f + 1`` when ``n = 3f + 1``, the size Castro & Liskov assume; for the sizes in between
(n = 5, 6, 8, ...) ``2f + 1`` would let two quorums meet only in faulty replicas (n = 6, f = 1:
two disjoint sets of 3), so the quorum grows with n instead. A *weak* quorum is ``f + 1`` (client
replies, joining a view change): at least one vote is honest.

:meth:`QuorumTracker.add` counts each voter once per key and answers with a :class:`Status`:
``PENDING`` (counted, threshold not met), ``REACHED`` (exactly once, on the vote that meets the
threshold), ``ALREADY`` (counted, threshold met earlier), ``DUPLICATE`` (this voter already voted
this key; not counted again) or ``CONFLICT`` (this voter already voted a *different* digest for
the same ``(phase, view, sequence)``: not counted, and the pair is kept as :class:`Evidence`).
Everything below a low watermark is forgotten by :meth:`QuorumTracker.forget_below`.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from enum import IntEnum
from typing import NamedTuple


class Status(IntEnum):
    """Outcome of one vote."""

    PENDING = 0
    REACHED = 1
    ALREADY = 2
    DUPLICATE = 3
    CONFLICT = 4


# Enum members as module constants: ``Status.X`` costs a class-attribute lookup through the
# enum metaclass (~0.2 us) on the hot path of every vote.
_PENDING, _REACHED, _ALREADY = Status.PENDING, Status.REACHED, Status.ALREADY
_DUPLICATE, _CONFLICT = Status.DUPLICATE, Status.CONFLICT


class Evidence(NamedTuple):
    """One voter voted two digests for the same (phase, view, sequence)."""

    phase: int
    view: int
    sequence: int
    voter: int
    first_digest: bytes
    second_digest: bytes


MAX_REPLICAS = 1 << 20
"""Largest group size the trackers accept (a round holds one slot per replica)."""


def max_faulty(n: int) -> int:
    """``f = (n - 1) // 3``: how many faulty replicas ``n`` replicas tolerate.

    ``n`` must be a whole number (``TypeError`` otherwise) in ``1..MAX_REPLICAS``
    (``ValueError``).
    """
    n = operator.index(n)
    if not 1 <= n <= MAX_REPLICAS:
        raise ValueError(f"need at least one replica and at most {MAX_REPLICAS}, got n={n}")
    return (n - 1) // 3


def strong_quorum(n: int) -> int:
    """``ceil((n + f + 1) / 2)`` votes (``2f + 1`` when ``n = 3f + 1``): any two such sets share
    at least ``f + 1`` replicas, so at least one honest replica, and ``n - f`` honest replicas
    can always form one."""
    return (n + max_faulty(n) + 2) // 2


def weak_quorum(n: int) -> int:
    """``f + 1`` votes: at least one of them is honest."""
    return max_faulty(n) + 1


def _check_digest(digest: object) -> None:
    if type(digest) is not bytes:
        raise TypeError(f"a digest is bytes, not {type(digest).__name__}")


class QuorumTracker:
    """Counts distinct voters per ``(phase, view, sequence, digest)``; see the module docstring.

    ``thresholds`` maps a phase to the number of votes it needs; phases not listed need a
    strong quorum (``2f + 1``).
    """

    def __init__(self, n: int, thresholds: Mapping[int, int] | None = None) -> None:
        self.f = max_faulty(n)
        self.n = n = operator.index(n)
        self.strong = strong_quorum(n)
        self.weak = self.f + 1
        self._thresholds = {p: operator.index(t) for p, t in dict(thresholds or {}).items()}
        for phase, t in self._thresholds.items():
            if not 1 <= t <= n:
                raise ValueError(f"threshold {t} for phase {phase} outside 1..{n}")
        # sequence -> {(phase, view, digest): set of voters}
        self._votes: dict[int, dict[tuple[int, int, bytes], set[int]]] = {}
        # sequence -> {(phase, view, voter): digest}: the first digest each voter chose
        self._choice: dict[int, dict[tuple[int, int, int], bytes]] = {}
        self._evidence: list[Evidence] = []
        self.low_watermark = 0

    def threshold(self, phase: int) -> int:
        """Votes needed for ``phase``."""
        return self._thresholds.get(phase, self.strong)

    def add(self, phase: int, view: int, sequence: int, digest: bytes, voter: int) -> Status:
        """Count ``voter``'s vote for ``digest``; see :class:`Status` for the answers.

        ``digest`` must be ``bytes`` and ``voter`` a whole number (``TypeError``), in
        ``0..n-1`` (``ValueError``).
        """
        _check_digest(digest)
        if type(voter) is not int:
            voter = operator.index(voter)
        if not 0 <= voter < self.n:
            raise ValueError(f"voter {voter} outside 0..{self.n - 1}")
        if sequence < self.low_watermark:
            raise ValueError(f"sequence {sequence} below low watermark {self.low_watermark}")
        # The hot path of every replica: plain get/insert, no throw-away {} or set() per call.
        choice = self._choice.get(sequence)
        if choice is None:
            choice = self._choice[sequence] = {}
            by_key = self._votes[sequence] = {}
        else:
            by_key = self._votes[sequence]
        ckey = (phase, view, voter)
        chosen = choice.get(ckey)
        if chosen is None:
            choice[ckey] = digest
        elif chosen != digest:
            self._evidence.append(Evidence(phase, view, sequence, voter, chosen, digest))
            return _CONFLICT
        vkey = (phase, view, digest)
        voters = by_key.get(vkey)
        if voters is None:
            voters = by_key[vkey] = {voter}
        elif voter in voters:
            return _DUPLICATE
        else:
            voters.add(voter)
        need = self._thresholds.get(phase, self.strong)
        count = len(voters)
        if count < need:
            return _PENDING
        return _REACHED if count == need else _ALREADY

    def count(self, phase: int, view: int, sequence: int, digest: bytes) -> int:
        """Distinct voters counted for this key."""
        _check_digest(digest)
        return len(self._votes.get(sequence, {}).get((phase, view, digest), ()))

    def voters(self, phase: int, view: int, sequence: int, digest: bytes) -> frozenset[int]:
        """The distinct voters counted for this key."""
        _check_digest(digest)
        return frozenset(self._votes.get(sequence, {}).get((phase, view, digest), ()))

    def reached(self, phase: int, view: int, sequence: int, digest: bytes) -> bool:
        """True once this key has met its phase's threshold."""
        return self.count(phase, view, sequence, digest) >= self.threshold(phase)

    def take_evidence(self) -> list[Evidence]:
        """Return and clear the equivocation evidence gathered so far."""
        out, self._evidence = self._evidence, []
        return out

    def forget_below(self, low_watermark: int) -> None:
        """Drop every vote for a sequence below ``low_watermark`` (after a stable checkpoint)."""
        if low_watermark <= self.low_watermark:
            return
        self.low_watermark = low_watermark
        for table in (self._votes, self._choice):
            for seq in [s for s in table if s < low_watermark]:
                del table[seq]

    def __len__(self) -> int:
        """How many sequences currently hold votes."""
        return len(self._choice)


def implementation() -> str:
    """Which code serves this module."""
    return "reference (dict + set)"
