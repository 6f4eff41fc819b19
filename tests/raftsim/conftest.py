"""Shared helpers of the Raft-in-the-simulator tests: the formulas of tests/raft."""

from __future__ import annotations

import sys
from pathlib import Path

# The fault-free message and byte formulas live with the Raft unit tests (raft_harness.py).
_RAFT_TESTS = str(Path(__file__).resolve().parent.parent / "raft")
if _RAFT_TESTS not in sys.path:
    sys.path.insert(0, _RAFT_TESTS)
