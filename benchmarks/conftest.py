"""Benchmark session hooks: record what the gate needs to know about the machine."""

from __future__ import annotations

from typing import Any

from medbench import backend

SHA_NI_KEY = "medbench_sha_ni"


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    """Record whether the native core found the SHA extensions on this CPU (the gate treats the
    ratios that need them as not applicable on a CPU without them, instead of failing)."""
    hashing = backend.native("hashing")
    machine_info[SHA_NI_KEY] = bool(hashing is not None and hashing._shani_available())
