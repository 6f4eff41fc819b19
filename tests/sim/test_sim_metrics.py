"""Metrics computed on a hand-built run record."""

from __future__ import annotations

import math

import numpy as np

from medbench import metrics
from medbench.metrics import LivenessChecker, RunRecord, SafetyChecker


def constructed() -> RunRecord:
    rec = RunRecord(n_nodes=4, replicas=(0, 1, 2))
    for i in range(100):
        rec.submitted[i] = i * 1000
        rec.completed[i] = i * 1000 + (i + 1) * 100  # latency (i+1) * 0.1 ms
    rec.sent_msgs = {"prepare": 900, "commit": 300}
    rec.sent_bytes = {"prepare": 90_000, "commit": 60_000}
    rec.commits = {
        0: [(0, "a", 10), (1, "b", 20)],
        1: [(0, "a", 11), (1, "b", 21)],
        2: [(0, "a", 12)],
        3: [(0, "zzz", 13)],  # not a replica: ignored by the safety check
    }
    rec.cpu_ns = {0: {"sign": 2_000_000_000, "message": 500_000_000}, 1: {"sign": 1_000_000_000}}
    rec.op_counts = {0: {"sign": 10}, 1: {"sign": 5}}
    rec.notes = [
        (1000, 0, "view_change", 1),
        (1200, 1, "view_change", 1),
        (5000, 0, "new_view", 1),
        (5200, 1, "new_view", 1),
        (9000, 0, "view_change", 2),
        (9500, 0, "new_view", 2),
        (9600, 2, "rejected", "bad signature"),
    ]
    rec.storage = {0: {"blocks": 100, "log": 5}, 1: {"blocks": 100}}
    rec.end_us = 200_000
    rec.delivered = 1100
    rec.dropped = {"loss": 100}
    return rec


def test_summary_of_a_constructed_run() -> None:
    row = metrics.summarize(constructed())
    lat_ms = np.arange(1, 101) * 0.1
    assert row["completed"] == 100
    assert math.isclose(row["latency_ms_p50"], float(np.percentile(lat_ms, 50)))
    assert math.isclose(row["latency_ms_p95"], float(np.percentile(lat_ms, 95)))
    assert math.isclose(row["latency_ms_p99"], float(np.percentile(lat_ms, 99)))
    # first submit at 0, last completion at 99_000 + 10_000 us
    assert math.isclose(row["throughput_tps"], 100 / 0.109)
    assert row["msgs_per_tx"] == 12.0
    assert row["msgs_per_tx.prepare"] == 9.0
    assert row["bytes_per_tx.commit"] == 600.0
    assert row["cpu_s.sign"] == 3.0
    assert row["cpu_s_max_node"] == 2.5
    assert row["view_changes"] == 2
    assert row["view_change_ms_mean"] == (4.0 + 4.0 + 0.5) / 3
    assert row["view_change_ms_max"] == 4.0
    assert row["notes.rejected"] == 1
    assert row["storage_bytes.blocks"] == 200
    assert row["storage_bytes.log"] == 5
    assert row["dropped.loss"] == 100
    assert row["safety"] is True
    assert row["liveness"] is True
    assert all(not isinstance(v, (dict, list)) for v in row.values())


def test_safety_checker_finds_disagreement() -> None:
    rec = constructed()
    rec.commits[2].append((1, "evil", 30))
    verdict = SafetyChecker().check(rec)
    assert not verdict.ok and "sequence 1" in verdict.reason


def test_safety_checker_finds_a_replica_contradicting_itself() -> None:
    rec = constructed()
    rec.commits[0].append((0, "other", 40))
    assert not SafetyChecker().check(rec).ok


def test_liveness_checker_counts_open_transactions() -> None:
    rec = constructed()
    del rec.completed[5]
    del rec.completed[6]
    verdict = LivenessChecker().check(rec)
    assert not verdict.ok and verdict.reason == "2 of 100 not completed"
    row = metrics.summarize(rec)
    assert row["liveness"] is False and row["completed"] == 98


def test_empty_run_gives_nan_latency_and_zero_throughput() -> None:
    row = metrics.summarize(RunRecord(n_nodes=1, replicas=(0,)))
    assert math.isnan(row["latency_ms_p50"])
    assert row["throughput_tps"] == 0.0
    assert row["safety"] and row["liveness"]


def test_node_rows_are_tidy() -> None:
    rows = metrics.node_rows(constructed())
    assert {"node": 0, "op": "sign", "cpu_s": 2.0, "count": 10} in rows
    assert {"node": 0, "op": "message", "cpu_s": 0.5, "count": 0} in rows
    assert len(rows) == 3


def test_node_table_has_one_wide_row_per_node() -> None:
    rows = metrics.node_table(constructed())
    assert [r["node"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["cpu_s.sign"] == 2.0 and rows[0]["cpu_s_total"] == 2.5
    assert rows[0]["count.sign"] == 10
    assert rows[0]["storage_bytes.blocks"] == 100 and rows[0]["storage_bytes_total"] == 105
    assert rows[3] == {"node": 3, "replica": False, "cpu_s_total": 0.0, "storage_bytes_total": 0}
    later = metrics.node_table(constructed(), storage={1: {"blocks": 7}})
    assert later[1]["storage_bytes.blocks"] == 7 and "storage_bytes.log" not in later[0]


def test_pluggable_checker() -> None:
    class NoRejections:
        name = "no_rejections"

        def check(self, record: RunRecord) -> metrics.Verdict:
            bad = sum(1 for note in record.notes if note[2] == "rejected")
            return metrics.Verdict(self.name, bad == 0, f"{bad} rejected" if bad else "")

    row = metrics.summarize(constructed(), [NoRejections()])
    assert row["no_rejections"] is False and row["no_rejections_reason"] == "1 rejected"
    assert "safety" not in row
