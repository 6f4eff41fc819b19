"""The ``medbench calibrate`` and ``medbench sweep`` subcommands.

``register(subparsers)`` adds both to the ``medbench`` parser::

    medbench calibrate [--quick] [--out profile.json]
    medbench sweep --param protocol=toy-quorum --param n=4,7,10,16 --param batch=1,10 \\
        --seeds 3 [--jobs 2 | --scheduler tcp://host:8786] [--profile profile.json] \\
        [--format csv|parquet] --out results/
    medbench sweep --config sweep.toml --out results/

A sweep TOML file holds a ``[grid]`` table (each key a list of values or one value) and optional
``seeds``, ``jobs``, ``scheduler``, ``profile`` and ``format`` at the top level; command-line
options override it (``--param`` entries are added to the grid). The output folder gets
``results.csv`` (one row per run) and ``nodes.csv`` (one row per node of each run: CPU seconds and
counts by operation, storage bytes by category), each with a JSON metadata sidecar. Values on the
command line are read as integers, then floats, then ``true``/``false``, else kept as strings.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from medbench.sim.costs import CostProfile


def parse_value(text: str) -> Any:
    """``"4"`` -> 4, ``"0.5"`` -> 0.5, ``"true"`` -> True, anything else stays a string."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    return text


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``"n=4,7,10"`` -> ``("n", [4, 7, 10])``."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,... not {text!r}")
    return name.strip(), [parse_value(v.strip()) for v in values.split(",") if v.strip()]


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Measure the CPU cost profile of this host; print it and optionally save it."""
    from medbench.experiments.calibrate import calibrate

    profile = calibrate(quick=args.quick)
    for key, value in profile.to_dict().items():
        print(f"  {key:20s} {value}")
    if args.out:
        profile.save(args.out)
        print(f"saved to {args.out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a grid x seeds sweep and write the result table and its metadata."""
    from medbench import experiments

    config: dict[str, Any] = {}
    if args.config:
        with open(args.config, "rb") as fh:
            config = tomllib.load(fh)
    grid: dict[str, Any] = dict(config.get("grid", {}))
    for name, values in args.param or []:
        grid[name] = values
    if args.protocol:
        grid["protocol"] = args.protocol
    if "protocol" not in grid:
        print("sweep: no protocol given (--protocol or --param protocol=...)", file=sys.stderr)
        return 2
    seeds = args.seeds if args.seeds is not None else config.get("seeds", 1)
    jobs = args.jobs if args.jobs is not None else int(config.get("jobs", 1))
    scheduler = args.scheduler or config.get("scheduler")
    fmt = args.format or config.get("format", "csv")
    profile_path = args.profile or config.get("profile")
    profile = CostProfile.load(profile_path) if profile_path else None
    seed_list = experiments.seed_list(seeds)
    rows, nodes = experiments.run_grid_detailed(
        grid,
        seed_list,
        n_jobs=jobs,
        scheduler=scheduler,
        profile=profile,
        progress=not args.no_progress,
    )
    meta = experiments.metadata(grid, seed_list, profile)
    path = experiments.write_results(rows, Path(args.out), fmt=fmt, meta=meta)
    node_path = experiments.write_results(nodes, Path(args.out), fmt=fmt, meta=meta, name="nodes")
    print(f"{len(rows)} runs -> {path}; per-node CPU and storage -> {node_path}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``calibrate`` and ``sweep`` to ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser("calibrate", help="measure CPU costs of crypto/hash/codec here")
    p.add_argument("--quick", action="store_true", help="fewer repeats (about a second)")
    p.add_argument("--out", help="save the profile as JSON to this path")
    p.set_defaults(func=cmd_calibrate)

    p = subparsers.add_parser("sweep", help="run a parameter grid x seeds in the simulator")
    p.add_argument("--config", help="TOML file with a [grid] table and options")
    p.add_argument("--protocol", help="protocol name (same as --param protocol=NAME)")
    p.add_argument(
        "--param",
        action="append",
        type=parse_param,
        metavar="NAME=V1,V2",
        help="a grid axis (repeatable)",
    )
    p.add_argument("--seeds", type=int, help="number of seeds (0..k-1); default 1")
    p.add_argument("--jobs", type=int, help="local worker processes (joblib); default 1")
    p.add_argument("--scheduler", help="Dask scheduler address (runs on the cluster)")
    p.add_argument("--profile", help="cost profile JSON from 'medbench calibrate --out'")
    p.add_argument("--format", choices=("csv", "parquet"), help="table format; default csv")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_sweep)
