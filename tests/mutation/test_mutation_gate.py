"""The mutation gate inside ``make test``: the catalogue applies, and the quick plan kills >= 90 %.

``make mutants`` runs the full plan (``runner.py --plan full``); here the quick plan runs once per
``make test``, on the native run (marker ``once``, which ``make test-pure`` deselects: the mutants
are edits of pure-Python protocol code, the same on both backends; the pure-Python run of the
schedules covers the reference quorum tracker). The quick plan's draws are all draws of the
normal suite (the findings, the first 264 stratified draws, the first random, recovery and MAC
seeds, the Twins strides, the first Medical Chain seed), so the unmutated tree passes it whenever
``make test`` passes; the runner skips its baseline here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from catalogue import CATALOGUE  # noqa: E402
from runner import check_catalogue  # noqa: E402


def test_the_catalogue_applies_to_the_tree() -> None:
    assert len(CATALOGUE) >= 25
    assert len({m.id for m in CATALOGUE}) == len(CATALOGUE)
    assert check_catalogue(HERE.parents[1] / "medbench") == []


def test_an_edit_that_no_longer_applies_fails_loudly() -> None:
    m = CATALOGUE[0]
    with pytest.raises(ValueError, match="occurs 0 times"):
        m.apply("nothing to see here")


@pytest.mark.once  # make test-pure deselects it (see the module docstring)
def test_the_quick_gate_kills_at_least_90_percent(tmp_path: Path) -> None:
    table = tmp_path / "mutants-quick.md"
    proc = subprocess.run(
        [sys.executable, str(HERE / "runner.py"), "--plan", "quick", "--jobs", "2",
         "--no-baseline", "--need", "90", "--table", str(table)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    print(table.read_text())
