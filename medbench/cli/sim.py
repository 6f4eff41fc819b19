"""The ``medbench calibrate`` and ``medbench sweep`` subcommands.

``register(subparsers)`` adds both to the ``medbench`` parser::

    medbench calibrate [--quick] [--out profile.json]
    medbench sweep --protocol pbft --param n=4 --param n=7 --param 'batch=[1,10]' --seeds 3 \\
        [--jobs 2 | --scheduler tcp://host:8786] [--profile profile.json] \\
        [--format csv|parquet] [--resume | --overwrite] [--force] --out results/
    medbench sweep --config sweep.toml --out results/

``--param NAME=VALUE`` (see :func:`parse_param`) carries every value the TOML form can: the value
is read as JSON when it is JSON (``4``, ``0.5``, ``true``, ``"text"``, ``[4, 7]``) and kept as
text otherwise (``partition:0,1|2,3@100ms``); a JSON list is several values, and so is the
same NAME repeated. One value that is itself a list is a list in a list (``'hashrates=[[1,2]]'``),
as in TOML. The old comma form (``n=4,7``) is gone: a comma is part of many values (fault
schedules, replica id lists), so it cannot mean "several values" without ambiguity.

The TOML file (:data:`TOML_HELP`) holds a ``[grid]`` table and optional top-level options; the
command line overrides it (a ``--param`` replaces that grid key). The output folder gets
``results.jsonl`` and ``nodes.jsonl`` as runs finish (:mod:`medbench.experiments.sweep`), then
``results.csv`` (one row per run; ``status``, ``error_type`` and ``error`` say how it went) and
``nodes.csv`` (one row per node of each run), each with a JSON metadata sidecar.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

from medbench.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    UsageError,
    input_file,
    output_file,
    output_folder,
)
from medbench.experiments import runner
from medbench.sim.costs import CostProfile

TOML_HELP = """\
TOML format (--config FILE):
  seeds = 3                 # a count (0..k-1) or a list of seeds: [1, 5, 9]
  jobs = 2                  # local worker processes (optional)
  format = "csv"            # or "parquet"
  profile = "profile.json"  # cost profile from 'medbench calibrate --out' (optional)
  scheduler = "tcp://host:8786"   # Dask scheduler (optional)
  max_messages = 5e8        # size budget (optional; --force ignores it)
  max_memory = "8G"
  [grid]                    # each key: one value, or a list of values to sweep
  protocol = "pow"
  n = 4
  load = ["constant", "poisson"]
  faults = "partition:0,1|2,3@100ms"
  hashrates = [[25e6, 25e6, 25e6, 75e6]]   # one value that is a list"""

PARAM_HELP = """\
--param NAME=VALUE: VALUE is JSON when it parses as JSON (4, 0.5, true, "x", [4, 7]),
  else text (crash:3@200ms; partition:0,1|2,3@100ms). A JSON list gives several values,
  and so does repeating NAME: --param n=4 --param n=7 == --param 'n=[4,7]'.
  Commas never split a value (fault schedules and id lists contain them)."""

TOML_KEYS = frozenset(
    {"grid", "seeds", "jobs", "scheduler", "profile", "format", "max_messages", "max_memory"}
)


def parse_value(text: str) -> Any:
    """``"4"`` -> 4, ``"[4,7]"`` -> [4, 7], ``"true"``/``"True"`` -> True, other text as is."""
    stripped = text.strip()
    if stripped in ("True", "False"):
        return stripped == "True"
    try:
        value = json.loads(stripped)
    except (json.JSONDecodeError, ValueError):
        return text
    if isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"a JSON object is not a parameter value: {text!r}")
    return value


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``"n=4"`` -> ``("n", [4])``; ``"n=[4,7]"`` -> ``("n", [4, 7])`` (see the module doc)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    value = parse_value(raw)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise argparse.ArgumentTypeError(f"{name}: an empty list gives no runs")
    return name, values


def parse_seeds(value: Any) -> list[int]:
    """A seed count (``3`` -> 0, 1, 2) or a list of non-negative seeds; else a UsageError."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise UsageError(f"--seeds: expected a count or a JSON list, not {value!r}") from None
    if isinstance(value, bool):
        raise UsageError(f"seeds: expected a count or a list of seeds, not {value}")
    if isinstance(value, int):
        if value < 1:
            raise UsageError(f"seeds: need at least one seed, not {value}")
        return list(range(value))
    if isinstance(value, list) and value:
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
            raise UsageError(f"seeds: a list of non-negative integers, not {value!r}")
        if len(set(value)) != len(value):
            raise UsageError(f"seeds: {value!r} repeats a seed")
        return list(value)
    raise UsageError(f"seeds: expected a count >= 1 or a non-empty list, not {value!r}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"expected 1 or more (or -1: every core), not {value}")
    return value


def _load_profile(path: str) -> CostProfile:
    input_file(path, "cost profile file")
    return CostProfile.load(path)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Measure the CPU cost profile of this host; print it and optionally save it."""
    from medbench.experiments.calibrate import calibrate

    if args.out:
        output_file(args.out)
    profile = calibrate(quick=args.quick)
    for key, value in profile.to_dict().items():
        print(f"  {key:20s} {value}")
    if args.out:
        profile.save(args.out)
        print(f"saved to {args.out}")
    return 0


def load_config(path: str) -> dict[str, Any]:
    """The sweep TOML file, checked: known keys, a ``[grid]`` table."""
    p = input_file(path, "config file")
    with p.open("rb") as fh:
        try:
            config = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: bad TOML: {exc}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not a TOML file (not UTF-8 text)") from None
    unknown = set(config) - TOML_KEYS
    if unknown:
        raise UsageError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(TOML_KEYS))}"
        )
    grid = config.get("grid", {})
    if not isinstance(grid, dict):
        raise UsageError(f"{path}: 'grid' must be a table ([grid])")
    for key, value in grid.items():
        if isinstance(value, dict):
            raise UsageError(f"{path}: grid.{key} is a table; expected a value or a list")
        if isinstance(value, list) and not value:
            raise UsageError(f"{path}: grid.{key} is an empty list (no runs)")
    return config


def _grid(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    grid: dict[str, Any] = dict(config.get("grid", {}))
    given: dict[str, list[Any]] = {}
    for name, values in args.param or []:
        given.setdefault(name, []).extend(values)
    for name, values in given.items():
        grid[name] = values if len(values) > 1 else values[0]
    if args.protocol:
        if "protocol" in given:
            raise UsageError("give the protocol by --protocol or by --param protocol=, not both")
        grid["protocol"] = args.protocol if len(args.protocol) > 1 else args.protocol[0]
    if "protocol" not in grid:
        raise UsageError(
            "no protocol given (--protocol NAME or --param protocol=NAME); "
            f"registered: {', '.join(runner.protocols())}"
        )
    return grid


def _comma_hint(grid: dict[str, Any]) -> str:
    for name, value in grid.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and "," in v and all(_is_number(x) for x in v.split(",")):
                return f" (several values: --param {name}={v.split(',')[0]} ... or '{name}=[{v}]')"
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a grid x seeds sweep, writing each run as it finishes (see the module docstring)."""
    from medbench import experiments
    from medbench.experiments import size
    from medbench.experiments import sweep as sw

    config = load_config(args.config) if args.config else {}
    grid = _grid(args, config)
    seeds = parse_seeds(args.seeds if args.seeds is not None else config.get("seeds", 1))
    jobs = args.jobs if args.jobs is not None else config.get("jobs", 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or (jobs < 1 and jobs != -1):
        raise UsageError(f"jobs: expected 1 or more (or -1: every core), not {jobs!r}")
    scheduler = args.scheduler or config.get("scheduler")
    fmt = args.format or config.get("format", "csv")
    if fmt not in ("csv", "parquet"):
        raise UsageError(f"format: expected 'csv' or 'parquet', not {fmt!r}")
    profile_path = args.profile or config.get("profile")
    profile = _load_profile(str(profile_path)) if profile_path else None
    try:
        tasks = sw.plan(grid, seeds)
    except experiments.ExperimentError as exc:
        raise UsageError(f"{exc}{_comma_hint(grid)}") from None
    try:
        max_messages = float(args.max_messages or config.get("max_messages", 5e8))
        memory = args.max_memory or config.get("max_memory")
        if memory:
            max_memory = size.parse_bytes(str(memory))
        else:  # half the RAM, shared by the runs that go at once
            workers = (os.cpu_count() or 1) if jobs == -1 else jobs
            max_memory = size.Budget().memory_limit() / max(1, workers if not scheduler else 1)
        if not max_messages > 0:
            raise ValueError(f"max_messages must be positive, not {max_messages}")
        budget = size.Budget(max_messages, max_memory)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not args.force:
        sw.check_size(tasks, budget)
    out = Path(args.out)
    _check_out(out, args)
    meta = experiments.metadata(grid, seeds, profile)
    summary = sw.execute(
        tasks,
        out,
        jobs=jobs,
        scheduler=scheduler,
        profile=profile,
        resume=args.resume,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
    )
    path, node_path, rows = sw.finish(out, fmt=fmt, meta=meta)
    table = sw.Summary.of_rows(rows)
    print(f"this time: {summary.line()}")
    print(
        f"{path}: {table.planned} runs, {table.ok} ok, {table.failed} failed, "
        f"{table.not_live} not live"
        + (f", {table.unsafe} unsafe" if table.unsafe else "")
        + f"; per-node CPU and storage -> {node_path}"
    )
    if table.not_live:
        shown = ", ".join(table.not_live_ids[:5])
        more = " ..." if table.not_live > 5 else ""
        print(f"NOT LIVE (some requests never completed; see liveness_reason): {shown}{more}")
    if summary.interrupted:
        argv = [a for a in getattr(args, "argv", []) if a != "--overwrite"]
        again = shlex.join(["medbench", *argv, *([] if "--resume" in argv else ["--resume"])])
        print(
            f"medbench sweep: interrupted; {summary.done} finished runs are saved in {out}. "
            f"Resume with: {again}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if summary.failed:
        print(
            f"medbench sweep: error: {summary.failed} run(s) failed, first: "
            f"{summary.first_error} (rows with status=failed)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def _check_out(out: Path, args: argparse.Namespace) -> None:
    from medbench.experiments import sweep as sw

    output_folder(str(out))
    if args.resume and args.overwrite:
        raise UsageError("--resume continues a sweep and --overwrite starts over: pick one")
    logs = [out / sw.RESULTS, out / sw.NODES]
    if any(p.exists() for p in logs) and not (args.resume or args.overwrite):
        done = len(sw.read_rows(out / sw.RESULTS))
        raise UsageError(
            f"{out} already holds a sweep ({done} runs); --resume to continue it "
            "or --overwrite to start over"
        )
    if args.overwrite:
        for p in logs:
            p.unlink(missing_ok=True)
    if args.retry_failed and not args.resume:
        raise UsageError("--retry-failed goes with --resume")


def register(subparsers: Any) -> None:
    """Add ``calibrate`` and ``sweep`` to ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser("calibrate", help="measure CPU costs of crypto/hash/codec here")
    p.add_argument("--quick", action="store_true", help="fewer repeats (about a second)")
    p.add_argument("--out", help="save the profile as JSON to this path")
    p.set_defaults(func=cmd_calibrate)

    epilog = (
        f"protocols: {', '.join(runner.protocols())} "
        "('medbench params NAME' lists a protocol's parameters)\n\n"
        f"{PARAM_HELP}\n\n{TOML_HELP}\n\n"
        "Exit status: 0 every run finished, 1 some runs failed (rows with status=failed), "
        "2 usage error, 130 interrupted (what finished is saved; --resume continues)."
    )
    p = subparsers.add_parser(
        "sweep",
        help="run a parameter grid x seeds in the simulator",
        description="Run every combination of the grid's values with every seed; each run is "
        "written to OUT as it finishes.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="TOML file with a [grid] table and options (below)")
    p.add_argument(
        "--protocol",
        action="append",
        metavar="NAME",
        help="protocol to sweep (repeatable; same as --param protocol=NAME)",
    )
    p.add_argument(
        "--param",
        action="append",
        type=parse_param,
        metavar="NAME=VALUE",
        help="a grid value (repeatable; see below)",
    )
    p.add_argument("--seeds", help="seed count (0..k-1, default 1) or a JSON list: '[1,5,9]'")
    p.add_argument("--jobs", type=_positive_int, help="local worker processes; default 1")
    p.add_argument("--scheduler", help="Dask scheduler address (runs on the cluster)")
    p.add_argument("--profile", help="cost profile JSON from 'medbench calibrate --out'")
    p.add_argument("--format", choices=("csv", "parquet"), help="table format; default csv")
    p.add_argument("--resume", action="store_true", help="skip runs already in OUT")
    p.add_argument(
        "--retry-failed", action="store_true", help="with --resume: run failed runs again"
    )
    p.add_argument("--overwrite", action="store_true", help="start over in an OUT that has runs")
    p.add_argument("--force", action="store_true", help="run even past the size budget")
    p.add_argument(
        "--max-messages", type=float, help="size budget: estimated messages per run (5e8)"
    )
    p.add_argument(
        "--max-memory",
        help="size budget: estimated memory per run, e.g. 4G (half the RAM / jobs)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_sweep)
