"""The ``medbench`` command line: one package holds every command (the top layer: it imports
everything and nothing imports it).

* :mod:`.selfcheck` — ``selfcheck``: backends and primitive timings;
* :mod:`.ledger` — ``verify``: a ledger file's chain, blocks and transactions;
* :mod:`.store` — ``store report | check``: a node store;
* :mod:`.sim` — ``calibrate`` and ``sweep``: the simulator's cost profile and parameter sweeps;
* :mod:`.params` — ``params``: every protocol's declared parameters;
* :mod:`.reproduce` — ``table1`` and ``reproduce``: the paper's comparison, measured;
* :mod:`.demo` — ``demo referral`` and ``access-demo``: the paper's scenarios replayed;
* :mod:`.node` — ``node run``: one consortium node process (:mod:`medbench.runtime`);
* :mod:`.cluster` — ``cluster init | up | status | down | load | bench | faults``: a
  consortium of node processes, its load generator and its fault scenarios;
* :mod:`.validate` — ``validate``: the simulator checked against the real cluster on this host;
* :mod:`.gateway` — ``gateway run | up | down | enrol | bench``: FHIR gateways and the dashboard.

Errors (:mod:`.errors`): a command that cannot do what it was asked prints one line naming the
problem on standard error and exits with status 2 (a usage error: a bad value, an unknown name,
a missing, unreadable or malformed input file, a bad TOML, an unknown protocol ...); 1 means a
check the command exists to report failed (``verify``, ``store check``, a sweep with failed
runs) or an internal error; 130 an interruption (Ctrl-C). The global ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import medbench
from medbench.cli import (
    cluster,
    demo,
    gateway,
    ledger,
    node,
    params,
    reproduce,
    selfcheck,
    sim,
    store,
    validate,
)
from medbench.cli.errors import Parser, report


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = Parser(prog="medbench", description=medbench.__doc__)
    parser.add_argument("--version", action="version", version=medbench.__version__)
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        selfcheck, ledger, store, demo, sim, params, reproduce, node, cluster, validate, gateway
    ):  # fmt: skip
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medbench`` command; returns the exit status (see the module doc)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list[: args_list.index("--") if "--" in args_list else None]
    command = next((a for a in args_list if not a.startswith("-")), "")
    try:
        args = build_parser().parse_args(args_list)
        args.argv = args_list  # what a command may repeat (the sweep's resume hint)
        return int(args.func(args))
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BaseException as exc:
        if debug:
            raise
        return report(exc, command)


if __name__ == "__main__":
    raise SystemExit(main())
