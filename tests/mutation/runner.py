"""The mutation gate: apply each catalogued bug to a scratch copy and run the schedules on it.

``python tests/mutation/runner.py --plan full`` (``make mutants``) or ``--plan quick`` (the
subset in ``make test``, ``tests/mutation/test_mutation_gate.py``):

1. every entry of :data:`catalogue.CATALOGUE` must apply to the current tree (its snippet occurs
   exactly once), else the gate fails at once (exit 2): the catalogue cannot rot silently;
2. the *unmutated* copy runs the same plan first — once per protocol among the mutants run (PBFT,
   HotStuff: each mutant is judged by its own protocol's schedules) — and must come out clean,
   no verdict, no error (exit 3 otherwise): a kill then means the mutant, not the schedules;
3. each mutant: ``medbench/`` is copied to a fresh scratch directory, the edit applied there (the
   real tree is never touched), and ``child.py`` runs the plan in a new interpreter against it.
   Killed = a safety, liveness or agreement verdict; errors (a node raising, an exception of broken
   code) and resource verdicts do not kill;
4. the kill table is printed and written (``--table``); the exit status is 1 when fewer than
   ``--need`` percent of the mutants were killed (default: all of them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from catalogue import CATALOGUE, Mutant  # noqa: E402
from child import TIME_CAPS  # noqa: E402


@dataclass
class Outcome:
    """What the child reported for one mutant (or the baseline)."""

    mutant: Mutant | None
    result: dict[str, Any]
    seconds: float

    @property
    def killed(self) -> bool:
        return bool(self.result.get("killed"))


def check_catalogue(package: Path) -> list[str]:
    """The entries that no longer apply (empty when the catalogue is sound)."""
    problems = []
    for m in CATALOGUE:
        try:
            m.apply((package / m.path).read_text())
        except (OSError, ValueError) as exc:
            problems.append(str(exc))
    return problems


def run_one(
    mutant: Mutant | None,
    plan: str,
    package: Path,
    workdir: Path,
    cap: float = 0.0,
    protocol: str = "pbft",
) -> Outcome:
    """Copy the package, apply ``mutant`` (None: the baseline of ``protocol``), run the plan of
    the mutant's protocol in a child."""
    if mutant is not None:
        protocol = mutant.protocol
    scratch = Path(tempfile.mkdtemp(prefix=f"{mutant.id if mutant else 'baseline'}-",
                                    dir=workdir))  # fmt: skip
    try:
        shutil.copytree(package, scratch / "medbench",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        if mutant is not None:
            target = scratch / "medbench" / mutant.path
            target.write_text(mutant.apply(target.read_text()))
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(HERE / "child.py"), "--scratch", str(scratch), "--plan", plan,
             "--cap", str(cap), "--protocol", protocol],
            capture_output=True, text=True, env=env, cwd=str(scratch),
            timeout=(cap or TIME_CAPS[plan]) * 3 + 60,
        )  # fmt: skip
        seconds = time.monotonic() - t0
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            result: dict[str, Any] = {"fatal": (proc.stderr or proc.stdout)[-400:]}
        else:
            result = json.loads(lines[-1])
        return Outcome(mutant, result, seconds)
    except subprocess.TimeoutExpired:
        return Outcome(mutant, {"fatal": "child timed out"}, (cap or TIME_CAPS[plan]) * 3 + 60)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def table(outcomes: list[Outcome], plan: str, baselines: dict[str, Outcome]) -> str:
    """The kill table (markdown); ``baselines``: protocol -> its unmutated run."""
    killed = sum(o.killed for o in outcomes)
    lines = [
        f"# Mutation gate, plan {plan!r}: {killed}/{len(outcomes)} mutants killed "
        f"({100 * killed / max(len(outcomes), 1):.0f} %)",
        "",
    ]
    for protocol, baseline in baselines.items():
        name = "" if list(baselines) == ["pbft"] else f" ({protocol} schedules)"
        lines.append(
            f"Baseline (unmutated copy){name}: {baseline.result.get('runs')} runs, "
            f"{baseline.result.get('errors', '?')} errors, no verdict, {baseline.seconds:.1f} s."
        )
    lines += [
        "",
        "| mutant | category | bug | verdict | killed by | runs | errors | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        m, r = o.mutant, o.result
        assert m is not None
        verdict = (
            r.get("kind", "SURVIVED") if o.killed else ("FATAL" if "fatal" in r else "SURVIVED")
        )
        by = r.get("by", r.get("fatal", "")[:60])
        lines.append(
            f"| {m.id} | {m.category} | {m.what} | {verdict} | {by} | {r.get('runs', '')} "
            f"| {r.get('errors', '')} | {o.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plan", default="quick", choices=sorted(TIME_CAPS))
    ap.add_argument("--only", default="", help="comma-separated mutant ids")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--table", default="", help="write the kill table here")
    ap.add_argument("--need", type=float, default=100.0, help="percent that must be killed")
    ap.add_argument("--cap", type=float, default=0.0, help="seconds per mutant (default: plan's)")
    ap.add_argument(
        "--no-baseline", action="store_true",
        help="skip the unmutated run (make test: its normal suite runs the same draws)",
    )  # fmt: skip
    args = ap.parse_args()
    package = ROOT / "medbench"
    problems = check_catalogue(package)
    if problems:
        print("the mutation catalogue no longer applies to the tree:", *problems, sep="\n  ")
        return 2
    mutants = [m for m in CATALOGUE if not args.only or m.id in args.only.split(",")]
    protocols = sorted({m.protocol for m in mutants}, key=lambda p: (p != "pbft", p))
    baselines: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="medbench-mutants-") as tmp:
        work = Path(tmp)
        for protocol in protocols:
            if args.no_baseline:
                baselines[protocol] = Outcome(None, {"runs": "skipped", "errors": "-"}, 0.0)
                continue
            baseline = run_one(None, args.plan, package, work, args.cap, protocol)
            r = baseline.result
            if r.get("killed") or r.get("errors") or r.get("other_verdicts") or "fatal" in r:
                print(f"the unmutated tree does not pass the {protocol} plan; no mutant can be "
                      f"judged: {r}")  # fmt: skip
                return 3
            print(f"baseline clean ({protocol}): {r['runs']} runs in {baseline.seconds:.1f} s",
                  flush=True)  # fmt: skip
            baselines[protocol] = baseline
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_one, m, args.plan, package, work, args.cap) for m in mutants]
            outcomes = []
            for m, fut in zip(mutants, futures, strict=True):
                o = fut.result()
                outcomes.append(o)
                state = o.result.get("kind", "killed") if o.killed else "SURVIVED"
                print(f"  {m.id:34} {state:9} {o.result.get('by', '')} ({o.seconds:.1f} s)",
                      flush=True)  # fmt: skip
    text = table(outcomes, args.plan, baselines)
    print(text)
    if args.table:
        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        Path(args.table).write_text(text)
    killed = sum(o.killed for o in outcomes)
    return 0 if 100 * killed >= args.need * len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
