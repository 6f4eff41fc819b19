"""``python -m fuzz``: run one target under atheris, all of them (``make fuzz``), or replay inputs.

Commands (run from the repository root, so ``medbench`` is this checkout's):

``python -m fuzz all [--per-target S] [--total S] [--min-execs N] [--backends native,pure]``
    every target on every backend for a bounded time, then the table of executions per target
    (:mod:`fuzz.driver`); exits non-zero on any finding or if fewer than ``N`` inputs ran.
``python -m fuzz run TARGET [--seeds DIR] [--findings DIR] [libFuzzer flags] [CORPUS...]``
    one target under atheris (``-max_total_time=``, ``-runs=``, ``-timeout=``... are libFuzzer's);
    ``--seeds`` writes the generated seed inputs into ``DIR`` first.
``python -m fuzz replay TARGET FILE...``
    run inputs without atheris and print each outcome (the traceback of a finding); exit 1 if
    any input is a finding.
``python -m fuzz seeds TARGET DIR``
    write the seed inputs of a target into ``DIR``.

Inside a fuzzing process a finding does not stop the run: the first input of each distinct
failure (exception type and innermost medbench frame) is written to the findings directory with
its traceback, and fuzzing goes on. Hangs and memory blow-ups are caught by libFuzzer
(``-timeout``, ``-rss_limit_mb``), which stops the process and writes the input.
"""

from __future__ import annotations

import hashlib
import sys
import traceback
from pathlib import Path

import fuzz
from fuzz.common import Harness, Skip, outcome


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/medbench/" in f.filename] or frames
    if not ours:
        return type(exc).__name__
    f = ours[-1]
    where = f.filename.rsplit("/medbench/", 1)[-1]
    return f"{type(exc).__name__} at medbench/{where}:{f.lineno} in {f.name}"


class Recorder:
    """Writes the first input of each distinct failure of one target to ``directory``."""

    def __init__(self, target: str, directory: Path | None) -> None:
        self.target = target
        self.directory = directory
        self.counts: dict[str, int] = {}

    def record(self, data: bytes, exc: BaseException) -> None:
        sig = _signature(exc)
        first = sig not in self.counts
        self.counts[sig] = self.counts.get(sig, 0) + 1
        if not first:
            return
        text = "".join(traceback.format_exception(exc))
        sys.stderr.write(f"\n=== FINDING in {self.target}: {sig}\n{text}\n")
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{self.target}-{hashlib.sha256(sig.encode()).hexdigest()[:12]}"
            (self.directory / f"{name}.input").write_bytes(data)
            (self.directory / f"{name}.txt").write_text(
                f"target: {self.target}\nsignature: {sig}\ninput: {data.hex()}\n\n{text}"
            )


def write_seeds(harness: Harness, directory: Path) -> int:
    """Write ``harness``'s seeds into ``directory``; return how many."""
    directory.mkdir(parents=True, exist_ok=True)
    seeds = harness.seeds()
    for data in seeds:
        (directory / f"seed-{hashlib.sha256(data).hexdigest()[:16]}").write_bytes(data)
    return len(seeds)


def _pop_option(argv: list[str], name: str) -> str | None:
    if name in argv:
        i = argv.index(name)
        value = argv[i + 1]
        del argv[i : i + 2]
        return value
    return None


def cmd_run(argv: list[str]) -> int:
    """One target under atheris; libFuzzer flags and corpus directories pass through."""
    import atheris

    target = argv.pop(0)
    seeds_dir = _pop_option(argv, "--seeds")
    findings_dir = _pop_option(argv, "--findings")
    include = ["medbench", "fuzz", *fuzz.TARGETS[target]]
    with atheris.instrument_imports(include=include):
        harness = fuzz.load(target)
        one = harness.setup()
    if seeds_dir is not None:
        write_seeds(harness, Path(seeds_dir))
    recorder = Recorder(target, Path(findings_dir) if findings_dir else None)
    allowed = (Skip, *harness.allowed)

    def test_one_input(data: bytes) -> None:
        try:
            one(data)
        except allowed:
            return
        except Exception as exc:  # every other exception is a finding
            recorder.record(data, exc)

    flags = [f"-max_len={harness.max_len}", f"-timeout={harness.timeout_s}"]
    given = {a.split("=", 1)[0] for a in argv if a.startswith("-")}
    flags = [f for f in flags if f.split("=", 1)[0] not in given]
    atheris.Setup([f"fuzz-{target}", *flags, *argv], test_one_input)
    try:
        atheris.Fuzz()
    finally:
        if recorder.counts:
            sys.stderr.write(f"findings in {target}: {recorder.counts}\n")
    return 0


def cmd_replay(argv: list[str]) -> int:
    """Run input files through a target without atheris."""
    target, files = argv[0], argv[1:]
    harness = fuzz.load(target)
    one = harness.setup()
    bad = 0
    for name in files:
        data = Path(name).read_bytes()
        try:
            result = outcome(harness, one, data)
        except Exception as exc:
            bad += 1
            print(f"{name}: FINDING {_signature(exc)}")
            traceback.print_exception(exc)
            continue
        print(f"{name}: {result}")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        return cmd_run(rest)
    if command == "replay":
        return cmd_replay(rest)
    if command == "seeds":
        print(write_seeds(fuzz.load(rest[0]), Path(rest[1])), "seeds written")
        return 0
    if command == "all":
        from fuzz import driver

        return driver.main(rest)
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
