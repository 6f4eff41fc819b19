"""Readable trace tests: a script of steps -> the expected message trace (testdata/*.txt).

The model is etcd raft's ``testdata/*.txt`` interaction tests. Each script drives a small network
with fixed latency; the full trace of sends, commits and notes must equal the stored file.
After an intended protocol change, regenerate the files with::

    MEDBENCH_REWRITE_TRACES=1 python -m pytest tests/pbft/test_pbft_traces.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pbft_harness import Network

from medbench.consensus.pbft import byzantine as faults

TESTDATA = Path(__file__).parent / "testdata"
REWRITE = os.environ.get("MEDBENCH_REWRITE_TRACES", "") == "1"


def _net(**kw: object) -> Network:
    return Network(
        n=4,
        clients=1,
        seed=0,
        trace=True,
        latency_us=(1_000, 1_000),
        tick_us=10_000,
        client_timeout_us=100_000,
        view_change_timeout_us=100_000,
        **kw,  # type: ignore[arg-type]
    )


def normal_case() -> list[str]:
    """One request through pre-prepare, prepare, commit and f+1 replies."""
    net = _net()
    net.trace.append("# client 4 submits one operation; primary 0 orders it")
    net.submit(4, b"TX1+TX2")
    assert net.run_until_idle(1_000_000)
    return net.trace


def view_change() -> list[str]:
    """A silent primary: the client retransmits, backups time out, replica 1 takes over."""
    net = _net()
    net.nodes[0] = faults.SilentPrimary(net.nodes[0])
    net.trace.append("# primary 0 is silent; client 4 submits one operation")
    net.submit(4, b"TX1")
    assert net.run_until_idle(5_000_000)
    return net.trace


def state_transfer() -> list[str]:
    """Replica 3 misses three checkpoints' worth of batches, then catches up from a peer."""
    net = _net(checkpoint_interval=2, log_window=4, max_batch_size=1)
    net.isolated.add(3)
    net.trace.append("# replica 3 is isolated while four operations commit")
    for k in range(4):
        net.submit(4, b"op%d" % k)
    assert net.run_until_idle(5_000_000)
    net.heal()
    net.trace.append("# the network heals; two more operations; replica 3 fetches the state")
    for k in range(4, 6):
        net.submit(4, b"op%d" % k)
    assert net.run_until_idle(5_000_000)
    net.run(100_000)
    assert net.replicas([3])[0].last_executed == 6
    return net.trace


SCRIPTS: dict[str, Callable[[], list[str]]] = {
    "normal_case": normal_case,
    "view_change": view_change,
    "state_transfer": state_transfer,
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_trace(name: str) -> None:
    text = "\n".join(SCRIPTS[name]()) + "\n"
    path = TESTDATA / f"{name}.txt"
    if REWRITE:
        TESTDATA.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing {path}; run with MEDBENCH_REWRITE_TRACES=1"
    expected = path.read_text()
    assert text == expected, f"trace of {name} changed; inspect and rewrite if intended"
