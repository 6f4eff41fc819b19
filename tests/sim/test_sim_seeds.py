"""Seeds matter on the default network: its seeded jitter makes each seed's trace its own."""

from __future__ import annotations

import pytest

from medbench import experiments as ex
from medbench.experiments.runner import DEFAULTS
from medbench.study import table1
from medbench.study.measure import run_params

SETTINGS = table1.Settings.quick()


def digest(protocol: str, seed: int) -> str:
    """The trace digest of Table 1's quick workload for ``protocol`` at n = 4, default network."""
    system = next(s for s in table1.SYSTEMS if s.protocol == protocol and not s.variant_of)
    params = run_params(system, 4, system.options_for(4), SETTINGS)
    assert "jitter_us" not in params  # the default network's jitter, not a test's own
    sim, _dep = ex.build_simulator(params, seed)
    record = sim.run(60_000_000, stop_when_complete=True)
    assert record.completed, protocol
    return record.trace_digest


def test_default_network_has_jitter() -> None:
    assert DEFAULTS["jitter_us"] > 0
    assert DEFAULTS["jitter_us"] == DEFAULTS["latency_us"] // 10


@pytest.mark.parametrize("protocol", ["pbft", "poa", "central"])
def test_seeds_give_different_traces(protocol: str) -> None:
    digests = [digest(protocol, seed) for seed in range(3)]
    assert len(set(digests)) == 3, digests


@pytest.mark.parametrize("protocol", ["pbft", "poa", "central"])
def test_same_seed_same_trace(protocol: str) -> None:
    assert digest(protocol, 1) == digest(protocol, 1)
