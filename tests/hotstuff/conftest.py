"""Fixtures of the HotStuff tests (the network harness lives in ``hotstuff_harness.py``)."""

from __future__ import annotations

import pytest
from hotstuff_harness import Network


@pytest.fixture
def net4() -> Network:
    """Four replicas (f = 1) and two clients, modeled authentication, default parameters."""
    return Network(n=4, clients=2, seed=7)
