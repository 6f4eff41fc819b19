"""The ``medbench cluster`` subcommands: a consortium of node processes on this machine.

``register(subparsers)`` adds::

    medbench cluster init   --nodes N --dir DIR [--service null|medchain] [--transport tls|plain]
                            [--hosts h1,h2,...] [--base-port P] [--durability FULL|NORMAL]
                            [--protocol pbft|hotstuff|raft]  (hotstuff, raft: null service only)
    medbench cluster up     --nodes N --dir DIR [same options; generates DIR unless present]
    medbench cluster status --dir DIR
    medbench cluster down   --dir DIR
    medbench cluster bench  --out RESULTS [--nodes 4] [--clients 1,16,64] [--service ...]
                            [--protocols pbft,hotstuff,raft] ...
    medbench cluster faults --out RESULTS [--scenarios kill-backup,kill-primary,...]

The logic lives in :mod:`medbench.runtime` (:mod:`~medbench.runtime.cluster`,
:mod:`~medbench.runtime.bench`, :mod:`~medbench.runtime.scenarios`); this module is argparse glue.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def _gen_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "service": args.service,
        "transport": args.transport,
        "durability": args.durability,
    }
    if args.protocol != "pbft":
        kw["consensus"] = args.protocol
    if args.hosts:
        kw["hosts"] = [h.strip() for h in args.hosts.split(",") if h.strip()]
    if args.base_port:
        kw["base_port"] = args.base_port
    return kw


def cmd_init(args: argparse.Namespace) -> int:
    """Write a consortium directory without starting it."""
    from medbench.runtime.cluster import generate

    try:
        lay = generate(args.dir, args.nodes, **_gen_kwargs(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {lay.consortium} and {args.nodes} node directories under {lay.root}")
    print(f"run each node with: medbench node run {lay.root}/node-<i>/node.toml")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Generate (unless present) and start the consortium; print the readiness line."""
    from medbench.runtime.cluster import up

    try:
        _lay, line = up(args.dir, args.nodes, timeout=args.timeout, **_gen_kwargs(args))
    except ValueError as exc:  # a combination the runtime does not run
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print one row per node."""
    from medbench.runtime.cluster import format_status, status

    rows = status(args.dir)
    print(format_status(rows))
    for _ in range(args.count if args.watch else 0):
        time.sleep(args.watch)
        rows = status(args.dir)
        print(format_status(rows).split("\n", 1)[1])
    return 0 if all(r["up"] for r in rows) else 1


def cmd_down(args: argparse.Namespace) -> int:
    """Stop every node."""
    from medbench.runtime.cluster import down

    killed = down(args.dir, timeout=args.timeout)
    print("cluster stopped" + (f" (SIGKILL: nodes {killed})" if killed else ""))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Load sweep against fresh clusters; CSV, plot and summary."""
    from medbench.runtime.bench import BenchSpec, run_bench

    spec = BenchSpec(
        nodes=[int(x) for x in args.nodes_list.split(",")],
        clients=[int(x) for x in args.clients.split(",")],
        services=args.services.split(","),
        protocols=args.protocols.split(","),
        transports=args.transports.split(","),
        mode=args.mode,
        rates=[float(x) for x in args.rates.split(",")] if args.rates else [],
        duration_s=args.duration,
        warmup_s=args.warmup,
        procs=args.procs,
        durability=args.durability,
        profile=args.profile,
        quiet_wait_s=args.quiet_wait,
    )
    try:
        run_bench(spec, args.out, args.work)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    """Fault scenarios on real processes; one verdict row per scenario."""
    from medbench.runtime.scenarios import run_scenarios

    names = args.scenarios.split(",") if args.scenarios else None
    ok = run_scenarios(args.out, args.work, names, service=args.service, n=args.nodes)
    return 0 if ok else 1


def cmd_load(args: argparse.Namespace) -> int:
    """One load-generator process against a running consortium (used by ``bench``)."""
    from pathlib import Path

    from medbench.runtime.cluster import Layout
    from medbench.runtime.loadgen import LoadSpec, run_load

    lay = Layout(Path(args.dir))
    cert, key, pw = lay.client_files(args.identity)
    spec = LoadSpec(
        consortium=str(lay.consortium),
        cert=str(cert),
        key=str(key),
        password_file=str(pw),
        identity=f"load-{args.identity}",
        clients=args.clients,
        mode=args.mode,
        rate=args.rate,
        warmup_s=args.warmup,
        duration_s=args.duration,
        start_at=args.start_at,
        seed=args.seed,
        out=args.out or "",
    )
    res = run_load(spec)
    lo, hi = res.window_start_us, res.window_end_us
    done = len(res.window)
    tps = done / ((hi - lo) / 1e6) if hi > lo else 0.0
    from medbench.runtime.config import load_consortium

    rule = "the leader's reply" if load_consortium(lay.consortium).consensus == "raft" else (
        "f+1 matching replies")  # fmt: skip
    print(
        f"{res.completed} committed ({rule}), {res.refused} refused, "
        f"{done} in the {args.duration:.0f} s window: {tps:.0f} req/s"
    )
    return 0


def _cluster_options(p: argparse.ArgumentParser, *, nodes: bool = True) -> None:
    if nodes:
        p.add_argument("--nodes", type=int, default=4, help="members (default 4)")
    p.add_argument("--dir", required=True, help="the consortium directory")
    p.add_argument("--service", choices=("null", "medchain"), default="null")
    p.add_argument(
        "--protocol", choices=("pbft", "hotstuff", "raft"), default="pbft",
        help="consensus protocol (hotstuff and raft: null service only)",
    )  # fmt: skip
    p.add_argument("--transport", choices=("tls", "plain"), default="tls")
    p.add_argument("--durability", choices=("FULL", "NORMAL"), default="FULL")
    p.add_argument("--hosts", help="comma-separated member hosts (default 127.0.0.1)")
    p.add_argument("--base-port", type=int, default=0, help="member i listens on base+i")


def register(subparsers: Any) -> None:
    """Add ``cluster`` and its subcommands to ``subparsers``."""
    p = subparsers.add_parser("cluster", help="a consortium of node processes on this machine")
    sub = p.add_subparsers(dest="cluster_command", required=True)

    q = sub.add_parser("init", help="write a consortium directory (keys, certificates, configs)")
    _cluster_options(q)
    q.set_defaults(func=cmd_init)

    q = sub.add_parser("up", help="start the nodes (generating DIR unless present)")
    _cluster_options(q)
    q.add_argument("--timeout", type=float, default=60.0)
    q.set_defaults(func=cmd_up)

    q = sub.add_parser("status", help="per node: view, last executed, height, peers")
    q.add_argument("--dir", required=True)
    q.add_argument("--watch", type=float, default=0.0, help="print again every WATCH seconds")
    q.add_argument("--count", type=int, default=30, help="how many times with --watch")
    q.set_defaults(func=cmd_status)

    q = sub.add_parser("down", help="stop the nodes (SIGTERM, then SIGKILL)")
    q.add_argument("--dir", required=True)
    q.add_argument("--timeout", type=float, default=10.0)
    q.set_defaults(func=cmd_down)

    q = sub.add_parser("load", help="run one load-generator process against DIR")
    q.add_argument("--dir", required=True)
    q.add_argument("--identity", type=int, default=0, help="load identity k (clients/load-k)")
    q.add_argument("--clients", type=int, default=1)
    q.add_argument("--mode", choices=("closed", "open"), default="closed")
    q.add_argument("--rate", type=float, default=0.0)
    q.add_argument("--warmup", type=float, default=1.0)
    q.add_argument("--duration", type=float, default=5.0)
    q.add_argument("--start-at", type=float, default=0.0, help="wall-clock start (epoch s)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", help="result JSON")
    q.set_defaults(func=cmd_load)

    q = sub.add_parser("bench", help="closed/open-loop load sweep on fresh clusters")
    q.add_argument("--out", required=True, help="results folder (CSV, PNG, summary)")
    q.add_argument("--work", help="where clusters live (default: OUT/clusters)")
    q.add_argument("--nodes", dest="nodes_list", default="4", help="e.g. 4,7")
    q.add_argument("--clients", default="1,16,64", help="closed-loop outstanding requests")
    q.add_argument("--services", default="null", help="null,medchain")
    q.add_argument("--protocols", default="pbft", help="pbft,hotstuff,raft (null service)")
    q.add_argument("--transports", default="tls", help="tls,plain")
    q.add_argument("--mode", choices=("closed", "open"), default="closed")
    q.add_argument("--rates", default="", help="open loop: requests/s, e.g. 200,400")
    q.add_argument("--duration", type=float, default=10.0, help="steady window (s)")
    q.add_argument("--warmup", type=float, default=3.0, help="warm-up (s)")
    q.add_argument("--procs", type=int, default=1, help="load-generator processes")
    q.add_argument("--durability", choices=("FULL", "NORMAL"), default="FULL")
    q.add_argument("--profile", action="store_true", help="cProfile node 1 (a backup)")
    q.add_argument(
        "--quiet-wait", type=float, default=0.0,
        help="before each point, wait up to this many seconds for the host to be idle",
    )  # fmt: skip
    q.set_defaults(func=cmd_bench)

    q = sub.add_parser("faults", help="crash, stop, restart and partition scenarios")
    q.add_argument("--out", required=True)
    q.add_argument("--work", help="where clusters live (default: OUT/clusters)")
    q.add_argument("--scenarios", help="comma-separated names (default: all)")
    q.add_argument("--service", choices=("null", "medchain"), default="null")
    q.add_argument("--nodes", type=int, default=4)
    q.set_defaults(func=cmd_faults)
