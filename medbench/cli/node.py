"""The ``medbench node run NODE.toml`` subcommand: one hospital node process.

``register(subparsers)`` adds it to the ``medbench`` parser. It runs the node described by a
node file (:mod:`medbench.runtime.config`), with the consortium's consensus protocol (PBFT,
HotStuff or Raft: :mod:`medbench.runtime.protocols`), until SIGTERM or SIGINT; SIGHUP re-reads
the node file's ``[link_faults]``.
"""

from __future__ import annotations

import argparse
from typing import Any


def cmd_node_run(args: argparse.Namespace) -> int:
    """Run one node until a stop signal."""
    from medbench.runtime.protocols import run_node

    return run_node(args.config)


def register(subparsers: Any) -> None:
    """Add ``node run`` to ``subparsers``."""
    p = subparsers.add_parser("node", help="run one consortium node (a hospital)")
    sub = p.add_subparsers(dest="node_command", required=True)
    run = sub.add_parser("run", help="run the node described by NODE.toml")
    run.add_argument("config", help="the node's local TOML file")
    run.set_defaults(func=cmd_node_run)
