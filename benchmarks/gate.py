"""Benchmark report and regression gate over a pytest-benchmark JSON file.

``python -m benchmarks.gate report FILE.json`` prints every case (mean and best time, exact
counts) and every ratio with its committed floor and goal. ``python -m benchmarks.gate check
FILE.json`` prints the same and exits non-zero when a ratio falls below its floor in
``benchmarks/floors.json``, an exact count recorded in ``extra_info`` differs from the committed
one, or a case that a ratio or a count needs is missing from the file.

Theory of operation
-------------------
Absolute times depend on the machine and are printed, never gated. What is gated is a *ratio* of
two cases measured in the same run on the same machine (reference time / native time, peer time
/ native time): a slower box scales both sides. Ratios use each case's best (minimum) round,
because noise from other processes on a shared CI box only ever adds time. The exact counts
(leaves, proof lengths, votes, and the hash calls and SHA-256 compressions that the benchmark
*measured* on the call it timed) are facts about the work done and must match exactly, so a
benchmark that silently measures something smaller fails the gate.

**Every family is gated against a reference workload** (``benchmarks/reference.py``): a fixed
pure-Python mix timed just before and just after each case (``benchmarks/conftest.py``), its best
time recorded in the case's ``extra_info["reference_s"]``. A ratio with ``"against":
"reference"`` is that time divided by the case's best time, so a case that gets slower lowers it
whatever the machine. ``make bench`` and ``make bench-check`` time with the process's CPU clock
(``--benchmark-timer=time.process_time``): on a shared machine other processes steal wall time,
not this process's CPU time (wall-clock runs on the 2-core box varied 1.5-5x from run to run;
CPU-time runs far less). Waiting for the disk (the store's ``fsync``) is not CPU time: those
cases gate the CPU work around it. Floors are set by ``python -m benchmarks.gate floors RUN.json
...`` over several runs: the median ratio divided by :data:`FLOOR_MARGIN` (1.35), so that a 1.5x
regression of a case fails and run-to-run noise below 1.35x does not.

``floors.json`` is the whole specification: ``ratios`` (name -> slow case, fast case, floor,
goal; with ``"rate": KEY`` the ratio is the fast case's ``extra_info[KEY]`` over the slow
case's, for benchmarks that record a throughput such as simulated messages per second),
``counts`` (case -> exact ``extra_info`` values) and ``full_cases``, the cases that only
``make bench`` runs (pytest marker ``full``). ``check`` fails when any other case named by a
ratio or a count is absent: a skipped native module or a missing peer library is a failure, not a
silent pass. New areas add their entries there; this file needs no change. A ratio marked
``"needs_sha_ni": true`` (and the cases in ``sha_ni_cases``) measure the SHA-NI path: on a CPU
without the SHA extensions (``machine_info.medbench_sha_ni`` false, recorded by
``benchmarks/conftest.py``) they are reported as not applicable rather than failed.

One ratio compares against the outside world: native ``sha256_many`` per-hash time against
``openssl speed -evp sha256 -bytes 64`` per-hash time. The benchmark session runs ``openssl
speed`` (best of three 1-second runs) right after timing ``sha256_many`` and records it in that
case's ``extra_info``; report mode re-measures it when the file lacks it. Without an
``openssl`` binary only that ratio is skipped, and the report says so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLOORS_FILE = Path(__file__).with_name("floors.json")
OPENSSL_KEY = "openssl_speed_ns_per_hash"
REFERENCE_KEY = "reference_s"  # benchmarks/reference.py: the reference time beside each case
OPENSSL_RATIO = "sha256_many: openssl speed / native (per hash)"
SHA_NATIVE_CASE = "test_sha256_many[native]"
SHA_NI_KEY = "medbench_sha_ni"  # written into machine_info by benchmarks/conftest.py


@dataclass(frozen=True, slots=True)
class Case:
    """One benchmark case from the JSON file."""

    name: str
    mean: float
    best: float
    rounds: int
    extra: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RatioResult:
    """One ratio: its value (``None`` when a side was not measured) against floor and goal."""

    name: str
    value: float | None
    floor: float | None
    goal: float | None
    note: str = ""
    missing: bool = False  # a side that is not a `full` case was not run
    not_applicable: bool = False  # needs SHA-NI, and this CPU has none

    @property
    def below_floor(self) -> bool:
        """True when measured and below the committed floor."""
        return self.value is not None and self.floor is not None and self.value < self.floor

    @property
    def failed(self) -> bool:
        """True when below the floor, or not measured although its cases should have run."""
        return not self.not_applicable and (self.below_floor or self.missing)


def has_sha_ni(data: dict[str, Any]) -> bool:
    """Whether the run's CPU had the SHA extensions (runs recorded before the key: assume yes)."""
    info = data.get("machine_info") or {}
    return bool(info.get(SHA_NI_KEY, True))


def load_cases(path: Path) -> dict[str, Case]:
    """The cases of a pytest-benchmark JSON file, by test name."""
    return cases_of(json.loads(path.read_text()))


def cases_of(data: dict[str, Any]) -> dict[str, Case]:
    """The cases of a parsed pytest-benchmark JSON document, by test name."""
    cases: dict[str, Case] = {}
    for b in data.get("benchmarks", []):
        stats = b["stats"]
        cases[b["name"]] = Case(
            name=b["name"],
            mean=float(stats["mean"]),
            best=float(stats["min"]),
            rounds=int(stats["rounds"]),
            extra=dict(b.get("extra_info") or {}),
        )
    return cases


def load_floors(path: Path | None = None) -> dict[str, Any]:
    """The committed floors, goals, exact counts and ``full`` cases."""
    return json.loads((path or FLOORS_FILE).read_text())  # type: ignore[no-any-return]


def full_cases(floors: dict[str, Any]) -> set[str]:
    """The cases only ``make bench`` runs: their absence from a ``bench-check`` run is expected."""
    return set(floors.get("full_cases", []))


def parse_openssl_speed(stdout: str) -> float | None:
    """Per-hash nanoseconds from ``openssl speed -evp sha256 -bytes 64`` output, if present."""
    # The result line: "sha256   164271.94k" (thousands of bytes per second, 64-byte blocks).
    match = re.search(r"^sha256\s+([0-9.]+)k\s*$", stdout, re.MULTILINE)
    if match is None or float(match.group(1)) <= 0:
        return None
    return 64.0 / (float(match.group(1)) * 1000.0) * 1e9


def openssl_ns_per_hash(seconds: int = 1, runs: int = 3) -> float | None:
    """Per-hash time of ``openssl speed -evp sha256 -bytes 64 -seconds 1``, or ``None``.

    The best of ``runs`` runs, like the best round of a benchmark case: on a shared machine noise
    only adds time. ``None`` when there is no ``openssl`` binary or it fails.
    """
    exe = shutil.which("openssl")
    if exe is None:
        return None
    cmd = [exe, "speed", "-evp", "sha256", "-bytes", "64", "-seconds", str(seconds)]
    best: float | None = None
    for _ in range(runs):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + 5 * seconds)
        except (OSError, subprocess.TimeoutExpired):
            return None
        per_hash = parse_openssl_speed(out.stdout) if out.returncode == 0 else None
        if per_hash is None:
            return None
        best = per_hash if best is None else min(best, per_hash)
    return best


def _per_hash_ns(case: Case) -> float | None:
    hashes = case.extra.get("hashes")
    if not hashes:
        return None
    return case.best / float(hashes) * 1e9


def compute_ratios(
    cases: dict[str, Case], floors: dict[str, Any], *, measure_openssl: bool, sha_ni: bool = True
) -> list[RatioResult]:
    """Every committed ratio, valued from ``cases`` where both sides were measured."""
    results: list[RatioResult] = []
    full = full_cases(floors)
    for name, spec in floors["ratios"].items():
        floor, goal = spec.get("floor"), spec.get("goal")
        if spec.get("needs_sha_ni") and not sha_ni:
            results.append(
                RatioResult(name, None, floor, goal, "n/a: CPU without SHA extensions", False, True)
            )
            continue
        if name == OPENSSL_RATIO:
            results.append(_openssl_ratio(name, cases, floor, goal, measure_openssl))
            continue
        if spec.get("against") == "reference":
            results.append(_reference_ratio(name, cases, spec, full))
            continue
        slow, fast = cases.get(spec["slow"]), cases.get(spec["fast"])
        if slow is None or fast is None:
            absent = [c for c in (spec["slow"], spec["fast"]) if c not in cases]
            required = [c for c in absent if c not in full]
            note = f"not run: {', '.join(absent)}" + ("" if required else " (full only)")
            results.append(RatioResult(name, None, floor, goal, note, missing=bool(required)))
            continue
        rate = spec.get("rate")
        if rate is not None:
            results.append(_rate_ratio(name, slow, fast, str(rate), floor, goal))
            continue
        results.append(RatioResult(name, slow.best / fast.best, floor, goal))
    return results


def _rate_ratio(
    name: str, slow: Case, fast: Case, key: str, floor: float | None, goal: float | None
) -> RatioResult:
    """``fast``'s rate over ``slow``'s, both read from ``extra_info[key]`` (a throughput the
    benchmark measured, higher is faster): the ratio of two rates measured in the same run."""
    a, b = fast.extra.get(key), slow.extra.get(key)
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b <= 0:
        return RatioResult(name, None, floor, goal, f"no {key} recorded", missing=True)
    note = f"{key}: {a:,.0f} / {b:,.0f}"
    return RatioResult(name, float(a) / float(b), floor, goal, note)


def _reference_ratio(
    name: str, cases: dict[str, Case], spec: dict[str, Any], full: set[str]
) -> RatioResult:
    """Reference time (timed beside the case) / the case's best time."""
    floor, goal = spec.get("floor"), spec.get("goal")
    case = cases.get(spec["case"])
    if case is None:
        required = spec["case"] not in full
        note = f"not run: {spec['case']}" + ("" if required else " (full only)")
        return RatioResult(name, None, floor, goal, note, missing=required)
    ref = case.extra.get(REFERENCE_KEY)
    if not ref:
        return RatioResult(name, None, floor, goal, "no reference time recorded", missing=True)
    return RatioResult(name, float(ref) / case.best, floor, goal)


def _openssl_ratio(
    name: str, cases: dict[str, Case], floor: float | None, goal: float | None, measure: bool
) -> RatioResult:
    native = cases.get(SHA_NATIVE_CASE)
    if native is None or _per_hash_ns(native) is None:
        return RatioResult(name, None, floor, goal, f"not run: {SHA_NATIVE_CASE}", missing=True)
    native_ns = _per_hash_ns(native)
    assert native_ns is not None
    recorded = native.extra.get(OPENSSL_KEY)
    where = "measured in the benchmark run"
    if recorded is None and measure:
        recorded = openssl_ns_per_hash()
        where = "measured now by the report"
    if recorded is None:
        return RatioResult(name, None, floor, goal, "skipped: openssl not available")
    note = f"openssl {recorded:.0f} ns/hash vs native {native_ns:.0f} ns/hash ({where})"
    return RatioResult(name, float(recorded) / native_ns, floor, goal, note)


def check_counts(
    cases: dict[str, Case], floors: dict[str, Any], *, sha_ni: bool = True
) -> list[str]:
    """Mismatches between the recorded exact counts and the committed ones."""
    problems: list[str] = []
    full = full_cases(floors)
    if not sha_ni:  # the SHA-NI-only cases skip themselves on such a CPU
        full |= set(floors.get("sha_ni_cases", []))
    for case_name, want in floors["counts"].items():
        case = cases.get(case_name)
        if case is None:
            if case_name not in full:  # a `full` case is expected to be absent from bench-check
                problems.append(f"{case_name}: not run")
            continue
        for key, value in want.items():
            got = case.extra.get(key)
            if got != value:
                problems.append(f"{case_name}: {key} = {got!r}, committed {value!r}")
    return problems


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:8.2f} {unit}"
    return f"{seconds / 1e-9:8.1f} ns"


def render(cases: dict[str, Case], ratios: list[RatioResult], problems: list[str]) -> str:
    """The human-readable report."""
    lines = [f"{'case':58s} {'mean':>11s} {'best':>11s} rounds  counts"]
    for case in sorted(cases.values(), key=lambda c: c.name):
        counts = ", ".join(
            f"{k}={v}"
            for k, v in sorted(case.extra.items())
            if k not in (OPENSSL_KEY, REFERENCE_KEY)
        )
        lines.append(
            f"{case.name:58s} {_fmt_time(case.mean)} {_fmt_time(case.best)} {case.rounds:6d}  "
            f"{counts}"
        )
    lines.append("")
    lines.append(f"{'ratio (best times, same run)':58s} {'value':>8s} {'floor':>7s} {'goal':>7s}")
    for r in ratios:
        value = "     n/a" if r.value is None else f"{r.value:8.3g}"
        floor = "      -" if r.floor is None else f"{r.floor:7.3g}"
        goal = "      -" if r.goal is None else f"{r.goal:7.3g}"
        verdict = "FAIL (not run)" if r.missing else ""
        if r.not_applicable:
            verdict = "not applicable"
        if r.value is not None:
            verdict = "FAIL (below floor)" if r.below_floor else "ok"
            if r.goal is not None:
                verdict += ", goal met" if r.value >= r.goal else ", goal missed"
        lines.append(f"{r.name:58s} {value} {floor} {goal}  {verdict} {r.note}".rstrip())
    if problems:
        lines.append("")
        lines.append("exact counts that differ from benchmarks/floors.json, or cases not run:")
        lines.extend(f"  {p}" for p in problems)
    return "\n".join(lines)


REFERENCE_CASE = "test_reference_python"
FLOOR_MARGIN = 1.35
"""A proposed floor is the median ratio of several runs divided by this: a 1.5x regression of the
case (ratio / 1.5) falls below it, run-to-run noise up to 1.35x does not."""
NOISY = 1.25
"""A case whose ratio varied by more than this across the runs is flagged: the floor may flake."""


def family_of(fullname: str) -> str:
    """``benchmarks/test_pbft_sim.py::...`` -> ``pbft_sim``."""
    return fullname.split("::")[0].rsplit("/", 1)[-1].removeprefix("test_").removesuffix(".py")


def propose(paths: list[Path]) -> dict[str, Any]:
    """Floors for every case against the reference workload, from several runs' JSON files.

    Each case's ratio (reference best / case best, same run) is taken in every run; the proposed
    floor is the median over the runs divided by :data:`FLOOR_MARGIN` (rounded down to 3
    significant digits). Returns ``{"ratios": {name: spec}, "noise": {name: max/min}}``.
    """
    runs = [json.loads(p.read_text()) for p in paths]
    per_run = [cases_of(d) for d in runs]
    families = {b["name"]: family_of(b.get("fullname", "")) for d in runs for b in d["benchmarks"]}
    names = set.intersection(*(set(c) for c in per_run)) - {REFERENCE_CASE}
    ratios: dict[str, Any] = {}
    noise: dict[str, float] = {}
    for name in sorted(names):
        if any(not c[name].extra.get(REFERENCE_KEY) for c in per_run):
            continue
        values = sorted(float(c[name].extra[REFERENCE_KEY]) / c[name].best for c in per_run)
        median = values[len(values) // 2]
        floor = float(f"{median / FLOOR_MARGIN:.3g}")
        key = f"{families[name]}: {name} vs reference"
        ratios[key] = {"against": "reference", "case": name, "floor": floor, "goal": None}
        noise[key] = values[-1] / values[0]
    return {"ratios": ratios, "noise": noise}


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.gate (report|check) FILE.json`` or ``floors FILE.json...``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 2 and args[0] == "floors":
        got = propose([Path(a) for a in args[1:]])
        for name, spec in got["ratios"].items():
            flag = "  NOISY" if got["noise"][name] > NOISY else ""
            print(f"{name:90s} floor {spec['floor']:<10g} spread {got['noise'][name]:.2f}{flag}")
        print(json.dumps(got["ratios"], indent=1))
        return 0
    if len(args) != 2 or args[0] not in {"report", "check"}:
        print(
            "usage: python -m benchmarks.gate (report|check) FILE.json | floors FILE.json...",
            file=sys.stderr,
        )
        return 2
    mode, path = args[0], Path(args[1])
    try:
        data = json.loads(path.read_text())
        cases = cases_of(data)
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
    ) as exc:  # missing, not JSON, wrong shape
        print(
            f"{path}: not a pytest-benchmark JSON file ({type(exc).__name__}: {exc})",
            file=sys.stderr,
        )
        return 2
    if not cases:
        print(f"{path}: no benchmark cases", file=sys.stderr)
        return 1
    floors = load_floors()
    sha_ni = has_sha_ni(data)
    if not sha_ni:
        print("this CPU has no SHA extensions: the SHA-NI ratios are not applicable")
    ratios = compute_ratios(cases, floors, measure_openssl=(mode == "report"), sha_ni=sha_ni)
    problems = check_counts(cases, floors, sha_ni=sha_ni)
    print(render(cases, ratios, problems))
    if mode == "report":
        return 0
    failed = [r for r in ratios if r.failed]
    for r in failed:
        if r.missing:
            print(f"GATE: {r.name} not measured: {r.note}", file=sys.stderr)
        else:
            print(f"GATE: {r.name} = {r.value:.2f} below floor {r.floor}", file=sys.stderr)
    for p in problems:
        print(f"GATE: count mismatch: {p}", file=sys.stderr)
    measured = sum(r.value is not None for r in ratios)
    below = sum(r.below_floor for r in ratios)
    missing = sum(r.missing for r in ratios)
    print(
        f"gate: {measured} ratios measured, {below} below floor, {missing} not run, "
        f"{len(problems)} counts off or missing"
    )
    return 1 if failed or problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
