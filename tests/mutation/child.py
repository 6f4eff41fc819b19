"""Run the adversary's schedules against one (mutated) copy of the package; print one JSON line.

Called by ``runner.py`` as ``python tests/mutation/child.py --scratch DIR --plan quick|full``:
``DIR/medbench`` is imported instead of the real package (checked). The plan interleaves the
schedule families — randomized PBFT seeds, recovery-focused seeds, MAC seeds, Twins scenarios at
n = 4 and n = 7, Medical Chain seeds — evenly by count, in a fixed order, and stops at the first
verdict that kills (safety, liveness, agreement). Anything else a run raises (a ``NodeCrashed``,
a resource verdict, an exception of broken code) is counted as an error, and the plan goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

PLANS: dict[str, dict[str, int]] = {
    # family -> runs; "quick" is the subset inside make test (every run of it is also a test of
    # the normal suite, so the unmutated tree passes it whenever make test does)
    "quick": {"findings": 8, "stratified": 264, "pbft": 10, "recovery": 10, "twins4": 20,
              "twins7": 3, "macs": 2, "medchain": 1},
    "full": {"findings": 8, "stratified": 6_600, "pbft": 3_000, "recovery": 1_000,
             "twins4": 5_184, "macs": 200, "signatures": 40, "twins7": 2_000, "medchain": 160},
}  # fmt: skip
TIME_CAPS = {"quick": 60.0, "full": 900.0}  # seconds per mutant: a safety net over the counts


def _spread(i: int, n: int) -> int:
    """A fixed permutation of ``range(n)`` spreading neighbours apart (a stride coprime to n)."""
    step = next(s for s in (7919, 104729, 1299709) if n % s)
    return (i * step) % n


def families(scratch_tmp: Path, plan: str = "full") -> dict[str, Callable[[int], Any]]:
    """Family name -> run(index) (raises a verdict on a violation)."""
    import schedules
    import twins

    c4, c7 = twins.count(4), twins.count(7)
    # the quick plan walks the same strides as test_pbft_adversary.test_twins_subset
    q4, q7 = twins.subset(4, 24, 0), twins.subset(7, 250, 3)

    def twin(n: int, i: int) -> Any:
        if plan == "quick":
            return twins.run_scenario((q4 if n == 4 else q7)[i % len(q4 if n == 4 else q7)])
        return twins.run_scenario(twins.scenario_at(n, _spread(i, c4 if n == 4 else c7)))

    def medchain(i: int) -> Any:
        import medchain_schedules  # the access layer is slow to import: only when asked

        with tempfile.TemporaryDirectory(dir=scratch_tmp) as tmp:
            return medchain_schedules.check(i, Path(tmp))

    return {
        "findings": schedules.check_finding,
        "stratified": lambda i: schedules.check_draw(schedules.stratified(i)),
        "pbft": lambda i: schedules.check_seed(i),
        "recovery": lambda i: schedules.check_seed(i, recovery=True),
        "macs": lambda i: schedules.check_seed(i, "macs"),
        "signatures": lambda i: schedules.check_seed(i, "signatures"),
        "twins4": lambda i: twin(4, i),
        "twins7": lambda i: twin(7, i),
        "medchain": medchain,
    }


def order(plan: dict[str, int]) -> list[tuple[str, int]]:
    """Every (family, index) of ``plan``: the findings first, then the other families
    interleaved evenly by count."""
    first = [("findings", k) for k in range(plan.get("findings", 0))]
    rest = {name: count for name, count in plan.items() if name != "findings"}
    keyed = [((k + 0.5) / count, name, k) for name, count in rest.items() for k in range(count)]
    return first + [(name, k) for _, name, k in sorted(keyed)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--plan", default="quick", choices=sorted(PLANS))
    ap.add_argument("--cap", type=float, default=0.0, help="seconds (default: the plan's)")
    args = ap.parse_args()
    cap = args.cap or TIME_CAPS[args.plan]
    scratch = Path(args.scratch).resolve()
    sys.path[:0] = [str(scratch), str(ROOT / "tests" / "pbft"), str(ROOT / "tests" / "medchain")]
    import medbench

    if not Path(medbench.__file__).resolve().is_relative_to(scratch):
        print(json.dumps({"fatal": f"imported {medbench.__file__}, not the scratch copy"}))
        return 2
    from verdicts import KILL_KINDS, VerdictFailure

    runs = families(scratch, args.plan)
    start = time.monotonic()
    out: dict[str, Any] = {"killed": False, "runs": 0, "errors": 0, "other_verdicts": 0}
    for name, k in order(PLANS[args.plan]):
        if time.monotonic() - start > cap:
            out["capped"] = True
            break
        out["runs"] += 1
        try:
            runs[name](k)
        except VerdictFailure as exc:
            if exc.kind in KILL_KINDS:
                out.update(killed=True, kind=exc.kind, by=f"{name} {k}", message=str(exc)[:300])
                break
            out["other_verdicts"] += 1
            out.setdefault("first_other", f"{name} {k}: {exc.kind}: {str(exc)[:200]}")
        except Exception as exc:  # broken code or a node raising: not a kill
            out["errors"] += 1
            out.setdefault("first_error", f"{name} {k}: {type(exc).__name__}: {str(exc)[:200]}")
    out["seconds"] = round(time.monotonic() - start, 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
