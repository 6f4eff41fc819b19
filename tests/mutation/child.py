"""Run the adversary's schedules against one (mutated) copy of the package; print one JSON line.

Called by ``runner.py`` as ``python tests/mutation/child.py --scratch DIR --plan quick|full
[--protocol pbft|hotstuff]``: ``DIR/medbench`` is imported instead of the real package (checked).
The plan interleaves the schedule families of the mutant's protocol — for PBFT randomized seeds,
recovery-focused seeds, MAC seeds, Twins scenarios at n = 4 and n = 7, Medical Chain seeds; for
HotStuff the random fault schedules of ``tests/hotstuff/test_hotstuff_random.py`` (plain and
recovery-focused) and the Twins scenarios of ``tests/hotstuff/hotstuff_twins.py`` — evenly by
count, in a fixed order, and stops at the first verdict that kills (safety, liveness,
agreement). Anything else a run raises (a ``NodeCrashed``,
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
HS_PLANS: dict[str, dict[str, int]] = {
    # the quick plan walks draws of the normal suite: seeds 0.., 500.. and 2000.. (forking
    # leaders) of test_hotstuff_random, the Twins stride of test_hotstuff_twins.test_twins_subset
    "quick": {"hs-random": 100, "hs-recovery": 20, "hs-forking": 50, "hs-twins": 120},
    "full": {"hs-random": 2_000, "hs-recovery": 400, "hs-forking": 1_000, "hs-macs": 20,
             "hs-twins": 5_184},
}  # fmt: skip
PROTOCOL_PLANS = {"pbft": PLANS, "hotstuff": HS_PLANS}
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


def hotstuff_families(plan: str = "full") -> dict[str, Callable[[int], Any]]:
    """HotStuff family name -> run(index) (raises a verdict on a violation)."""
    import hotstuff_schedules
    import hotstuff_twins

    total = hotstuff_twins.count()
    stride = hotstuff_twins.subset(8)  # the quick plan: test_hotstuff_twins's stride

    def twin(i: int) -> Any:
        if plan == "quick":
            return hotstuff_twins.run_scenario(stride[_spread(i, len(stride))])
        return hotstuff_twins.run_scenario(hotstuff_twins.scenario_at(_spread(i, total)))

    return {
        "hs-random": hotstuff_schedules.check_seed,
        "hs-recovery": lambda i: hotstuff_schedules.check_seed(500 + i, recovery=True),
        "hs-forking": lambda i: hotstuff_schedules.check_seed(2_000 + i, forking=True),
        "hs-macs": lambda i: hotstuff_schedules.check_seed(1_000 + i, scheme="macs"),
        "hs-twins": twin,
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
    ap.add_argument("--protocol", default="pbft", choices=sorted(PROTOCOL_PLANS))
    args = ap.parse_args()
    cap = args.cap or TIME_CAPS[args.plan]
    scratch = Path(args.scratch).resolve()
    # HotStuff: tests/pbft after tests/hotstuff, for the verdicts (never its twins module)
    helpers = ("hotstuff", "pbft") if args.protocol == "hotstuff" else ("pbft", "medchain")
    sys.path[:0] = [str(scratch), *(str(ROOT / "tests" / h) for h in helpers)]
    import medbench

    if not Path(medbench.__file__).resolve().is_relative_to(scratch):
        print(json.dumps({"fatal": f"imported {medbench.__file__}, not the scratch copy"}))
        return 2
    from verdicts import KILL_KINDS, VerdictFailure

    if args.protocol == "hotstuff":
        runs = hotstuff_families(args.plan)
    else:
        runs = families(scratch, args.plan)
    start = time.monotonic()
    out: dict[str, Any] = {"killed": False, "runs": 0, "errors": 0, "other_verdicts": 0}
    for name, k in order(PROTOCOL_PLANS[args.protocol][args.plan]):
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
