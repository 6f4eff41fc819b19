"""The simulator benchmarks run as a smoke test: ``--benchmark-disable`` runs each case once.

pytest-benchmark leaves ``benchmark.stats`` unset when disabled, so a benchmark that reads it
fails only in that mode; this runs the smallest case of each simulator benchmark that way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASES = (  # n = 4 of each simulator benchmark
    "benchmarks/test_sim.py::test_driver_messages_per_second[none-4]",
    "benchmarks/test_sim.py::test_driver_messages_per_second[profile-4]",
    "benchmarks/test_sim.py::test_toy_quorum_messages_per_second[4]",
    "benchmarks/test_pbft_sim.py::test_pbft_sim_messages_per_second[4-2000]",
)


def test_simulator_benchmarks_run_with_benchmark_disabled() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--benchmark-disable",
        *CASES,
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"\n{len(CASES)} passed" in done.stdout, done.stdout[-2000:]
