"""Raft elections (§5.2, §5.4.1): randomized timeouts without randomness, and the vote tally.

Theory of operation
-------------------
Raft avoids split votes by giving every server a random election timeout (§5.2: "chosen randomly
from a fixed interval, e.g. 150-300 ms"). The sans-IO core owns no randomness, so the "random"
part is a deterministic function of a seed given at construction, the node and the term:

    timeout(node, term) = base + (SHA-256(seed || node || term) mod base)

uniform over ``[base, 2 * base)`` like the paper's interval, different for each node and
re-drawn every term, and identical on every run with the same seed (:func:`election_timeout`).

A candidate becomes leader with votes from a majority of the ``n`` servers, its own included
(:class:`Tally`).
"""

from __future__ import annotations

from medbench.hashing import sha256


def election_timeout(seed: bytes, node: int, term: int, base_us: int) -> int:
    """The election timeout of ``node`` in ``term``: ``base_us`` plus a jitter in
    ``[0, base_us)`` drawn from ``SHA-256(seed || node || term)`` (see the module docstring)."""
    h = sha256(seed + node.to_bytes(8, "big", signed=True) + term.to_bytes(8, "big"))
    return base_us + int.from_bytes(h[:8], "big") % max(1, base_us)


def majority(n: int) -> int:
    """Servers in a majority of ``n``: ``n // 2 + 1``."""
    return n // 2 + 1


class Tally:
    """The votes a candidate collected in one term."""

    def __init__(self, n: int, term: int, own: int) -> None:
        self.n = n
        self.term = term
        self.granted: set[int] = {own}
        self.refused: set[int] = set()

    def add(self, voter: int, granted: bool) -> bool:
        """Count one answer; True once a majority granted."""
        (self.granted if granted else self.refused).add(voter)
        return self.won

    @property
    def won(self) -> bool:
        """A majority granted its vote."""
        return len(self.granted) >= majority(self.n)
