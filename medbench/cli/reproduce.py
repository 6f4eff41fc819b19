"""The ``medbench table1`` and ``medbench reproduce`` subcommands.

``register(subparsers)`` adds both to the ``medbench`` parser::

    medbench table1 [--quick] [--seed N] [--profile PATH] [--out DIR]
    medbench reproduce [--quick] [--seed N] [--profile PATH] [--out DIR]  # DIR: reports/latest

``--profile`` is a cost profile written by ``medbench calibrate --out PATH`` (default: the fixed
reference profile, so results are the same on every host).
"""

from __future__ import annotations

import argparse
import sys
import time

from medbench.cli.errors import input_file, output_folder, seed
from medbench.sim.costs import CostProfile
from medbench.study import conditions, reproduce, table1
from medbench.study.report import Report, markdown_table


def _profile(args: argparse.Namespace) -> CostProfile | None:
    """The ``--profile`` file, or ``None`` for the default profile (checked before any run)."""
    if args.out:
        output_folder(args.out)
    if not args.profile:
        return None
    input_file(args.profile, "cost profile file")
    return CostProfile.load(args.profile)


def cmd_table1(args: argparse.Namespace) -> int:
    """Measure Table 1, print it beside the paper's, optionally write a report folder."""
    prof = _profile(args)
    if args.quick:
        s = table1.Settings.quick(args.seed, prof)
    else:
        s = table1.Settings(seed=args.seed, profile=prof)
    t0 = time.perf_counter()
    rows = table1.measure_table(s, progress=lambda name: print(f"measuring {name} ...", flush=True))
    cmp = table1.compare(rows)
    md = table1.markdown(rows, cmp) + "\n" + conditions.caption(s, seeds=[s.seed]) + "\n"
    print(md)
    print(f"({time.perf_counter() - t0:.1f} s)")
    if args.out:
        rep = Report("medbench table1")
        rep.text(md)
        rep.table("table1", table1.table_rows(rows, cmp), show=False)
        rep.table("table1_trials", table1.trial_rows(rows), show=False)
        rep.text(markdown_table(table1.trial_summary(rows)))
        from medbench import experiments

        rep.meta = {
            **experiments.metadata(seeds=[args.seed], profile=s.cost_profile()),
            "quick": args.quick,
        }
        print(f"wrote {rep.write(args.out)}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run the whole reproduction and write the report folder."""
    t0 = time.perf_counter()
    prof = _profile(args)
    opts = reproduce.Options(seed=args.seed, quick=args.quick, profile=prof)
    readme = reproduce.reproduce(args.out, opts, progress=lambda m: print(m, flush=True))
    sys.stdout.write("\n" + (readme.parent / "summary.txt").read_text())
    print(f"\nreport: {readme} (tables, figures, CSVs) written in {time.perf_counter() - t0:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``table1`` and ``reproduce`` to the ``medbench`` subcommands."""
    p = sub.add_parser("table1", help="measure Table 1 of Medical Chain in the simulator")
    p.add_argument("--quick", action="store_true", help="small workload (seconds)")
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--out", default="", help="also write a report folder here")
    p.add_argument("--profile", default="", help="cost profile JSON from 'medbench calibrate'")
    p.set_defaults(func=cmd_table1)
    r = sub.add_parser("reproduce", help="Table 1, PBFT scaling and fault comparison report")
    r.add_argument("--quick", action="store_true", help="small workload (under 2 minutes)")
    r.add_argument("--seed", type=seed, default=1)
    r.add_argument("--out", default=str(reproduce.DEFAULT_OUT), help="report folder")
    r.add_argument("--profile", default="", help="cost profile JSON from 'medbench calibrate'")
    r.set_defaults(func=cmd_reproduce)


__all__ = ["cmd_reproduce", "cmd_table1", "register"]
