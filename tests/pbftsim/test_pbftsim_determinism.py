"""Determinism: the same (parameters, seed) give the same row and trace digest, on either backend.

One side runs in this process (native core if built), the other in a subprocess with
``MEDBENCH_PURE_PYTHON=1`` (the pure-Python reference everywhere); host-dependent columns
(``wall_s``, ``sim_msgs_per_wall_s``) are left out of the comparison.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from medbench import experiments

ROOT = Path(__file__).resolve().parents[2]

CASES: list[dict[str, Any]] = [
    {"protocol": "pbft", "n": 4, "requests": 40, "clients": 4, "batch": 4, "batch_delay_us": 2000},
    {
        "protocol": "pbft",
        "n": 7,
        "requests": 30,
        "clients": 3,
        "topology": "city",
        "jitter_us": 300,
        "loss": 0.01,
        "byzantine": "silent-primary",
        "view_change_timeout_us": 200_000,
        "client_timeout_us": 200_000,
    },
    {
        "protocol": "pbft",
        "n": 4,
        "requests": 20,
        "clients": 2,
        "block_mode": "blocker",
        "block_size": 5,
        "block_interval_us": 50_000,
        "auth": "macs",
        "rate_tps": 200,  # one request per 5 ms
        "faults": "crash:2@20ms;recover:2@60ms",
    },
]

_CHILD = """
import json, sys
from medbench import backend, experiments
params, seed = json.loads(sys.argv[1]), int(sys.argv[2])
row = experiments.run(params, seed)
for col in experiments.NONDETERMINISTIC_COLUMNS:
    row.pop(col, None)
print(json.dumps({"row": row, "pure": backend.pure_python_forced()}, default=str))
"""


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    """The row without host-dependent columns, JSON-normalised (NaN as a string)."""
    out = {}
    for key, value in row.items():
        if key in experiments.NONDETERMINISTIC_COLUMNS:
            continue
        if isinstance(value, float) and math.isnan(value):
            value = "nan"
        out[key] = value
    result: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return result


def run_pure(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The row computed by a subprocess forced onto the pure-Python backend."""
    env = {**os.environ, "MEDBENCH_PURE_PYTHON": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(params), str(seed)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1].replace("NaN", '"nan"'))
    assert data["pure"] is True
    return comparable(data["row"])


@pytest.mark.parametrize("case", range(len(CASES)))
def test_same_row_twice_in_process(case: int) -> None:
    """Two runs in one process agree on every deterministic column."""
    params = CASES[case]
    first = comparable(experiments.run(params, 3))
    second = comparable(experiments.run(params, 3))
    assert first == second
    assert first["trace_digest"]
    assert first["completed"] == params["requests"]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_same_row_with_pure_python_backend(case: int) -> None:
    """The subprocess on the pure-Python reference produces the identical row and digest."""
    params = CASES[case]
    here = comparable(experiments.run(params, 5))
    there = run_pure(params, 5)
    assert here["trace_digest"] == there["trace_digest"]
    assert here == there


def test_seed_changes_the_trace() -> None:
    """A different seed (keys, payloads, jitter) gives a different trace digest."""
    params = CASES[1]
    assert experiments.run(params, 1)["trace_digest"] != experiments.run(params, 2)["trace_digest"]
