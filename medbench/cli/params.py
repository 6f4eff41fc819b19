"""``medbench params [PROTOCOL]``: the declared parameters of a protocol, or the protocol list.

Each row is a parameter of :mod:`medbench.experiments.params`: name, type, default, unit, help,
grouped as the simulator's, the workload's (shared by every protocol) and the protocol's own.
``--json`` prints the same rows as JSON.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from medbench.cli.errors import UsageError


def cmd_params(args: argparse.Namespace) -> int:
    """Print the parameter table of ``args.protocol`` (the protocols without one)."""
    from medbench.experiments import ExperimentError, runner
    from medbench.experiments.params import schema_for

    if not args.protocol:
        print("protocols (medbench params NAME for the parameters of one):")
        for name in runner.protocols():
            print(f"  {name}")
        return 0
    try:
        rows = schema_for(args.protocol).table()
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None
    if args.group:
        rows = [r for r in rows if r["group"] == args.group]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    order = {"protocol": 0, "workload": 1, "simulator": 2}
    rows.sort(key=lambda r: (order[r["group"]], r["name"]))
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in ("name", "type", "default")}
    widths["unit"] = max(4, *(len(r["unit"]) for r in rows))
    group = ""
    for r in rows:
        if r["group"] != group:
            group = r["group"]
            title = {"protocol": f"{args.protocol} parameters", "workload": "workload (every "
                     "protocol)", "simulator": "simulator (every protocol)"}[group]  # fmt: skip
            print(f"{title}:")
            head = "  ".join(k.ljust(widths[k]) for k in ("name", "type", "default", "unit"))
            print(f"  {head}  help")
        cells = "  ".join(r[k].ljust(widths[k]) for k in ("name", "type", "default", "unit"))
        print(f"  {cells}  {r['help']}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``medbench params``."""
    p = subparsers.add_parser(
        "params", help="a protocol's parameters: name, type, default, unit, help"
    )
    p.add_argument("protocol", nargs="?", help="protocol name (omit: list the protocols)")
    p.add_argument("--group", choices=("protocol", "workload", "simulator"), help="only these")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_params)
