"""``python -m fuzz all`` (what ``make fuzz`` runs): every target, both backends, bounded time.

Each (backend, target) pair runs in its own process, ``python -m fuzz run TARGET`` under
atheris with ``-max_total_time`` set to the per-target budget (times the target's weight,
:data:`fuzz.WEIGHTS`: the slow stateful targets get more), ``MEDBENCH_PURE_PYTHON=1`` for
the pure-Python backend, a fresh corpus seeded with the target's generated inputs, a per-input
timeout (the harness's) and an RSS limit. If the first pass ran fewer inputs than
``--min-execs``, the fastest targets get more rounds (continuing from their corpora) until the
minimum is reached or the total budget is spent. Then it prints, per backend and target, the
inputs run and the rate (libFuzzer's final stats), the total, and every finding (the Recorder's
files and libFuzzer's ``crash-``/``timeout-``/``oom-`` artifacts), each labelled with the known
defect it is when it is one (:data:`KNOWN_DEFECTS`).

Exit status: 0 when every run ended normally, nothing was found and at least ``--min-execs``
inputs ran; 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import fuzz

BACKENDS = ("native", "pure")

KNOWN_DEFECTS: tuple[tuple[int, str, str], ...] = (
    (1, r"(UnicodeEncodeError|TypeError) at medbench/codec\.py", "codec.encode raises a "
     "UnicodeEncodeError / bare TypeError instead of EncodeError"),
    (2, r"IndexError at medbench/reference/merkle\.py", "reference merkle.root(iter([])) raises "
     "IndexError where native returns H(\"\")"),
    (3, r"at medbench/reference/quorum\.py", "reference QuorumTracker.add accepts float voters "
     "where native raises"),
    (4, r"ValueError at medbench/ledger/block\.py:\d+ in __post_init__", "a Medical Chain node "
     "raises ValueError out of step() on a BLOCK with a timestamp near 2^63 (blocker mode)"),
)  # fmt: skip
"""The defects of issue 13 the lead fixes on main: (number, signature pattern, description)."""


def known_defect(target: str, signature: str) -> int | None:
    """The number of the known defect ``signature`` is, if it is one."""
    for number, pattern, _ in KNOWN_DEFECTS:
        if re.search(pattern, signature) and (number != 4 or target == "medchain_step"):
            return number
    return None


@dataclass
class Result:
    """What the runs of one (backend, target) pair did."""

    backend: str
    target: str
    execs: int = 0
    seconds: float = 0.0  # fuzzing time (execs / libFuzzer's average rate)
    wall: float = 0.0
    rounds: int = 0
    problems: list[str] = field(default_factory=list)  # runs that did not end normally

    @property
    def rate(self) -> float:
        return self.execs / self.seconds if self.seconds else 0.0


@dataclass
class Finding:
    """One distinct failure found by a run."""

    backend: str
    target: str
    signature: str
    path: Path

    @property
    def known(self) -> int | None:
        return known_defect(self.target, self.signature)


_EXECS = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_RATE = re.compile(r"stat::average_exec_per_sec:\s*(\d+)")
_STATUS = re.compile(r"^#(\d+)\s", re.M)


def _stats(log: str) -> tuple[int, float]:
    """(inputs run, average rate) of one libFuzzer run, from its final stats or, after a crash,
    its last status line."""
    execs = _EXECS.findall(log)
    rates = _RATE.findall(log)
    if execs and rates:
        return int(execs[-1]), float(rates[-1])
    status = _STATUS.findall(log)
    return (int(status[-1]) if status else 0), 0.0


def run_one(
    python: str,
    backend: str,
    target: str,
    seconds: int,
    work: Path,
    rss_mb: int,
    seed: bool,
) -> tuple[int, float, float, str | None]:
    """One libFuzzer process; returns (inputs, rate, wall seconds, problem or None)."""
    corpus = work / "corpus" / backend / target
    findings = work / "findings" / backend / target
    artifacts = work / "artifacts" / backend / target
    logs = work / "logs" / backend
    for d in (corpus, findings, artifacts, logs):
        d.mkdir(parents=True, exist_ok=True)
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    scratch = Path(tempfile.mkdtemp(prefix=f"medbench-fuzz-{target}-", dir=base))
    env = dict(os.environ, MEDBENCH_FUZZ_SCRATCH=str(scratch))
    env.pop("MEDBENCH_PURE_PYTHON", None)
    if backend == "pure":
        env["MEDBENCH_PURE_PYTHON"] = "1"
    cmd = [python, "-m", "fuzz", "run", target, "--findings", str(findings)]
    if seed:
        cmd += ["--seeds", str(corpus)]
    cmd += [
        f"-max_total_time={seconds}",
        f"-rss_limit_mb={rss_mb}",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        str(corpus),
    ]
    started = time.monotonic()
    log_path = logs / f"{target}.log"
    with open(log_path, "a") as log:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
        try:
            proc = subprocess.run(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=Path(fuzz.__file__).resolve().parent.parent,
                timeout=seconds + 300,
                check=False,
            )
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    wall = time.monotonic() - started
    text = log_path.read_text(errors="replace").rsplit("\n$ ", 1)[-1]
    execs, rate = _stats(text)
    problem = None
    if code is None:
        problem = f"did not stop within {seconds + 300} s (killed)"
    elif code != 0:
        problem = f"exited with status {code} (see {log_path})"
    return execs, rate, wall, problem


def collect(work: Path) -> list[Finding]:
    """Every finding the runs wrote (Recorder reports and libFuzzer artifacts)."""
    out = []
    for backend in BACKENDS:
        for target in fuzz.TARGETS:
            for report in sorted((work / "findings" / backend / target).glob("*.txt")):
                sig = next(
                    (ln.split(": ", 1)[1] for ln in report.read_text().splitlines()
                     if ln.startswith("signature: ")),
                    "?",
                )  # fmt: skip
                out.append(Finding(backend, target, sig, report.with_suffix(".input")))
            for art in sorted((work / "artifacts" / backend / target).glob("*")):
                kind = art.name.split("-", 1)[0]
                out.append(Finding(backend, target, f"libFuzzer {kind}", art))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz all", description=__doc__)
    parser.add_argument("--per-target", type=int, default=10, help="seconds per target and backend")
    parser.add_argument("--total", type=int, default=1800, help="seconds for everything, at most")
    parser.add_argument("--min-execs", type=int, default=1_000_000)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--targets", default=",".join(fuzz.TARGETS))
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--out", default="", help="work directory (default: a fresh temp dir)")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    targets = [t for t in args.targets.split(",") if t]
    for name in (*backends, *targets):
        if name not in BACKENDS and name not in fuzz.TARGETS:
            parser.error(f"unknown backend or target {name!r}")
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="medbench-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.total
    print(f"fuzzing {len(targets)} targets x {len(backends)} backends, {args.per_target} s each "
          f"(x{max(fuzz.WEIGHTS.values())} for {', '.join(fuzz.WEIGHTS)}) "
          f"(total at most {args.total} s, at least {args.min_execs:,} inputs); work dir {work}",
          flush=True)  # fmt: skip
    results = {(b, t): Result(b, t) for b in backends for t in targets}

    def one_round(res: Result, seconds: int) -> None:
        execs, rate, wall, problem = run_one(
            sys.executable, res.backend, res.target, seconds, work, args.rss_limit_mb,
            seed=res.rounds == 0,
        )  # fmt: skip
        res.rounds += 1
        res.execs += execs
        res.seconds += execs / rate if rate else float(seconds)
        res.wall += wall
        if problem:
            res.problems.append(problem)
        print(f"  {res.backend:6s} {res.target:16s} {execs:>10,} inputs {rate:>9,.0f}/s "
              f"{wall:6.1f} s wall{'  ' + problem if problem else ''}", flush=True)  # fmt: skip

    for res in results.values():
        seconds = args.per_target * fuzz.WEIGHTS.get(res.target, 1)
        if time.monotonic() + seconds > deadline:
            res.problems.append("not run: total time budget spent")
            continue
        one_round(res, seconds)
    total = sum(r.execs for r in results.values())
    # more rounds for the fastest targets while the minimum is not reached and time remains
    while total < args.min_execs:
        ranked = sorted((r for r in results.values() if r.rate), key=lambda r: -r.rate)
        left = deadline - time.monotonic()
        if not ranked or left < args.per_target + 30:
            break
        for res in ranked[:4]:
            if total >= args.min_execs or deadline - time.monotonic() < args.per_target + 30:
                break
            before = res.execs
            one_round(res, args.per_target)
            total += res.execs - before
    findings = collect(work)
    _report(results, findings, total, args.min_execs, work)
    if findings or total < args.min_execs or any(r.problems for r in results.values()):
        return 1
    shutil.rmtree(work / "corpus", ignore_errors=True)
    return 0


def _report(
    results: dict[tuple[str, str], Result],
    findings: list[Finding],
    total: int,
    minimum: int,
    work: Path,
) -> None:
    print()
    print(f"{'backend':8s} {'target':16s} {'inputs':>12s} {'inputs/s':>10s} {'wall s':>8s} "
          f"{'findings':>8s}")  # fmt: skip
    by_pair: dict[tuple[str, str], int] = {}
    for f in findings:
        by_pair[(f.backend, f.target)] = by_pair.get((f.backend, f.target), 0) + 1
    for (backend, target), r in results.items():
        print(f"{backend:8s} {target:16s} {r.execs:>12,} {r.rate:>10,.0f} {r.wall:>8.1f} "
              f"{by_pair.get((backend, target), 0):>8d}")  # fmt: skip
    seconds = sum(r.seconds for r in results.values())
    wall = sum(r.wall for r in results.values())
    rate = total / seconds if seconds else 0.0
    print(f"{'total':8s} {'':16s} {total:>12,} {rate:>10,.0f} {wall:>8.1f} {len(findings):>8d}")
    problems = [(r, p) for r in results.values() for p in r.problems]
    for r, p in problems:
        print(f"note: {r.backend} {r.target}: {p}")
    if findings:
        print(f"\n{len(findings)} finding(s):")
        for f in findings:
            label = f"known defect {f.known}" if f.known else "NEW"
            print(f"  [{label}] {f.backend} {f.target}: {f.signature}\n      input: {f.path}")
        print(f"reproduce: python -m fuzz replay TARGET INPUT (work dir {work})")
    if total < minimum:
        print(f"\nFAIL: {total:,} inputs run, fewer than the required {minimum:,}")
    elif not findings:
        print(f"\nok: {total:,} inputs, no finding")
