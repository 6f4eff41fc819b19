"""The ``medbench validate`` subcommand: the simulator checked against the real cluster.

``register(subparsers)`` adds::

    medbench validate [--nodes 4,7] [--clients 64] [--duration 8] [--quick] --out DIR

The logic is :mod:`medbench.experiments.validate`.
"""

from __future__ import annotations

import argparse
from typing import Any


def cmd_validate(args: argparse.Namespace) -> int:
    """Calibrate, run the cluster and the simulator, print both with their ratio."""
    from medbench.experiments.validate import ValidateSpec, validate

    spec = ValidateSpec(
        nodes=[int(x) for x in args.nodes.split(",")],
        clients=args.clients,
        duration_s=args.duration,
        warmup_s=args.warmup,
        latency_us=args.latency_us,
        tick_us=args.tick_us,
        cores=args.cores,
        quick=args.quick,
        storage=args.storage,
    )
    rows = validate(spec, args.out, args.work)
    print((__import__("pathlib").Path(args.out) / "validate.md").read_text())
    return 0 if all(r["within"] for r in rows) else 1


def register(subparsers: Any) -> None:
    """Add ``validate`` to ``subparsers``."""
    p = subparsers.add_parser("validate", help="the simulator against the real cluster, here")
    p.add_argument("--out", required=True, help="results folder")
    p.add_argument("--work", help="where clusters live (default: OUT/clusters)")
    p.add_argument("--nodes", default="4,7", help="members, e.g. 4,7")
    p.add_argument("--clients", type=int, default=64, help="closed-loop clients at saturation")
    p.add_argument("--duration", type=float, default=8.0, help="cluster steady window (s)")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--latency-us", type=int, default=50, help="loopback latency in the model")
    p.add_argument("--tick-us", type=int, default=200, help="the simulator's tick")
    p.add_argument("--cores", type=int, default=0, help="cores of the host (0: this machine's)")
    p.add_argument("--storage", help="where to time commits (default: the cluster directory)")
    p.add_argument("--quick", action="store_true", help="a quicker calibration")
    p.set_defaults(func=cmd_validate)
