"""Experiment runs, determinism, the grid runner (joblib, Dask), results files and the CLI."""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbench import experiments, metrics
from medbench.cli import sim as cli
from medbench.cli.errors import UsageError
from medbench.experiments import NONDETERMINISTIC_COLUMNS, Deployment, Submission, toy
from medbench.sim.costs import CostProfile


def stable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in NONDETERMINISTIC_COLUMNS}


BASE = {"protocol": "toy-quorum", "requests": 15, "rate_tps": 1500.0}


@pytest.mark.parametrize("n", [1, 4, 7])
def test_toy_quorum_message_counts_are_exact(n: int) -> None:
    sim, _dep = experiments.build_simulator({**BASE, "n": n}, seed=3)
    rec = sim.run(10_000_000)  # run out every message, not only until completion
    assert len(rec.completed) == 15
    assert sum(rec.sent_msgs.values()) == 15 * toy.messages_per_tx(n)
    assert rec.sent_msgs.get("echo", 0) == 15 * n * (n - 1)
    assert rec.delivered == 15 * toy.messages_per_tx(n)


def test_same_params_and_seed_give_the_same_row_and_digest() -> None:
    params = {**BASE, "n": 7, "topology": "province", "jitter_us": 200, "load": "poisson"}
    a = experiments.run(params, seed=11)
    b = experiments.run(params, seed=11)
    c = experiments.run(params, seed=12)
    assert stable(a) == stable(b)
    assert a["trace_digest"] == b["trace_digest"] != c["trace_digest"]
    assert a["run_id"] == b["run_id"] != c["run_id"]
    assert a["safety"] and a["liveness"]
    assert a["completed"] == 15


def test_run_detailed_gives_the_record() -> None:
    row, record = experiments.run_detailed({**BASE, "n": 4}, seed=0)
    assert record.trace_digest == row["trace_digest"]
    assert record.end_us >= max(record.completed.values())
    nodes = {r["node"] for r in metrics.node_rows(record)}
    assert nodes == set(range(5))


def test_row_is_flat_and_has_the_parameters() -> None:
    row = experiments.run({**BASE, "n": 4}, seed=0)
    assert list(row)[:3] == ["run_id", "seed", "protocol"]
    assert row["n"] == 4 and row["requests"] == 15 and row["topology"] == "complete"
    # the run stops when the last transaction completes, with a few replies still in flight
    assert toy.messages_per_tx(4) - 4 / 15 <= row["msgs_per_tx"] <= toy.messages_per_tx(4)
    assert row["sim_msgs_per_wall_s"] > 0
    assert all(isinstance(v, (int, float, str, bool)) for v in row.values())


def test_cpu_model_slows_commits_and_calibrated_profile_changes_them() -> None:
    fast = experiments.run({**BASE, "n": 4, "cpu": "none"}, seed=0)
    slow = experiments.run({**BASE, "n": 4}, seed=0)
    slower = experiments.run({**BASE, "n": 4}, seed=0, profile=CostProfile(verify_ns=500_000.0))
    assert fast["latency_ms_p50"] < slow["latency_ms_p50"] < slower["latency_ms_p50"]
    assert fast["cpu_s_total"] == 0.0 and slow["cpu_s.verify"] > 0


def test_faults_from_parameters_break_liveness_but_not_safety() -> None:
    row = experiments.run({**BASE, "n": 4, "faults": "crash:0@3ms", "duration_ms": 200}, seed=0)
    assert row["safety"] is True
    assert row["liveness"] is False
    assert row["completed"] < 15
    ok = experiments.run(
        {**BASE, "n": 4, "faults": "crash:3@1ms; recover:3@4ms", "duration_ms": 200}, seed=0
    )
    assert ok["liveness"] is True and ok["notes.recover"] == 1


def test_loss_is_counted() -> None:
    row = experiments.run({**BASE, "n": 4, "loss": 0.05, "duration_ms": 2000}, seed=1)
    assert row["dropped.loss"] > 0
    assert row["safety"] is True


def test_real_crypto_gives_the_same_virtual_run_as_modeled() -> None:
    params = {**BASE, "n": 4, "requests": 5}
    modeled = experiments.run(params, seed=2)
    real = experiments.run({**params, "crypto": "real"}, seed=2)
    skip = {"run_id", "crypto", *NONDETERMINISTIC_COLUMNS}
    assert {k: v for k, v in real.items() if k not in skip} == {
        k: v for k, v in modeled.items() if k not in skip
    }
    assert real["trace_digest"] == modeled["trace_digest"]


@pytest.mark.parametrize("crypto", ["real", "modeled"])
def test_both_crypto_modes_reject_forged_and_tampered_messages(crypto: str) -> None:
    """Modeled signatures are checked like real ones (only their cost is modeled)."""
    dep = toy.build({"n": 4, "requests": 1, "crypto": crypto}, random.Random(0))
    replica = dep.nodes[1]
    forged = toy.Echo(0, 0, 2, b"\1" * 64)
    ready = replica.step(2, forged)
    assert [n.detail for n in ready.notes] == ["bad echo signature"]
    leader = dep.nodes[0]
    ready = leader.step(4, toy.Request(0, b"x", b"\2" * 64))
    assert [n.detail for n in ready.notes] == ["bad request signature"]
    assert not ready.messages
    keys = replica.keys
    good = toy.Echo(0, 0, 2, keys.sign(2, toy.Echo(0, 0, 2).signed_bytes()))
    assert keys.verify(2, good.signed_bytes(), good.sig)
    assert not keys.verify(3, good.signed_bytes(), good.sig)  # another node's tag
    tampered = toy.Echo(0, 1, 2, good.sig)  # same tag, different transaction
    assert [n.detail for n in replica.step(2, tampered).notes] == ["bad echo signature"]
    assert not keys.verify(2, b"x", None)  # type: ignore[arg-type]


def test_unknown_protocol_and_bad_cpu_mode() -> None:
    with pytest.raises(experiments.ExperimentError):
        experiments.run({"protocol": "nope"}, 0)
    with pytest.raises(experiments.ExperimentError):
        experiments.run({**BASE, "cpu": "quantum"}, 0)
    with pytest.raises(experiments.ExperimentError):
        experiments.run({"n": 4}, 0)


def tiny_factory(params: Mapping[str, Any], rng: random.Random) -> Deployment:
    """A registered protocol from a test: one toy replica and a client, with a marker."""
    dep = toy.build({**params, "n": 1}, rng)
    return Deployment(
        nodes=dep.nodes,
        submissions=[Submission(s.at_us, s.node, s.msg, s.tx) for s in dep.submissions],
        replicas=dep.replicas,
        sites=dep.sites,
    )


def test_register_protocol() -> None:
    experiments.register_protocol("test-tiny", tiny_factory, schema=toy.ToyParams)
    assert "test-tiny" in experiments.protocols()
    row = experiments.run({"protocol": "test-tiny", "requests": 3}, seed=0)
    assert row["completed"] == 3
    # worker processes get the factory shipped with each task
    rows = experiments.run_grid(
        {"protocol": "test-tiny", "requests": [2, 3]}, 1, n_jobs=2, progress=False
    )
    assert [r["completed"] for r in rows] == [2, 3]


GRID = {"protocol": "toy-quorum", "n": [4, 5], "requests": 6, "rate_tps": [2000.0, 500.0]}


def test_expand_grid_and_seeds() -> None:
    points = experiments.expand_grid(GRID)
    assert len(points) == 4
    assert points[0] == {"protocol": "toy-quorum", "n": 4, "requests": 6, "rate_tps": 2000.0}
    assert experiments.seed_list(3) == [0, 1, 2]
    assert experiments.seed_list([7, 9]) == [7, 9]


def test_grid_runner_joblib_one_and_two_jobs_agree() -> None:
    one, one_nodes = experiments.run_grid_detailed(GRID, 2, n_jobs=1, progress=False)
    two, two_nodes = experiments.run_grid_detailed(GRID, 2, n_jobs=2, progress=False)
    assert len(one) == 8
    assert one_nodes == two_nodes and len(one_nodes) == sum(int(r["n"]) + 1 for r in one)
    assert [stable(r) for r in one] == [stable(r) for r in two]
    assert [(r["n"], r["rate_tps"], r["seed"]) for r in one][:3] == [
        (4, 2000.0, 0),
        (4, 2000.0, 1),
        (4, 500.0, 0),
    ]


def test_grid_runner_on_a_dask_local_cluster() -> None:
    import dask.distributed as distributed  # make test installs the dask extra

    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        rows = experiments.run_grid(GRID, 1, scheduler=cluster.scheduler_address, progress=False)
    finally:
        cluster.close()
    local = experiments.run_grid(GRID, 1, progress=False)
    assert [stable(r) for r in rows] == [stable(r) for r in local]


def test_write_results_csv_parquet_and_metadata(tmp_path: Path) -> None:
    rows = experiments.run_grid(GRID, 1, progress=False)
    meta = experiments.metadata(GRID, [0], None)
    path = experiments.write_results(rows, tmp_path / "csv", meta=meta)
    with path.open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 4 and table[0]["run_id"] == rows[0]["run_id"]
    sidecar = json.loads((tmp_path / "csv" / "results.json").read_text())
    assert sidecar["medbench_version"] and sidecar["seeds"] == [0]
    assert "groups" in sidecar["backend"] and sidecar["cost_profile"]["sign_ns"] > 0
    import pyarrow.parquet as pq  # make test installs the parquet extra

    ppath = experiments.write_results(rows, tmp_path / "pq", fmt="parquet", meta=meta)
    back = pq.read_table(ppath).to_pylist()
    assert [r["trace_digest"] for r in back] == [r["trace_digest"] for r in rows]
    with pytest.raises(experiments.ExperimentError):
        experiments.write_results(rows, tmp_path, fmt="xls")


def test_cli_sweep_from_params_and_toml(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="medbench")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "sweep",
            "--param",
            "protocol=toy-quorum",
            "--param",
            "n=4",
            "--param",
            "n=5",
            "--param",
            "requests=4",
            "--seeds",
            "2",
            "--no-progress",
            "--out",
            str(tmp_path / "a"),
        ]
    )
    assert args.func(args) == 0
    with (tmp_path / "a" / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["n"], r["seed"]) for r in rows] == [("4", "0"), ("4", "1"), ("5", "0"), ("5", "1")]
    with (tmp_path / "a" / "nodes.csv").open() as fh:
        nodes = list(csv.DictReader(fh))
    # One row per node of each run (toy-quorum: n replicas + 1 client), keyed by the run id.
    assert len(nodes) == 2 * 5 + 2 * 6
    assert {r["run_id"] for r in nodes} == {r["run_id"] for r in rows}
    first = [r for r in nodes if r["run_id"] == rows[0]["run_id"]]
    assert [int(r["node"]) for r in first] == list(range(5))
    cpu = sum(float(r["cpu_s_total"]) for r in first)
    assert cpu == pytest.approx(float(rows[0]["cpu_s_total"]))
    assert any(float(r.get("cpu_s.message") or 0) > 0 for r in first)
    toml = tmp_path / "sweep.toml"
    toml.write_text('seeds = 1\n[grid]\nprotocol = "toy-quorum"\nn = [4]\nrequests = 3\n')
    args = parser.parse_args(
        ["sweep", "--config", str(toml), "--no-progress", "--out", str(tmp_path / "b")]
    )
    assert args.func(args) == 0
    assert (tmp_path / "b" / "results.json").exists()
    args = parser.parse_args(["sweep", "--no-progress", "--out", str(tmp_path / "c")])
    with pytest.raises(UsageError, match="no protocol"):
        args.func(args)


def test_cli_calibrate_writes_a_loadable_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="medbench")
    cli.register(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "profile.json"
    args = parser.parse_args(["calibrate", "--quick", "--out", str(out)])
    assert args.func(args) == 0
    assert "verify_ns" in capsys.readouterr().out
    prof = CostProfile.load(out)
    assert prof.verify_ns > 0
    args = parser.parse_args(
        [
            "sweep",
            "--param",
            "protocol=toy-quorum",
            "--param",
            "requests=2",
            "--profile",
            str(out),
            "--no-progress",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert args.func(args) == 0
    meta = json.loads((tmp_path / "r" / "results.json").read_text())
    assert meta["cost_profile"]["verify_ns"] == prof.verify_ns


def test_cli_value_parsing() -> None:
    """--param NAME=VALUE: JSON when it parses, text otherwise; a JSON list is several values."""
    assert cli.parse_param("n=4") == ("n", [4])
    assert cli.parse_param("n=[4,7]") == ("n", [4, 7])
    assert cli.parse_param("loss=[0.1, 0]") == ("loss", [0.1, 0])
    assert cli.parse_param("x=true") == ("x", [True]) == cli.parse_param("x=True")
    assert cli.parse_param("faults=partition:0,1|2,3@100ms") == (
        "faults",
        ["partition:0,1|2,3@100ms"],
    )
    assert cli.parse_param("byzantine_ids=1,2") == ("byzantine_ids", ["1,2"])
    assert cli.parse_param('auth="macs"') == ("auth", ["macs"])
    assert cli.parse_param("hashrates=[[1, 2]]") == ("hashrates", [[1, 2]])
    assert cli.parse_param("difficulty=null") == ("difficulty", [None])
    for bad in ("novalue", "=4", "n=[]", 'n={"a": 1}'):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.parse_param(bad)


# ------------------------------------------------------------------ toy protocol hostility
hostile = st.one_of(
    st.none(),
    st.integers(),
    st.binary(max_size=20),
    st.builds(toy.Echo, st.integers(-5, 50), st.integers(-5, 50), st.integers(-5, 9)),
    st.builds(toy.Propose, st.integers(-5, 50), st.integers(-5, 50), st.binary(max_size=8)),
    st.builds(toy.Reply, st.integers(-5, 50), st.integers(-5, 50)),
    st.builds(toy.Request, st.integers(-5, 50), st.binary(max_size=8)),
)


@given(st.lists(st.tuples(st.integers(-3, 10), hostile), max_size=40))
def test_toy_nodes_never_raise_on_hostile_input(inputs: list[tuple[int, Any]]) -> None:
    replicas = [toy.Replica(i, 4, 4) for i in range(4)]
    client = toy.Client(4, 4, 1000)
    for src, msg in inputs:
        for node in (*replicas, client):
            ready = node.step(src, msg)
            assert ready is not None
    for r in replicas:
        # nothing commits without a proposal and a strong quorum of echoes
        for seq in range(r.committed_upto):
            assert seq in r.proposals
            assert len(r.echoes[seq]) >= r.quorum


def test_calibrate_quick_gives_positive_costs(tmp_path: Path) -> None:
    from medbench.experiments import calibrate

    prof = calibrate.calibrate(quick=True)
    assert prof.sign_ns > 0 and prof.verify_ns > 0 and prof.hash_per_byte_ns > 0
    assert prof.encode_base_ns > 0 and prof.decode_base_ns > 0
    # Measured now too (no longer the defaults): dispatch, per-copy send, learning FLOPs.
    assert prof.message_base_ns > 0 and prof.send_per_dst_ns > 0 and prof.flop_ns > 0
    assert prof.host != "default"
    calibrate.save(prof, tmp_path / "p.json")
    assert calibrate.load(tmp_path / "p.json") == prof
