"""Shared helpers of the HotStuff-in-the-simulator tests: the formulas of tests/hotstuff."""

from __future__ import annotations

import sys
from pathlib import Path

# The fault-free message and byte formulas live with the HotStuff unit tests (hotstuff_harness).
_HOTSTUFF_TESTS = str(Path(__file__).resolve().parent.parent / "hotstuff")
if _HOTSTUFF_TESTS not in sys.path:
    sys.path.insert(0, _HOTSTUFF_TESTS)
