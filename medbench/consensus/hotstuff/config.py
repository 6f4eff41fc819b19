"""The parameters of a HotStuff run (:class:`Config`), all times in integer microseconds.

Theory of operation
-------------------
One frozen value shared by every replica of a run: the group size ``n`` (the quorum is
``strong_quorum(n)``, :mod:`.certificates`), batching (:mod:`.replica`), the pacemaker's timeouts
and grace period (:mod:`.pacemaker`), the clock skew a voter accepts for a block's time
(:mod:`.admission`), block sync (:mod:`.sync`), and the bounds that keep a faulty peer from
filling a replica's memory (buffered proposals, votes ahead of the view, pending requests per
client).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Config:
    """Protocol parameters of one run (all times in integer microseconds)."""

    n: int
    max_batch_size: int = 16
    max_batch_delay_us: int = 0
    view_timeout_us: int = 500_000
    max_view_timeout_us: int = 60_000_000
    max_clock_skew_us: int = 10_000_000
    sync_timeout_us: int = 300_000
    max_sync_blocks: int = 64
    max_staged_blocks: int = 1 << 16
    max_buffered_proposals: int = 64
    vote_window: int = 1_000
    certificate_grace_us: int = 5_000
    max_pending_per_client: int = 64

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("need at least one replica")
        if self.max_batch_size < 1 or self.max_sync_blocks < 1:
            raise ValueError("batch and sync sizes must be positive")
        if self.view_timeout_us < 1 or self.max_view_timeout_us < self.view_timeout_us:
            raise ValueError("need 1 <= view_timeout_us <= max_view_timeout_us")
        if self.max_clock_skew_us < 0 or self.max_batch_delay_us < 0:
            raise ValueError("times must not be negative")

    @property
    def f(self) -> int:
        """Faults tolerated: ``(n - 1) // 3``."""
        return (self.n - 1) // 3
