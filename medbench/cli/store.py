"""``medbench store ...`` subcommands: storage report and consistency check of a node store.

Wire into :mod:`medbench.cli` with ``register(sub)`` on its subparsers. Both commands open an
existing store read-only in spirit (they never change data; the report folds the WAL into the
file first, which changes no content).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from medbench.cli.errors import UsageError, input_file
from medbench.store.accounting import storage_report
from medbench.store.blobs import BlobStore
from medbench.store.node_store import NodeStore


def _open(path: str) -> NodeStore:
    # An empty or missing file would become a new store: refuse it, these commands only read.
    input_file(path, "node store")
    return NodeStore(path)


def cmd_report(args: argparse.Namespace) -> int:
    """Print bytes per category, the totals and the overhead (``--json`` for a machine)."""
    if args.blobs and not Path(args.blobs).is_dir():
        raise UsageError(f"no blob store folder {args.blobs!r}")
    with _open(args.path) as store:
        blobs = BlobStore(args.blobs) if args.blobs else None
        r = storage_report(store, blobs)
    if args.json:
        out = {
            "bytes": r.as_dict(),
            "counts": r.counts,
            "canonical_bytes": r.canonical_bytes,
            "overhead": r.overhead,
            "method": r.method,
        }
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    print(f"node store {args.path} (split by {r.method})")
    for name, value in r.as_dict().items():
        print(f"  {name:20s} {value:>15,d} B")
    for name, value in sorted(r.counts.items()):
        print(f"  {name:20s} {value:>15,d}")
    print(f"  canonical bytes      {r.canonical_bytes:>15,d} B")
    print(f"  overhead             {r.overhead:>15.3f} x")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Print every consistency problem; exit status 1 if there is any."""
    with _open(args.path) as store:
        problems = store.check_consistency()
        tip = store.tip()
    for p in problems:
        print(p)
    height = "empty" if tip is None else f"tip {tip[0]} {tip[1].hex()[:16]}"
    print(f"{args.path}: {height}, {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``store report`` and ``store check`` to the ``medbench`` subparsers."""
    store = sub.add_parser("store", help="inspect a node store (storage report, consistency)")
    cmds = store.add_subparsers(dest="store_command", required=True)
    p = cmds.add_parser("report", help="bytes per category and storage overhead")
    p.add_argument("path", help="the node's SQLite file")
    p.add_argument("--blobs", help="the node's blob store root (optional)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_report)
    p = cmds.add_parser("check", help="chain links, heights, missing bodies, integrity_check")
    p.add_argument("path", help="the node's SQLite file")
    p.set_defaults(func=cmd_check)
