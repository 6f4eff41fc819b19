"""Readable trace tests: a script of steps -> the expected message trace (testdata/*.txt).

The model is ``tests/pbft/test_pbft_traces.py`` (itself after etcd raft's ``testdata``): each
script drives a small network with fixed latency; the full trace of sends, commits and notes must
equal the stored file. After an intended protocol change, regenerate the files with::

    MEDBENCH_REWRITE_TRACES=1 python -m pytest tests/hotstuff/test_hotstuff_traces.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hotstuff_harness import Network

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
        client_timeout_us=500_000,
        view_timeout_us=100_000,
        **kw,  # type: ignore[arg-type]
    )


def normal_case() -> list[str]:
    """One request: a proposal per view, votes to the next leader, three-chain commit."""
    net = _net()
    net.trace.append("# client 4 broadcasts one operation; leaders 1, 2, 3, 0 extend the chain")
    net.submit(4, b"TX1+TX2")
    assert net.run_until_idle(1_000_000)
    net.run(10_000)
    return net.trace


def leader_crash() -> list[str]:
    """The leader of view 1 has crashed: the view times out, NEW-VIEWs go to leader 2, which
    proposes with a timeout certificate; the chain runs 2, 3 and stalls at the crashed leader of
    view 5, whose successor forms the lost QC from the votes the NEW-VIEWs carry."""
    net = _net()
    net.crash(1)
    net.trace.append("# replica 1 (leader of view 1) has crashed; client 4 submits one operation")
    net.submit(4, b"TX1")
    assert net.run_until_idle(5_000_000)
    net.run(10_000)
    return net.trace


SCRIPTS: dict[str, Callable[[], list[str]]] = {
    "normal_case": normal_case,
    "leader_crash": leader_crash,
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
