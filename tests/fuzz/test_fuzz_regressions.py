"""Every crasher the fuzzers (or the review behind them) found, replayed through its harness on
the backend this suite runs with: each must now be accepted or refused with the target's typed
error, within a deadline (``tests/fuzz/crashers/<target>/``, described in its README).

A test here that fails names an input that still crashes, hangs or breaks a check; see the
README for the four known defects the lead fixes on main (their inputs fail until then).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_support import deadline, harness

from fuzz.common import outcome

CRASHERS = Path(__file__).resolve().parent / "crashers"
ROOT = CRASHERS.parents[2]
CASES = sorted(p for p in CRASHERS.glob("*/*") if p.is_file() and p.suffix == ".bin")


def test_every_crasher_names_a_target() -> None:
    import fuzz

    assert CASES, "no crasher files found"
    assert {p.parent.name for p in CASES} <= set(fuzz.TARGETS)


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_crasher_is_handled(path: Path) -> None:
    if path.name.startswith("hang-"):
        # it hung inside C code once (where no signal gets through): replay it in a child
        # process that a timeout can stop, on this suite's backend (the environment is inherited)
        proc = subprocess.run(
            [sys.executable, "-m", "fuzz", "replay", path.parent.name, str(path)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return
    h, one_input = harness(path.parent.name)
    with deadline(20):
        result = outcome(h, one_input, path.read_bytes())
    assert result in ("accepted", "refused", "skipped")
