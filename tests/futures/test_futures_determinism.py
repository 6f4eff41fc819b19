"""Determinism of the HotStuff and Raft factories: the same (parameters, seed) give the same row
and trace digest, twice in one process and on the pure-Python backend in a subprocess (as
``tests/pbftsim/test_pbftsim_determinism.py`` checks PBFT)."""

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
    {"protocol": "hotstuff", "n": 4, "requests": 30, "clients": 4, "batch": 4, "rate_tps": 0},
    {
        "protocol": "hotstuff",
        "n": 7,
        "requests": 20,
        "clients": 3,
        "topology": "city",
        "jitter_us": 300,
        "loss": 0.01,
        "byzantine": "silent-leader",
        "view_timeout_us": 100_000,
        "block_mode": "blocker",
        "block_size": 5,
        "block_interval_us": 50_000,
        "blocker_turn_us": 50_000,
    },
    {
        "protocol": "raft",
        "n": 5,
        "requests": 30,
        "clients": 3,
        "rate_tps": 200.0,
        "jitter_us": 200,
        "faults": "crash:1@700ms;recover:1@900ms",
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


@pytest.mark.parametrize("case", range(len(CASES)))
def test_same_row_twice_in_process(case: int) -> None:
    params = CASES[case]
    first = comparable(experiments.run(params, 3))
    second = comparable(experiments.run(params, 3))
    assert first == second
    assert first["trace_digest"] and first["completed"] == params["requests"]
    assert first["safety"] is True


def test_same_row_with_pure_python_backend() -> None:
    """One subprocess on the pure-Python reference runs every case: identical rows."""
    env = {**os.environ, "MEDBENCH_PURE_PYTHON": "1", "PYTHONPATH": str(ROOT)}
    for params in CASES:
        here = comparable(experiments.run(params, 5))
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(params), "5"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
            check=True,
        )
        data = json.loads(out.stdout.strip().splitlines()[-1].replace("NaN", '"nan"'))
        assert data["pure"] is True
        assert here == comparable(data["row"])


def test_seed_changes_the_trace() -> None:
    """Jitter, loss and election timeouts come from the seed: other seed, other trace."""
    for params in (CASES[1], CASES[2]):
        assert (
            experiments.run(params, 1)["trace_digest"] != experiments.run(params, 2)["trace_digest"]
        )
