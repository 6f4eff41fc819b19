"""Readable trace tests: a script of steps -> the expected message trace (testdata/*.txt).

The model is ``tests/pbft/test_pbft_traces.py`` (after etcd raft's ``testdata``): each script
drives a small network with fixed latency; the full trace of sends, commits and notes must equal
the stored file. After an intended protocol change, regenerate the files with::

    MEDBENCH_REWRITE_TRACES=1 python -m pytest tests/raft/test_raft_traces.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from raft_harness import Network

TESTDATA = Path(__file__).parent / "testdata"
REWRITE = os.environ.get("MEDBENCH_REWRITE_TRACES", "") == "1"


def _net(**kw: object) -> Network:
    return Network(
        n=3,
        clients=1,
        seed=0,
        trace=True,
        latency_us=(1_000, 1_000),
        tick_us=10_000,
        client_timeout_us=500_000,
        election_timeout_us=100_000,
        heartbeat_interval_us=50_000,
        **kw,  # type: ignore[arg-type]
    )


def normal_case() -> list[str]:
    """An election, the leader's no-op, one request, and the heartbeat that commits it at the
    followers."""
    net = _net()
    net.trace.append("# three nodes elect a leader; it commits its no-op")
    leader = net.run_until_leader()
    net.run(60_000)
    net.trace.append(f"# client 3 sends one operation to the leader, node {leader}")
    net.nodes[3].leader = leader
    net.submit(3, b"TX1+TX2")
    assert net.run_until_idle(1_000_000)
    net.run(60_000)
    return net.trace


def leader_crash() -> list[str]:
    """The leader crashes; a follower's election timeout fires, it wins, the client retries."""
    net = _net()
    leader = net.run_until_leader()
    net.run(60_000)
    net.trace.append(f"# the leader, node {leader}, crashes; client 3 sends to it")
    net.crash(leader)
    net.nodes[3].leader = leader
    net.submit(3, b"TX1")
    assert net.run_until_idle(5_000_000)
    net.run(60_000)
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
