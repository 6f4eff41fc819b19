"""``medbench gateway run | up | down | enrol | bench``: the FHIR gateways of a consortium.

* ``gateway up --dir DIR [--nodes 4] [--gateways 0,1]`` — generate a Medical Chain consortium
  (unless DIR has one), enrol users and gateways, start the nodes and the gateways;
* ``gateway run --dir DIR --node I [--port P]`` — one gateway process (what ``up`` starts);
* ``gateway down --dir DIR`` — stop the gateways and the nodes;
* ``gateway enrol --dir DIR`` — only the enrolment (before ``cluster up``);
* ``gateway bench --out DIR`` — FHIR create/read at 1/16/64 connections and the same
  transactions submitted directly (:mod:`medbench.gateway.bench`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _ids(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None


def cmd_run(args: argparse.Namespace) -> int:
    """Run one gateway until SIGTERM/SIGINT."""
    from medbench.gateway.server import GatewayConfig, run

    cfg = GatewayConfig(
        Path(args.dir),
        args.node,
        args.host,
        args.port,
        retention_s=args.retention_interval,
        online_age_s=args.online_age,
        nearline_age_s=args.nearline_age,
    )
    return run(cfg)


def cmd_up(args: argparse.Namespace) -> int:
    """Consortium, enrolment, nodes, gateways."""
    from medbench.gateway.processes import up

    urls = up(args.dir, args.nodes, args.gateways)
    for i, url in zip(args.gateways or range(len(urls)), urls, strict=False):
        print(f"gateway {i}: {url}  dashboard {url.removesuffix('/fhir')}/dashboard")
    print(
        f"client certificates: {Path(args.dir) / 'gateway' / 'users'}; CA: "
        f"{Path(args.dir) / 'gateway' / 'ca.pem'}; stop: medbench gateway down --dir {args.dir}"
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop gateways and nodes."""
    from medbench.gateway.processes import down

    down(args.dir)
    print("gateways and nodes stopped")
    return 0


def cmd_enrol(args: argparse.Namespace) -> int:
    """Users' and gateways' certificates, gateways' client ids."""
    from medbench.gateway.enrol import enrol

    files = enrol(args.dir)
    print(f"enrolled {len(files)} gateways and their users under {files[0].dir}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """The gateway load benchmark."""
    from medbench.gateway.bench import run_bench

    return run_bench(Path(args.out), _ids(args.connections), args.duration, args.warmup)


def register(subparsers: Any) -> None:
    """Add ``gateway`` to ``subparsers``."""
    p = subparsers.add_parser("gateway", help="FHIR gateways in front of the hospital nodes")
    sub = p.add_subparsers(dest="gateway_command", required=True)
    run = sub.add_parser("run", help="run one gateway")
    run.add_argument("--dir", required=True)
    run.add_argument("--node", type=int, required=True)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8443)
    run.add_argument("--retention-interval", type=float, default=60.0, metavar="S")
    run.add_argument("--online-age", type=float, default=183 * 86_400.0, metavar="S")
    run.add_argument("--nearline-age", type=float, default=730 * 86_400.0, metavar="S")
    run.set_defaults(func=cmd_run)
    upp = sub.add_parser("up", help="consortium, nodes and gateways")
    upp.add_argument("--dir", required=True)
    upp.add_argument("--nodes", type=int, default=4)
    upp.add_argument("--gateways", type=_ids, default=None, help="e.g. 0,1 (default: all)")
    upp.set_defaults(func=cmd_up)
    dn = sub.add_parser("down", help="stop gateways and nodes")
    dn.add_argument("--dir", required=True)
    dn.set_defaults(func=cmd_down)
    en = sub.add_parser("enrol", help="enrol users and gateways (before cluster up)")
    en.add_argument("--dir", required=True)
    en.set_defaults(func=cmd_enrol)
    b = sub.add_parser("bench", help="FHIR create/read load vs direct submission")
    b.add_argument("--out", default="reports/gateway")
    b.add_argument("--connections", default="1,16,64")
    b.add_argument("--duration", type=float, default=8.0)
    b.add_argument("--warmup", type=float, default=2.0)
    b.set_defaults(func=cmd_bench)
