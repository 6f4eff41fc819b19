"""Benchmark session hooks: record what the gate needs to know about the machine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.reference import REFERENCE_KEY, best_time
from medbench import backend

SHA_NI_KEY = "medbench_sha_ni"


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    """Record whether the native core found the SHA extensions on this CPU (the gate treats the
    ratios that need them as not applicable on a CPU without them, instead of failing)."""
    hashing = backend.native("hashing")
    machine_info[SHA_NI_KEY] = bool(hashing is not None and hashing._shani_available())


@pytest.fixture(autouse=True)
def reference_beside(request: pytest.FixtureRequest) -> Iterator[None]:
    """Time the reference workload just before and just after every benchmark case and record
    the best in its ``extra_info["reference_s"]`` (the gate's ratios divide by the case's time)."""
    if "benchmark" not in request.fixturenames:
        yield
        return
    bench = request.getfixturevalue("benchmark")  # set up first, so torn down after this one
    before = best_time()
    yield
    bench.extra_info[REFERENCE_KEY] = min(before, best_time())
