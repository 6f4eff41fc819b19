"""The reference workload every gated ratio is measured against (benchmarks/gate.py).

A fixed pure-Python mix (integer arithmetic, dict inserts, a sort, SHA-256 over small inputs)
run in the same benchmark session as every other case: a slower or busier machine slows it and
the case alike, so ``reference time / case time`` stays put while a regression in the case
lowers it. Its result is an exact count the gate checks, so the workload cannot shrink silently.
"""

from __future__ import annotations

import hashlib
from typing import Any

REFERENCE_KEYS = 20_000


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


def test_reference_python(benchmark: Any) -> None:
    checksum = benchmark.pedantic(reference_workload, rounds=25, iterations=1, warmup_rounds=2)
    benchmark.extra_info["checksum"] = checksum
    benchmark.extra_info["keys"] = REFERENCE_KEYS
