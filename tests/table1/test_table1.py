"""Table 1 measured in the simulator: every row and column, the searches, the report folder."""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import pytest

from medbench import experiments as ex
from medbench.cli import reproduce as reproduce_cli
from medbench.consensus.baselines import REGISTRY
from medbench.experiments.baselines import make_nodes
from medbench.study import reproduce, table1
from medbench.study.report import LABELS

QUICK = table1.Settings.quick()


@pytest.fixture(scope="module")
def rows() -> dict[str, table1.Row]:
    return {r.system.key: r for r in table1.measure_table(QUICK)}


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medbench")
    sub = parser.add_subparsers(dest="command", required=True)
    reproduce_cli.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_every_system_is_registered_in_the_simulator() -> None:
    assert {s.protocol for s in table1.SYSTEMS} <= set(ex.protocols())


def test_every_row_has_every_column(rows: dict[str, table1.Row]) -> None:
    assert set(rows) == {s.key for s in table1.SYSTEMS}
    for row in rows.values():
        assert set(row.cells) == set(table1.COLUMNS)
        assert set(row.extras) == set(table1.EXTRA_COLUMNS)
        assert row.cells["blockchain"] == "yes"
        assert row.common.live, row.common.reason


def test_nodes_needed_searches(rows: dict[str, table1.Row]) -> None:
    assert rows["mdsm"].cells["nodes_needed"] == "121"
    refused = [t for t in rows["mdsm"].search if not t.started]
    assert [t.n for t in refused] == list(range(1, 121))
    assert rows["mdsm"].extras["faults_tolerated"] == 6  # 14 of 20 audits
    assert rows["medicalchain"].cells["nodes_needed"] == "4"
    byz = {(t.n, t.behaviour): t for t in rows["medicalchain"].search if t.behaviour}
    assert byz[(3, "split-brain")].safe is False  # live crash-free, not with a Byzantine replica
    assert all(t.live and t.safe for (n, _b), t in byz.items() if n == 4)
    assert rows["medicalchain"].extras["faults_tolerated"] == 1
    for key, proto in (("medrec", "pow"), ("modelchain", "poi"), ("poa", "poa")):
        assert rows[key].cells["nodes_needed"] == str(REGISTRY[proto].minimal.n)
    assert rows["central"].cells["nodes_needed"] == "2"
    assert rows["central"].extras["faults_tolerated"] == 0  # the centre is a single point


def test_pays_rewards(rows: dict[str, table1.Row]) -> None:
    assert rows["medrec"].cells["pays_rewards"] == "yes"
    assert rows["modelchain"].cells["pays_rewards"] == "yes"
    assert rows["medicalchain"].cells["pays_rewards"] == "no"
    assert rows["mdsm"].cells["pays_rewards"] == "no"


def test_compute_demand_threshold_separates_pox_from_bft(rows: dict[str, table1.Row]) -> None:
    large = [rows[k].extras["hashes_per_tx"] for k in ("medrec", "modelchain")]
    small = [rows[k].extras["hashes_per_tx"] for k in ("medicalchain", "mdsm")]
    assert min(large) >= table1.LARGE_HASHES_PER_TX > max(small)
    limit = table1.large_cpu_ms(QUICK.cost_profile())
    cpu = {k: rows[k].extras["cpu_ms_per_tx"] for k in ("medrec", "modelchain", "medicalchain")}
    assert min(cpu["medrec"], cpu["modelchain"]) >= limit > cpu["medicalchain"]
    assert (
        rows["modelchain"].extras["learn_ms_per_tx"] > 0 == rows["medrec"].extras["learn_ms_per_tx"]
    )
    assert [rows[k].cells["compute_demand"] for k in ("medrec", "modelchain")] == ["large"] * 2
    assert [rows[k].cells["compute_demand"] for k in ("medicalchain", "mdsm")] == ["small"] * 2


def test_vote_weights_and_comparison(rows: dict[str, table1.Row]) -> None:
    assert rows["mdsm"].cells["vote_weights"] == "yes"
    assert rows["medicalchain"].cells["vote_weights"] == "no"
    cmp = table1.compare(list(rows.values()))
    assert set(cmp.marks) == set(table1.PAPER)
    for key, cols in cmp.marks.items():
        for col, ok in cols.items():
            assert ok or cmp.reasons[key][col], (key, col)
    md = table1.markdown(list(rows.values()), cmp)
    assert f"{table1.LARGE_HASHES_PER_TX:.0e}" in md
    # measured, paper and CPU-breakdown tables
    assert len(re.findall(r"^\| MDSM +\|", md, re.MULTILINE)) == 3
    assert "scaled down: its own configuration needs 121 to start" in md


def test_pow_attacker_parameter() -> None:
    nodes = make_nodes("pow", 3, {"attacker": 2}, seed=1)
    assert [type(n).__name__ for n in nodes] == ["PowNode", "PowNode", "PrivateMiner"]
    assert nodes[2].release_depth == 13  # one past the 12 confirmations
    with pytest.raises(ValueError):
        make_nodes("pow", 3, {"attacker": 3}, seed=1)


def test_quorum_bound() -> None:
    assert table1.quorum_bound(4, 1) == 1
    assert table1.quorum_bound(3, 2) == 0  # quorum of 1: live, but never safe
    assert table1.quorum_bound(7, 2) == 2
    assert table1.quorum_bound(16, 5) == 5


def test_deterministic() -> None:
    system = next(s for s in table1.SYSTEMS if s.key == "central")
    a = table1.table_rows([table1.measure_system(system, QUICK)])
    b = table1.table_rows([table1.measure_system(system, QUICK)])
    assert a == b


def test_table1_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_cli(["table1", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for s in table1.SYSTEMS:
        assert re.search(rf"\| {re.escape(s.name)} +\|", out), s.name
    for col in (*table1.COLUMNS, *(LABELS.get(c, c) for c in table1.EXTRA_COLUMNS)):
        assert col in out
    assert (tmp_path / "table1.csv").read_text().count("\n") == len(table1.SYSTEMS) + 1


def test_reproduce_quick_report(tmp_path: Path) -> None:
    readme = reproduce.reproduce(tmp_path, reproduce.Options(quick=True))
    names = {p.name for p in tmp_path.iterdir()}
    for f in (
        "README.md",
        "metadata.json",
        "table1.csv",
        "table1_trials.csv",
        "scaling.csv",
        "scaling.json",
        "saturation.csv",
        "faults_crash.csv",
        "faults_byzantine.csv",
        "scaling.png",
        "saturation.png",
        "faults_crash.png",
        "nodes.csv",
        "table1_cpu.csv",
        "futures_runs.csv",
        "futures_headline.csv",
        "futures_crossovers.csv",
        "futures_throughput_tps_steady.png",
    ):
        assert f in names
    with (tmp_path / "nodes.csv").open() as fh:
        nodes = list(csv.DictReader(fh))
    common = [r for r in nodes if r["run"] == "table1 common" and r["system"] == "medicalchain"]
    # PBFT at the common size: its replicas and 4 clients, each with CPU and storage columns.
    assert len(common) == QUICK.common_n + 4
    replicas = [r for r in common if r["replica"] == "True"]
    assert all(float(r["cpu_s_total"]) > 0 for r in replicas)
    assert all(int(r["storage_bytes.blocks"]) > 0 for r in replicas)
    assert {r["system"] for r in nodes if r["run"] == "scaling"} >= {"medicalchain", "mdsm"}
    md = readme.read_text()
    assert re.search(r"\| System +\| measured at +\| blockchain +\| consensus", md)
    assert re.search(r"\| Medical Chain +\|", md)
    # Every table names its network, workload and profile (caption and JSON sidecar).
    assert "complete graph, 1 ms one way, 1 Gbit/s per pair" in md
    sidecar = json.loads((tmp_path / "scaling.json").read_text())
    assert "jitter" in sidecar["network"] and "offered load" in sidecar["workload"]
    assert "2026-11-22" in sidecar["cost_profile"]
    seeds = reproduce.Options(quick=True).seed_list()
    assert len(seeds) >= 2
    with (tmp_path / "scaling.csv").open() as fh:
        scaled = list(csv.DictReader(fh))
    pbft_rows = [s.name for s in table1.SYSTEMS if s.protocol == "pbft"]
    assert len(pbft_rows) >= 2  # Medical Chain and its variant rows
    for name in pbft_rows:
        got = sorted((int(r["seed"]), int(r["n"])) for r in scaled if r["system"] == name)
        assert got == [(seed, n) for seed in seeds for n in (4, 7, 10, 16)]
    with (tmp_path / "saturation.csv").open() as fh:
        sat = list(csv.DictReader(fh))
    assert {(r["system"], r["n"]) for r in sat} >= {
        (name, n) for name in pbft_rows for n in ("4", "7", "10", "16")
    }
    pbft_sat = [r for r in sat if r["system"] in pbft_rows]
    assert all(r["unblocked_left"] == "0" and r["live"] == "True" for r in pbft_sat)
    with (tmp_path / "table1_cpu.csv").open() as fh:
        assert {r["system"] for r in csv.DictReader(fh)} == {s.name for s in table1.SYSTEMS}
    with (tmp_path / "faults_byzantine.csv").open() as fh:
        byz = {(r["behaviour"]): r for r in csv.DictReader(fh)}
    # A primary that equivocates in every phase (it votes both batches) splits n = 3, whose
    # quorums of 2 meet only in the primary, but not n = 4 (quorums of 3 meet in 2 replicas).
    assert byz["primary equivocating in every phase, n=3 (f=0)"]["safety"] == "False"
    assert byz["primary equivocating in every phase, n=4 (f=1)"]["safety"] == "True"
    assert byz["equivocating primary, n=4 (f=1)"]["safety"] == "True"
    assert byz["equivocating primary, n=4 (f=1)"]["live"] == "True"
    # The 51% attack: a hash majority rewrites committed blocks, a minority cannot.
    major = byz["1 of 4 miners holds 60% of the hash power, mines privately"]
    minor = byz["1 of 4 miners holds 30% of the hash power, mines privately"]
    assert major["safety"] == "False" and int(major["commits_undone"]) > 0
    assert minor["safety"] == "True" and minor["commits_undone"] == "0"
    # The relay's Byzantine centre rewrites history and no node server objects.
    relay = byz["Byzantine centre drops a record from block 1 and re-links the chain"]
    assert relay["safety"] == "False" and relay["rejections"] == "0"
    assert int(relay["commits_undone"]) > 0
    # PBFT counts the equivocating primary's refused messages.
    assert int(byz["equivocating primary, n=4 (f=1)"]["rejections"]) > 0


def test_table1_and_reproduce_take_a_profile(tmp_path: Path, rows: dict[str, table1.Row]) -> None:
    """--profile PATH: every run is charged by that profile, and the metadata records it."""
    from dataclasses import replace as dc_replace

    from medbench.sim.costs import CostProfile

    dear = dc_replace(CostProfile.default(), verify_ns=500_000.0, host="test-host")
    path = tmp_path / "p.json"
    dear.save(path)
    out = tmp_path / "t"
    assert run_cli(["table1", "--quick", "--profile", str(path), "--out", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["cost_profile"]["verify_ns"] == 500_000.0
    with (out / "table1.csv").open() as fh:
        got = {r["system"]: float(r["cpu_ms_per_tx"]) for r in csv.DictReader(fh)}
    # PBFT verifies signatures on every message: dearer verification, more CPU per transaction.
    assert got["Medical Chain"] > 2 * rows["medicalchain"].extras["cpu_ms_per_tx"]
    parser = argparse.ArgumentParser(prog="medbench")
    reproduce_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["reproduce", "--quick", "--profile", str(path), "--out", "x"])
    assert reproduce.Options(profile=CostProfile.load(args.profile)).settings().profile == dear
