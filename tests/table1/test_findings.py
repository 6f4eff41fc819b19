"""The report's sentences follow their data: change one datum and the sentence changes."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest

from medbench.experiments import calibrate
from medbench.sim.costs import CostProfile
from medbench.study import conditions, findings, table1
from medbench.study.figures import Figure, Panel, aggregate, draw
from medbench.study.report import Report, fmt, markdown_table
from medbench.study.units import duration, number, size

SCALE = [
    {"system": "A", "n": n, "seed": seed, "live": True, "throughput_tps": 50.0,
     "latency_ms_p50": 5.0 + seed}
    for n in (4, 16) for seed in (1, 2)
] + [
    {"system": "B", "n": n, "seed": seed, "live": True, "throughput_tps": 0.05,
     "latency_ms_p50": 180_000.0}
    for n in (4, 16) for seed in (1, 2)
]  # fmt: skip


def test_offered_load_sentence_follows_the_data() -> None:
    text = findings.offered_load(SCALE, 50.0)
    assert "Kept up at every n and seed: A." in text
    assert "B (n = 4, 16; as low as 0.05 tx/s)" in text
    assert "from 6.5 ms (A) to 3 min (B)" in text
    changed = copy.deepcopy(SCALE)
    changed[0]["throughput_tps"] = 20.0  # A at n = 4, seed 1 falls behind
    other = findings.offered_load(changed, 50.0)
    assert other != text and "A (n = 4; as low as 20 tx/s)" in other
    assert "Kept up at every n and seed" not in other


def test_saturation_sentence_follows_the_data() -> None:
    rows = [
        {"system": "P", "n": 4, "throughput_tps": 1000.0},
        {"system": "P", "n": 16, "throughput_tps": 400.0},
    ]
    text = findings.saturation(rows)
    assert "P 1,000 tx/s at n = 4 and 400 tx/s at n = 16 (60% lower)" in text
    rows[1]["throughput_tps"] = 990.0
    assert "(about the same)" in findings.saturation(rows)


def test_byzantine_sentence_follows_the_data() -> None:
    row = {"system": "MedRec", "behaviour": "majority miner", "live": True, "safety": False,
           "commits_undone": 8, "rejections": 0, "view_changes": 0}  # fmt: skip
    text = findings.byzantine([row])
    assert "lost safety (8 committed blocks undone)" in text
    row = {**row, "safety": True, "commits_undone": 0}
    assert "stayed safe and live" in findings.byzantine([row])
    relay = {"system": "Central relay", "behaviour": "Byzantine centre rewrites", "live": True,
             "safety": False, "commits_undone": 3, "rejections": 0, "view_changes": 0}  # fmt: skip
    assert "no node server refused it" in findings.byzantine([relay])
    assert "2 messages refused" in findings.byzantine([{**relay, "rejections": 2}])


def test_crash_and_nodes_needed_sentences_follow_the_data() -> None:
    rows = [{"system": "X", "n": 7, "tolerated": 2}, {"system": "X", "n": 7, "tolerated": 3}]
    assert "X 2 to 3 of 7" in findings.crashes(rows)
    assert "X 2 of 7" in findings.crashes(rows[:1])
    trials = [
        {"system": "M", "search": "nodes_needed", "n": 3, "byzantine": "-", "started": True,
         "live": True, "safety": True},
        {"system": "M", "search": "nodes_needed", "n": 3, "byzantine": "split-brain",
         "started": True, "live": True, "safety": False},
        {"system": "M", "search": "nodes_needed", "n": 4, "byzantine": "split-brain",
         "started": True, "live": True, "safety": True},
    ]  # fmt: skip
    text = findings.nodes_needed(trials, "M", "4")
    assert "At n = 3 one replica playing 'split-brain' lost safety." in text
    trials[1]["live"], trials[1]["safety"] = False, True
    assert "lost liveness" in findings.nodes_needed(trials, "M", "4")


def test_numbers_for_people() -> None:
    assert duration(2020.0) == "2.02 s"
    assert duration(5.59) == "5.59 ms"
    assert duration(180_000.0) == "3 min"
    assert duration(0.5) == "500 µs"
    assert size(1536.0) == "1.5 MiB" and size(0.5) == "512 B"
    assert number(2020.0) == "2,020" and number(0.0123) == "0.0123"
    assert fmt(2020.0, "latency_ms_p50") == "2.02 s"
    assert fmt(float("nan"), "latency_ms_p50") == "-"
    assert "e+" not in markdown_table([{"latency_ms_p50": 2.02e3, "throughput_tps": 1.5e5}])


def test_tables_name_network_workload_and_profile(tmp_path: Path) -> None:
    s = table1.Settings.quick()
    cap = conditions.caption(s, seeds=[1, 2])
    assert "complete graph, 1 ms one way, 1 Gbit/s per pair" in cap
    assert "jitter" in cap and "no loss" in cap and "20 tx/s" in cap
    assert "closed-loop" in conditions.workload(s, "closed", 16)
    rep = Report("t")
    rep.table("t", [{"a": 1}], caption=cap, context=conditions.context(s))
    rep.write(tmp_path)
    assert cap in (tmp_path / "README.md").read_text()
    assert "network" in (tmp_path / "t.json").read_text()


def test_default_profile_records_its_provenance() -> None:
    p = CostProfile.default()
    assert p.date and p.method and "46d249c" in p.method
    assert CostProfile.from_dict(p.to_dict()) == p


def test_calibrate_warns_on_a_busy_machine() -> None:
    busy = calibrate.MachineState(3.0, 0.0, 0.5, ("load average 6.0 on 2 CPUs",))
    with pytest.warns(calibrate.BusyMachineWarning):
        prof = calibrate.calibrate(quick=True, state=busy)
    assert "BUSY" in prof.conditions and prof.date and prof.method
    quiet = calibrate.MachineState(0.1, 0.0, 0.02, ())
    with warnings.catch_warnings():
        warnings.simplefilter("error", calibrate.BusyMachineWarning)
        calibrate.calibrate(quick=True, state=quiet)
    state = calibrate.machine_state()
    assert state.spread >= 0 and isinstance(state.busy, bool)


def test_figure_aggregates_seeds_and_draws(tmp_path: Path) -> None:
    agg = aggregate(SCALE, "n", "latency_ms_p50", "system")
    assert agg["A"][0] == (4.0, 6.5, 6.0, 7.0, 2)  # mean, min, max over the two seeds
    panel = Panel(SCALE, "n", "latency_ms_p50", "system", "t", "nodes n", "latency",
                  logy=True, unit="ms")  # fmt: skip
    draw(Figure("f", [panel, panel]), tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_saturation_sentence_names_systems_that_were_not_live() -> None:
    rows = [
        {"system": "P", "n": 4, "throughput_tps": 1000.0, "live": True},
        {"system": "R", "n": 4, "throughput_tps": 0.0, "live": False},
    ]
    text = findings.saturation(rows)
    assert "Not live under closed-loop load" in text and "R" in text.split("Not live")[1]
    rows[1]["live"] = True
    assert "Not live" not in findings.saturation(rows)


def test_saturation_sentence_says_what_bounds_each_system() -> None:
    rows = [
        {"system": "P", "n": 4, "throughput_tps": 1000.0, "completed": 200,
         "cpu_s_max_node": 0.19, "live": True},
        {"system": "W", "n": 4, "throughput_tps": 1.0, "completed": 200,
         "cpu_s_max_node": 0.02, "live": True},
    ]  # fmt: skip
    text = findings.saturation(rows)
    assert "CPU-bound" in text and "P (up to 95%)" in text  # 0.19 s busy of a 0.2 s run
    assert "W (busiest node 0.0% busy)" in text
    rows[0]["cpu_s_max_node"] = 0.05
    assert "CPU-bound (" not in findings.saturation(rows)
