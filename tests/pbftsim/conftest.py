"""Shared helpers of the PBFT-in-the-simulator tests: the message-count formula of tests/pbft."""

from __future__ import annotations

import sys
from pathlib import Path

# The fault-free message-count formula lives with the PBFT unit tests (pbft_harness.py).
_PBFT_TESTS = str(Path(__file__).resolve().parent.parent / "pbft")
if _PBFT_TESTS not in sys.path:
    sys.path.insert(0, _PBFT_TESTS)
