"""Every command fails with one line on standard error and the documented exit status.

Each bad input of :data:`BAD` goes through :func:`medbench.cli.main` in this process: exit status
2 (usage error), exactly one line on stderr naming the problem, no traceback. The inputs are the
ones a researcher or a student types by mistake: bad values, unknown names, missing, unreadable
or malformed files, bad TOML, an unknown protocol, a run too large to start.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from medbench import cli
from medbench.cli import sim as cli_sim


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Input files of every kind of wrong."""
    d = tmp_path_factory.mktemp("bad-inputs")
    made = {
        "dir": d / "a-folder",
        "text": d / "text.txt",
        "empty": d / "empty.sqlite",
        "binary": d / "noise.bin",
        "toml_bad": d / "bad.toml",
        "toml_key": d / "key.toml",
        "toml_grid": d / "grid.toml",
        "toml_empty": d / "empty-list.toml",
        "toml_table": d / "table.toml",
        "toml_seeds": d / "seeds.toml",
        "json_bad": d / "bad.json",
        "json_list": d / "list.json",
        "json_field": d / "field.json",
        "other_db": d / "other.sqlite",
        "sweep_done": d / "done",
        "latin1": d / "latin1.toml",
    }
    made["dir"].mkdir()
    made["text"].write_text("hello\n")
    made["empty"].touch()
    made["binary"].write_bytes(bytes(range(256)) * 4)
    made["toml_bad"].write_text("[grid\nprotocol = 'pbft'\n")
    made["toml_key"].write_text('seed = 3\n[grid]\nprotocol = "pbft"\n')
    made["toml_grid"].write_text("grid = 3\n")
    made["toml_empty"].write_text('[grid]\nprotocol = "pbft"\nn = []\n')
    made["toml_table"].write_text('[grid]\nprotocol = "pbft"\n[grid.n]\nx = 1\n')
    made["toml_seeds"].write_text('seeds = -2\n[grid]\nprotocol = "pbft"\n')
    made["json_bad"].write_text("{not json")
    made["json_list"].write_text("[1, 2]")
    made["json_field"].write_text('{"warp_ns": 3}')
    made["latin1"].write_bytes("[grid]\nprotocol = 'caf\xe9'\n".encode("latin-1"))
    with sqlite3.connect(made["other_db"]) as db:
        db.execute("create table t (x)")
    made["sweep_done"].mkdir()
    (made["sweep_done"] / "results.jsonl").write_text('{"run_id": "x", "status": "ok"}\n')
    return {k: str(v) for k, v in made.items()}


SW = ["sweep", "--no-progress"]
PB = [*SW, "--protocol", "pbft"]

# (argv with {file} placeholders, a fragment the one-line message must contain)
BAD: list[tuple[list[str], str]] = [
    # the parser
    ([], "required: COMMAND"),
    (["nosuch"], "invalid choice"),
    (["selfcheck", "--bogus"], "unrecognized arguments"),
    (["sweep", "--protocol", "pbft"], "required: --out"),
    (["selfcheck", "--log2-leaves", "x"], "expected an integer"),
    (["selfcheck", "--log2-leaves", "-1"], "0..24"),
    (["selfcheck", "--log2-leaves", "40"], "0..24"),
    # verify
    (["verify", "--audit", "{dir}/missing.bin"], "no publication file"),
    (["verify", "--audit", "{dir}"], "is a folder"),
    (["verify", "--audit", "{binary}"], "not a valid publication"),
    (["verify", "--audit", "{empty}"], "is empty"),
    (["verify", "--attack", "nuke"], "invalid choice"),
    (["verify", "--patients", "0"], "1..100000"),
    (["verify", "--block-size", "0"], ">= 1"),
    (["verify", "--seed", "-1"], ">= 0"),
    (["verify", "--publish", "{dir}/no/such/out.bin"], "no folder"),
    # store
    (["store"], "required"),
    (["store", "report", "{dir}/missing.sqlite"], "no node store"),
    (["store", "report", "{empty}"], "is empty"),
    (["store", "check", "{dir}"], "is a folder"),
    (["store", "check", "{text}"], "SQLite"),
    (["store", "report", "{other_db}"], "store"),
    (["store", "report", "{other_db}", "--blobs", "{dir}/nope"], "blob store"),
    # demo
    (["demo"], "required"),
    (["demo", "referral", "--seed", "x"], "expected an integer"),
    (["demo", "referral", "--seed", "-3"], ">= 0"),
    (["demo", "referral", "--trace", "all"], "invalid choice"),
    (["demo", "referral", "--out", "{dir}/no/such/report.txt"], "no folder"),
    (["demo", "referral", "--out", "{dir}"], "is a folder"),
    (["access-demo", "--names", "0"], ">= 1"),
    # calibrate
    (["calibrate", "--out", "{dir}"], "is a folder"),
    (["calibrate", "--out", "{dir}/no/such/p.json"], "no folder"),
    # params
    (["params", "nosuch"], "unknown protocol"),
    (["params", "pbfft"], "did you mean 'pbft'"),
    (["params", "pbft", "--group", "x"], "invalid choice"),
    # table1 / reproduce (checked before any run)
    (["table1", "--seed", "x"], "expected an integer"),
    (["table1", "--profile", "{dir}/missing.json"], "no cost profile file"),
    (["reproduce", "--quick", "--profile", "{json_bad}"], "not JSON"),
    (["reproduce", "--quick", "--out", "{text}"], "is a file"),
    (["table1", "--quick", "--profile", "{json_field}"], "unknown cost profile fields"),
    # sweep: what to run
    ([*SW, "--out", "{dir}/o"], "no protocol given"),
    ([*SW, "--protocol", "nosuch", "--out", "{dir}/o"], "unknown protocol"),
    ([*SW, "--protocol", "pbft", "--param", "protocol=pow", "--out", "{dir}/o"], "not both"),
    ([*PB, "--param", "requets=10", "--out", "{dir}/o"], "did you mean 'requests'"),
    ([*PB, "--param", "novalue", "--out", "{dir}/o"], "NAME=VALUE"),
    ([*PB, "--param", "=4", "--out", "{dir}/o"], "NAME=VALUE"),
    ([*PB, "--param", "n=[]", "--out", "{dir}/o"], "empty list"),
    ([*PB, "--param", 'n={"a": 1}', "--out", "{dir}/o"], "JSON object"),
    ([*PB, "--param", "n=abc", "--out", "{dir}/o"], "parameter n of pbft"),
    ([*PB, "--param", "n=4,7", "--out", "{dir}/o"], "--param n=4"),
    ([*PB, "--param", "n=0", "--out", "{dir}/o"], "greater than or equal to 1"),
    ([*PB, "--param", "n=true", "--out", "{dir}/o"], "expected a number"),
    ([*PB, "--param", "n=4.5", "--out", "{dir}/o"], "fractional part"),
    ([*PB, "--param", "requests=-5", "--out", "{dir}/o"], "requests"),
    ([*PB, "--param", "loss=2", "--out", "{dir}/o"], "loss"),
    ([*PB, "--param", "faults=crash:1@soon", "--out", "{dir}/o"], "bad time"),
    ([*PB, "--param", "faults=explode:1@1ms", "--out", "{dir}/o"], "unknown fault action"),
    ([*PB, "--param", "faults=crash:1", "--out", "{dir}/o"], "lacks '@time'"),
    ([*PB, "--param", "topology=mars", "--out", "{dir}/o"], "topology"),
    ([*PB, "--param", "topology={dir}/none.graphml", "--out", "{dir}/o"], "no topology file"),
    ([*PB, "--param", "load=square", "--out", "{dir}/o"], "parameter load"),
    ([*PB, "--param", "load=poisson", "--param", "rate_tps=0", "--out", "{dir}/o"], "rate_tps"),
    ([*PB, "--param", "byzantine=lazy", "--out", "{dir}/o"], "byzantine"),
    ([*PB, "--param", "block_mode=sideways", "--out", "{dir}/o"], "block_mode"),
    ([*PB, "--param", "cpu=quantum", "--out", "{dir}/o"], "parameter cpu"),
    ([*PB, "--param", "txs=5", "--param", "requests=6", "--out", "{dir}/o"], "not both"),
    ([*SW, "--protocol", "poa", "--param", "authorities=x", "--out", "{dir}/o"], "authorities"),
    ([*SW, "--protocol", "pow", "--param", "batch=4", "--out", "{dir}/o"], "unknown parameter"),
    # sweep: seeds, jobs, formats, budgets
    ([*PB, "--seeds", "-1", "--out", "{dir}/o"], "at least one seed"),
    ([*PB, "--seeds", "0", "--out", "{dir}/o"], "at least one seed"),
    ([*PB, "--seeds", "x", "--out", "{dir}/o"], "--seeds"),
    ([*PB, "--seeds", "[1, 1]", "--out", "{dir}/o"], "repeats"),
    ([*PB, "--seeds", "[-1]", "--out", "{dir}/o"], "non-negative"),
    ([*PB, "--jobs", "0", "--out", "{dir}/o"], "--jobs"),
    ([*PB, "--format", "xls", "--out", "{dir}/o"], "invalid choice"),
    ([*PB, "--param", "n=100000", "--out", "{dir}/o"], "--force"),
    ([*PB, "--max-memory", "lots", "--out", "{dir}/o"], "bad size"),
    ([*PB, "--max-messages", "10", "--out", "{dir}/o"], "estimated"),
    # sweep: files
    ([*SW, "--config", "{dir}/missing.toml", "--out", "{dir}/o"], "no config file"),
    ([*SW, "--config", "{dir}", "--out", "{dir}/o"], "is a folder"),
    ([*SW, "--config", "{toml_bad}", "--out", "{dir}/o"], "bad TOML"),
    ([*SW, "--config", "{binary}", "--out", "{dir}/o"], "TOML"),
    ([*SW, "--config", "{latin1}", "--out", "{dir}/o"], "TOML"),
    ([*SW, "--config", "{toml_key}", "--out", "{dir}/o"], "unknown key(s) seed"),
    ([*SW, "--config", "{toml_grid}", "--out", "{dir}/o"], "must be a table"),
    ([*SW, "--config", "{toml_empty}", "--out", "{dir}/o"], "empty list"),
    ([*SW, "--config", "{toml_table}", "--out", "{dir}/o"], "is a table"),
    ([*SW, "--config", "{toml_seeds}", "--out", "{dir}/o"], "at least one seed"),
    ([*PB, "--profile", "{dir}/missing.json", "--out", "{dir}/o"], "no cost profile file"),
    ([*PB, "--profile", "{json_bad}", "--out", "{dir}/o"], "not JSON"),
    ([*PB, "--profile", "{json_list}", "--out", "{dir}/o"], "JSON object"),
    ([*PB, "--profile", "{json_field}", "--out", "{dir}/o"], "unknown cost profile fields"),
    ([*PB, "--out", "{text}"], "is a file"),
    ([*PB, "--out", "{sweep_done}"], "--resume"),
    ([*PB, "--out", "{sweep_done}", "--resume", "--overwrite"], "pick one"),
    ([*PB, "--out", "{dir}/o2", "--retry-failed"], "goes with --resume"),
]
"""The bad inputs: every one must exit 2 with one line naming the problem."""


def _argv(argv: list[str], files: dict[str, str]) -> list[str]:
    out = []
    for a in argv:
        for key, path in files.items():
            a = a.replace("{" + key + "}", path)
        out.append(a)
    return out


@pytest.mark.parametrize(("argv", "fragment"), BAD, ids=[" ".join(a) or "(none)" for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], fragment: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(_argv(argv, files))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("medbench")
    assert fragment in lines[0], lines[0]
    assert status == 2


def test_the_table_is_wide() -> None:
    """The issue found 36 bad inputs; this table holds more, over every command."""
    assert len(BAD) >= 80
    commands = {a[0] for a, _ in BAD if a}
    assert commands >= {"selfcheck", "verify", "store", "demo", "access-demo", "calibrate"}
    assert commands >= {"params", "table1", "reproduce", "sweep"}


def test_debug_shows_the_traceback(files: dict[str, str]) -> None:
    with pytest.raises(Exception, match="requets"):
        cli.main(["--debug", *PB, "--param", "requets=1", "--out", files["dir"] + "/o"])


def test_ctrl_c_is_status_130_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_sim, "cmd_calibrate", interrupted)
    assert cli.main(["calibrate"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        "medbench calibrate: error: interrupted"
    ]


def test_an_internal_error_is_status_1_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(cli_sim, "cmd_calibrate", broken)
    assert cli.main(["calibrate"]) == 1
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: oops" in err and "--debug" in err
    assert len(err.strip().splitlines()) == 1


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert cli.main(["sweep", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("pbft", "toy-quorum", "[grid]", "partition:0,1|2,3@100ms", "--resume"):
        assert text in out


def test_a_failed_check_is_status_1(files: dict[str, str], tmp_path: Path) -> None:
    """A sweep whose runs fail (dpos refuses 4 members) finishes, with the failures as rows."""
    out = tmp_path / "dpos"
    status = cli.main([*SW, "--protocol", "dpos", "--param", "n=4", "--out", str(out)])
    assert status == 1
    assert '"status": "failed"' in (out / "results.jsonl").read_text()
