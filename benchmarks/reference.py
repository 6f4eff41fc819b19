"""The reference workload every gated case is measured against (``benchmarks/gate.py``).

A fixed pure-Python mix (integer arithmetic, dict inserts, a sort, SHA-256 over small inputs),
timed *beside each case*: ``benchmarks/conftest.py`` runs it just before and just after every
benchmark and records the best time in the case's ``extra_info["reference_s"]``. A slower or
busier machine slows the reference and the case alike, so ``reference time / case time`` stays
put while a regression in the case lowers it; timing it next to each case (not once per session)
keeps the two under the same load on a shared machine.
"""

from __future__ import annotations

import hashlib
import time

REFERENCE_KEYS = 5_000
REFERENCE_KEY = "reference_s"
"""The ``extra_info`` key of a case's reference time (seconds, best of the samples)."""


def reference_workload(keys: int = REFERENCE_KEYS) -> int:
    """The fixed workload; returns a checksum that depends on every step."""
    table: dict[int, int] = {}
    acc = 0
    for i in range(keys):
        k = (i * 2654435761) & 0xFFFFFFFF
        table[k] = i
        acc ^= k
    items = sorted(table.items())
    h = hashlib.sha256()
    for k, _v in items[: keys // 4]:
        h.update(k.to_bytes(4, "big"))
    return (acc ^ len(items) ^ h.digest()[0]) & 0xFFFF


def best_time(samples: int = 7) -> float:
    """The best of ``samples`` timings of :func:`reference_workload`, in seconds of this
    process's CPU time (the clock the benchmark cases are timed with, ``make bench-check``)."""
    best = float("inf")
    for _ in range(samples):
        t0 = time.process_time()
        reference_workload()
        best = min(best, time.process_time() - t0)
    return best
