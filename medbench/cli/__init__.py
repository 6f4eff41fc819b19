"""The ``medbench`` command line: one package holds every command (the top layer: it imports
everything and nothing imports it).

* :mod:`.selfcheck` — ``selfcheck``: backends and primitive timings;
* :mod:`.ledger` — ``verify``: a ledger file's chain, blocks and transactions;
* :mod:`.store` — ``store report | check``: a node store;
* :mod:`.sim` — ``calibrate`` and ``sweep``: the simulator's cost profile and parameter sweeps;
* :mod:`.reproduce` — ``table1`` and ``reproduce``: the paper's comparison, measured;
* :mod:`.demo` — ``demo referral`` and ``access-demo``: the paper's scenarios replayed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import medbench
from medbench.cli import demo, ledger, reproduce, selfcheck, sim, store


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="medbench", description=medbench.__doc__)
    parser.add_argument("--version", action="version", version=medbench.__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (selfcheck, ledger, store, demo, sim, reproduce):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medbench`` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
