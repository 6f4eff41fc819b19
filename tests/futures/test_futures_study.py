"""The consensus comparison (medbench.study.futures): rows, spread, crossovers, sentences."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from medbench.study import futures as fu
from medbench.study.report import Report

TINY = replace(
    fu.Settings.small(),
    requests=48,
    clients=12,
    latency_requests=8,
    failure_requests=24,
)


@pytest.fixture(scope="module")
def comparison() -> fu.Comparison:
    return fu.compare(TINY)


def test_every_run_is_safe_live_and_has_the_summarize_schema(comparison: fu.Comparison) -> None:
    kinds = {(r["experiment"], r["protocol"], r["n"]) for r in comparison.rows}
    assert len(comparison.rows) == len(kinds) * len(TINY.seeds)
    assert {k[0] for k in kinds} == {"saturation", "latency", "failure"}
    for r in comparison.rows:
        assert r["safety"] is True and r["liveness"] is True, r
        for col in ("throughput_tps", "latency_ms_p50", "msgs_per_tx", "cpu_s_total", "seed"):
            assert col in r  # the metrics.summarize schema a cluster row also has
        assert r["cpu_ms_per_tx"] > 0 and r["storage_bytes_per_tx"] > 0


def test_the_leader_crash_is_measured(comparison: fu.Comparison) -> None:
    for r in comparison.rows:
        if r["experiment"] != "failure":
            continue
        assert r["crashed_leader"] in range(r["n"])
        assert r["resume_ms"] > 0
        assert r["recovery_msgs"] > 0, r["protocol"]  # a view change, pacemaker or election ran
        assert r["stalls"] >= 1 and r["stall_ms_total"] > 0


def test_aggregate_gives_mean_and_spread_over_seeds(comparison: fu.Comparison) -> None:
    summary = comparison.summary
    row = next(s for s in summary if s["experiment"] == "saturation" and s["protocol"] == "raft")
    runs = [
        r["msgs_per_tx"]
        for r in comparison.rows
        if r["experiment"] == "saturation" and r["protocol"] == "raft" and r["n"] == row["n"]
    ]
    assert row["seeds"] == len(runs) == 2
    assert row["msgs_per_tx"] == pytest.approx(sum(runs) / 2)
    assert row["msgs_per_tx_min"] == min(runs) and row["msgs_per_tx_max"] == max(runs)


def synthetic(values: dict[str, list[tuple[int, list[float]]]]) -> list[dict[str, Any]]:
    """Saturation rows of throughput_tps_steady: protocol -> [(n, [per-seed values])]."""
    rows = []
    for protocol, points in values.items():
        for n, per_seed in points:
            for seed, v in enumerate(per_seed):
                rows.append(
                    {
                        "experiment": "saturation",
                        "protocol": protocol,
                        "n": n,
                        "seed": seed,
                        "throughput_tps_steady": v,
                        "safety": True,
                        "liveness": True,
                    }
                )
    return rows


def test_crossovers_are_found_interpolated_and_judged_against_the_spread() -> None:
    rows = synthetic(
        {
            "pbft": [(4, [100, 110]), (16, [54, 56]), (64, [10, 12])],
            "hotstuff": [(4, [60, 62]), (16, [52, 54]), (64, [30, 31])],
        }
    )
    crosses = fu.crossovers(fu.aggregate(rows), ["throughput_tps_steady"])
    (c,) = crosses
    assert (c["overtakes"], c["overtaken"], c["n_below"], c["n_above"]) == (
        "hotstuff",
        "pbft",
        16,
        64,
    )
    # linear in log n: the difference of the means goes from +2 at 16 to -19.5 at 64
    want = math.exp(math.log(16) + (math.log(64) - math.log(16)) * 2 / 21.5)
    assert c["n_cross"] == pytest.approx(want, abs=0.05)
    assert c["robust"] is False  # at n = 16 the seeds overlap (54-56 vs 52-54)


def test_no_crossover_is_said_as_such() -> None:
    rows = synthetic({"pbft": [(4, [10]), (16, [5])], "raft": [(4, [20]), (16, [8])]})
    summary = fu.aggregate(rows)
    assert fu.crossovers(summary, ["throughput_tps_steady"]) == []
    text = fu.conclusions(summary, [], consortia=(4, 16))
    assert text[-1].startswith("No crossover")
    assert "Raft 20 transactions per second vs PBFT 10 (2.00x)" in text[0]


def test_conclusions_name_only_what_was_measured(comparison: fu.Comparison) -> None:
    summary = comparison.summary
    text = fu.conclusions(summary, fu.crossovers(summary), consortia=(4, 7, 100))
    assert any(t.startswith("**4 hospitals**") for t in text)
    assert not any("100 hospitals" in t for t in text)  # not measured: nothing said


def test_report_section_writes_tables_and_titled_plots(
    comparison: fu.Comparison, tmp_path: Path
) -> None:
    rep = Report("t")
    fu.section(rep, comparison)
    readme = rep.write(tmp_path)
    text = readme.read_text()
    assert "Consensus futures" in text and "What the measurements say" in text
    for name in ("futures_runs", "futures_summary", "futures_headline", "futures_crossovers"):
        assert (tmp_path / f"{name}.csv").exists()
    for metric, _logy in fu.PLOTS:
        assert (tmp_path / f"futures_{metric}.png").stat().st_size > 5_000
    with (tmp_path / "futures_runs.csv").open() as fh:
        header = next(csv.reader(fh))
    assert header[:4] == ["source", "experiment", "protocol", "n"]


def test_cluster_rows_go_through_the_same_analysis() -> None:
    """Rows with the plain summarize schema (no steady throughput, no CPU) from another source."""
    rows = [
        {
            "source": "cluster",
            "experiment": "saturation",
            "protocol": p,
            "n": n,
            "seed": 1,
            "throughput_tps": t,
            "msgs_per_tx": m,
            "completed": 10,
            "safety": True,
            "liveness": True,
        }
        for p, n, t, m in [("pbft", 4, 900.0, 7.0), ("raft", 4, 1200.0, 8.0)]
    ]
    for r in rows:
        fu.derive(r)
        assert math.isnan(r["cpu_ms_per_tx"])
    summary = fu.aggregate(rows)
    assert fu.throughput_metric(summary) == "throughput_tps"
    table = fu.headline(summary, source="cluster")
    assert [t["protocol"] for t in table] == ["PBFT", "Raft"]


def test_a_service_that_did_not_resume_by_the_horizon_is_said_so() -> None:
    """A horizon shorter than the failure detector: the stall is open, a lower bound."""
    s = replace(TINY, failure_horizon_ms=100, failure_requests=40)  # arrivals past the crash
    row = fu.failure_run("raft", 4, 1, s)
    assert row["resumed"] == 0.0 and math.isnan(row["resume_ms"])
    assert row["liveness"] is False and row["stall_ms_total"] >= 100 - 20
    summary = fu.aggregate([row])
    text = fu.conclusions(summary, [], consortia=(4,))
    assert "Raft did not resume service within the horizon in 1 of 1 runs" in text[0]
