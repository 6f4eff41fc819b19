"""``medbench demo <scenario>`` and ``medbench access-demo``: the paper's scenarios replayed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from medbench.cli.errors import int_at_least, output_file, seed
from medbench.demo import access, referral


def cmd_referral(args: argparse.Namespace) -> int:
    """Print (or write to ``--out``) the report of :func:`medbench.demo.referral.run_demo`.

    ``--trace full`` appends every message, transaction and block; the default is ``summary``
    on the terminal and ``full`` in an ``--out`` file (``make run`` writes
    ``reports/latest/referral.txt`` that way).
    """
    if args.out:
        output_file(args.out)
    mode = args.trace or ("full" if args.out else "summary")
    lines = referral.run_demo(
        args.seed, full=mode == "full", diagram=args.diagram, trace_out=args.trace_out
    )
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0


def cmd_access_demo(args: argparse.Namespace) -> int:
    """Print the report of :func:`medbench.demo.access.run`."""
    for line in access.run(args.seed, args.names):
        print(line)
    return 0


def register(subparsers: Any) -> None:
    """Add ``demo`` (with its scenarios) and ``access-demo``."""
    p = subparsers.add_parser("demo", help="replay a scenario of the paper step by step")
    sub = p.add_subparsers(dest="scenario", required=True)
    p = sub.add_parser(
        "referral", help="the referral walk-through and its attacks (docs/medical-chain.md §1.7)"
    )
    p.add_argument("--seed", type=seed, default=0, help="deployment and scenario seed")
    p.add_argument("--out", default=None, help="write the report to this file")
    p.add_argument(
        "--trace",
        choices=("summary", "full"),
        default=None,
        help="full: also every message, transaction and block (default: summary on the "
        "terminal, full with --out)",
    )
    p.add_argument(
        "--diagram", default=None, help="write step 4 as a message-sequence diagram (PNG)"
    )
    p.add_argument(
        "--trace-out",
        default=None,
        help="write every message of steps 1-5 as Chrome trace events (JSON; open in Perfetto)",
    )
    p.set_defaults(func=cmd_referral)
    p = subparsers.add_parser(
        "access-demo", help="PKI, grants, blacklist, emergency access and the name-key attack"
    )
    p.add_argument("--seed", type=seed, default=0, help="scenario seed")
    p.add_argument("--names", type=int_at_least(1), default=None, help="cap the name dictionary")
    p.set_defaults(func=cmd_access_demo)
