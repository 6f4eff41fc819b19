"""Fixtures of the Raft tests (the network harness lives in ``raft_harness.py``)."""

from __future__ import annotations

import pytest
from raft_harness import Network


@pytest.fixture
def net3() -> Network:
    """Three nodes (one crash tolerated) and two clients, default parameters."""
    return Network(n=3, clients=2, seed=7)
