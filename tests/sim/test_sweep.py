"""Sweeps keep what they did: rows as runs finish, failures as rows, Ctrl-C, resume, Dask."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from medbench import cli, experiments
from medbench.experiments import NONDETERMINISTIC_COLUMNS, Deployment, size, toy
from medbench.experiments import sweep as sw

GRID = {"protocol": "toy-quorum", "n": [4, 5], "requests": 4}


def flaky(params: Mapping[str, Any], rng: random.Random) -> Deployment:
    """toy-quorum, except that n = 5 fails and n = 6 is interrupted (Ctrl-C)."""
    if int(params["n"]) == 5:
        raise RuntimeError("replica 5 caught fire")
    if int(params["n"]) == 6:
        raise KeyboardInterrupt
    return toy.build(params, rng)


@pytest.fixture(autouse=True)
def _flaky_protocol() -> None:
    experiments.register_protocol("test-flaky", flaky, schema=toy.ToyParams)


def stable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in NONDETERMINISTIC_COLUMNS}


def test_each_row_is_on_disk_when_its_run_finishes(tmp_path: Path) -> None:
    tasks = sw.plan(GRID, [0, 1])
    seen: list[int] = []

    def on_row(row: dict[str, Any]) -> None:
        seen.append(len(sw.read_rows(tmp_path / sw.RESULTS)))

    summary = sw.execute(tasks, tmp_path, progress=False, on_row=on_row)
    assert seen == [1, 2, 3, 4]  # written and flushed before the next run starts
    assert summary.ok == 4 and summary.failed == 0 and summary.not_live == 0
    path, node_path, rows = sw.finish(tmp_path)
    assert [r["status"] for r in rows] == ["ok"] * 4
    with path.open() as fh:
        table = list(csv.DictReader(fh))
    assert [(r["n"], r["seed"]) for r in table] == [("4", "0"), ("4", "1"), ("5", "0"), ("5", "1")]
    assert len(list(csv.DictReader(node_path.open()))) == 2 * 5 + 2 * 6


def test_a_failing_run_is_a_row_and_the_sweep_goes_on(tmp_path: Path) -> None:
    tasks = sw.plan({"protocol": "test-flaky", "n": [4, 5, 7], "requests": 3}, [0])
    summary = sw.execute(tasks, tmp_path, progress=False)
    assert (summary.ok, summary.failed) == (2, 1)
    assert summary.first_error == "RuntimeError: replica 5 caught fire"
    rows = {r["n"]: r for r in sw.finish(tmp_path)[2]}
    assert rows[5]["status"] == "failed" and rows[5]["error_type"] == "RuntimeError"
    assert rows[5]["error"] == "replica 5 caught fire" and rows[5]["requests"] == 3
    assert rows[7]["status"] == "ok" and rows[7]["completed"] == 3
    assert rows[4]["error_type"] == ""


def test_ctrl_c_keeps_what_finished_and_resume_completes(tmp_path: Path) -> None:
    grid = {"protocol": "test-flaky", "n": [4, 7, 6, 8], "requests": 3}
    tasks = sw.plan(grid, [0])
    summary = sw.execute(tasks, tmp_path, progress=False)
    assert summary.interrupted and summary.ok == 2 and summary.planned == 4
    assert [r["n"] for r in sw.read_rows(tmp_path / sw.RESULTS)] == [4, 7]
    # resume: done runs are skipped (a run that keeps interrupting is left out here)
    rest = [t for t in tasks if t.params["n"] != 6]
    ran: list[int] = []
    again = sw.execute(
        rest, tmp_path, progress=False, resume=True, on_row=lambda r: ran.append(r["n"])
    )
    assert ran == [8] and again.skipped == 2 and not again.interrupted
    assert sorted(r["n"] for r in sw.finish(tmp_path)[2]) == [4, 7, 8]


def test_resume_drops_a_cut_off_line_and_retries_failures_on_request(tmp_path: Path) -> None:
    tasks = sw.plan({"protocol": "test-flaky", "n": [4, 5], "requests": 2}, [0])
    sw.execute(tasks, tmp_path, progress=False)
    with (tmp_path / sw.RESULTS).open("a") as fh:
        fh.write('{"run_id": "half a li')  # a crash in the middle of a write
    assert len(sw.read_rows(tmp_path / sw.RESULTS)) == 2
    skipped = sw.execute(tasks, tmp_path, progress=False, resume=True)
    assert skipped.skipped == 2 and skipped.done == 0
    retried = sw.execute(tasks, tmp_path, progress=False, resume=True, retry_failed=True)
    assert retried.skipped == 1 and retried.failed == 1
    lines = (tmp_path / sw.RESULTS).read_text().splitlines()
    assert all(json.loads(line) for line in lines) and len(lines) == 3
    assert len(sw.finish(tmp_path)[2]) == 2  # the retried row replaced the first one


def test_joblib_workers_give_the_rows_of_one_process(tmp_path: Path) -> None:
    tasks = sw.plan({**GRID, "protocol": "test-flaky"}, [0, 1])
    one = sw.execute(tasks, tmp_path / "one", progress=False)
    two = sw.execute(tasks, tmp_path / "two", jobs=2, progress=False)
    assert (one.ok, one.failed) == (two.ok, two.failed) == (2, 2)
    a = {r["run_id"]: stable(r) for r in sw.finish(tmp_path / "one")[2]}
    b = {r["run_id"]: stable(r) for r in sw.finish(tmp_path / "two")[2]}
    assert a == b


def test_dask_rows_arrive_as_runs_complete(tmp_path: Path) -> None:
    import dask.distributed as distributed

    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    )
    tasks = sw.plan(GRID, [0])
    try:
        summary = sw.execute(tasks, tmp_path, scheduler=cluster.scheduler_address, progress=False)
    finally:
        cluster.close()
    assert summary.ok == 2
    assert {r["n"] for r in sw.read_rows(tmp_path / sw.RESULTS)} == {4, 5}


def test_plan_checks_every_point_and_keys_runs_on_canonical_parameters() -> None:
    with pytest.raises(experiments.ExperimentError, match="did you mean 'requests'"):
        sw.plan({"protocol": "toy-quorum", "requets": 3}, [0])
    old = sw.plan({"protocol": "toy-quorum", "txs": 3, "n": "4"}, [0])
    new = sw.plan({"protocol": "toy-quorum", "requests": 3, "n": 4}, [0])
    assert old[0].run_id == new[0].run_id and old[0].params == new[0].params
    both = sw.plan({"protocol": "toy-quorum", "n": [4, "4"]}, [0, 1])
    assert len(both) == 2  # the same run twice in a grid runs once
    with pytest.raises(experiments.ExperimentError, match="empty"):
        sw.plan({"protocol": "toy-quorum", "n": []}, [0])


def test_size_guard_refuses_a_huge_run_before_it_starts() -> None:
    tasks = sw.plan({"protocol": "pbft", "n": 100_000}, [0])
    assert tasks[0].estimate.memory_bytes > 1e12
    with pytest.raises(size.TooLarge, match="--force"):
        sw.check_size(tasks, size.Budget())
    sw.check_size(sw.plan({"protocol": "pbft", "n": 4}, [0]), size.Budget())
    with pytest.raises(size.TooLarge, match="messages"):
        sw.check_size(sw.plan({"protocol": "pbft", "n": 16}, [0]), size.Budget(max_messages=100))


def test_cli_sweep_flags_runs_that_were_not_live(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's default pow sweep completed nothing and said nothing: now it says so."""
    argv = ["sweep", "--no-progress", "--protocol", "pow", "--param", "requests=4"]
    argv += ["--param", "duration_ms=3000", "--param", "tick_us=0", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "1 not live" in out and "NOT LIVE" in out
    assert cli.main([*argv, "--resume"]) == 0
    assert "1 already done, skipped" in capsys.readouterr().out


def test_cli_faults_with_commas_and_the_interrupt_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["sweep", "--no-progress", "--protocol", "toy-quorum", "--param", "requests=3"]
    argv += ["--param", "faults=partition:0,1|2,3@100ms", "--param", "duration_ms=500"]
    assert cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    row = sw.read_rows(tmp_path / "a" / sw.RESULTS)[0]
    assert row["faults"] == "partition:0,1|2,3@100ms"

    real = sw.execute

    def interrupted(*args: Any, **kwargs: Any) -> sw.Summary:
        s = real(*args, **kwargs)
        s.interrupted = True
        return s

    monkeypatch.setattr(sw, "execute", interrupted)
    assert cli.main([*argv, "--out", str(tmp_path / "b")]) == 130
    err = capsys.readouterr().err
    assert "Resume with: medbench sweep" in err and err.rstrip().endswith("--resume")


def test_the_toml_example_of_the_help_is_a_valid_sweep(tmp_path: Path) -> None:
    from medbench.cli import sim as cli_sim

    body = cli_sim.TOML_HELP.split("\n", 1)[1]
    text = "\n".join(line.strip() for line in body.splitlines())
    text = text.replace('scheduler = "tcp://host:8786"', "").replace('"profile.json"', '""')
    path = tmp_path / "sweep.toml"
    path.write_text(text.replace('profile = ""', ""))
    config = cli_sim.load_config(str(path))
    tasks = sw.plan(config["grid"], cli_sim.parse_seeds(config["seeds"]))
    assert len(tasks) == 2 * 3
    assert tasks[0].params["hashrates"] == (25e6, 25e6, 25e6, 75e6)
    assert tasks[0].params["faults"] == "partition:0,1|2,3@100ms"
