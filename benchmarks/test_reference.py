"""The reference workload as a case of its own (its time is printed; its checksum is gated)."""

from __future__ import annotations

from typing import Any

from benchmarks.reference import REFERENCE_KEYS, reference_workload


def test_reference_python(benchmark: Any) -> None:
    checksum = benchmark.pedantic(reference_workload, rounds=25, iterations=1, warmup_rounds=2)
    benchmark.extra_info["checksum"] = checksum
    benchmark.extra_info["keys"] = REFERENCE_KEYS
