"""A run's message trace exported as Chrome trace events (Perfetto) matches what was delivered."""

from __future__ import annotations

import json
from pathlib import Path

from medbench import experiments as ex
from medbench.sim import trace


def test_chrome_trace_of_a_pbft_run(tmp_path: Path) -> None:
    params = {"protocol": "pbft", "n": 4, "requests": 8, "clients": 2}
    sim, _dep = ex.build_simulator(params, 3)
    rec = trace.record(sim)
    record = sim.run(10_000_000, stop_when_complete=True)
    copies = rec.deliveries
    assert len(copies) == record.delivered > 0
    assert all(d.sent_us <= d.arrived_us for d in copies)
    assert {d.kind for d in copies} >= {"pre-prepare", "prepare", "commit", "reply"}
    names = [f"replica {i}" if i < 4 else f"client {i - 4}" for i in range(sim.n)]
    path = trace.write_chrome_trace(tmp_path / "t.json", copies, names)
    doc = json.loads(path.read_text())
    events = doc["traceEvents"]
    threads = {e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    assert {"replica 0", "client 0"} <= threads
    starts = [e for e in events if e["ph"] == "s"]
    ends = [e for e in events if e["ph"] == "f"]
    assert len(starts) == len(ends) == len(copies)
    assert {e["id"] for e in starts} == {e["id"] for e in ends}
    slices = [e for e in events if e["ph"] == "X"]
    assert len(slices) == 2 * len(copies)
    assert all(e["ts"] >= 0 and e["dur"] >= 1 for e in slices)


def test_recording_changes_nothing() -> None:
    params = {"protocol": "pbft", "n": 4, "requests": 8, "clients": 2}
    plain, _ = ex.build_simulator(params, 5)
    traced, _ = ex.build_simulator(params, 5)
    trace.record(traced)
    a = plain.run(10_000_000, stop_when_complete=True)
    b = traced.run(10_000_000, stop_when_complete=True)
    assert a.trace_digest == b.trace_digest
