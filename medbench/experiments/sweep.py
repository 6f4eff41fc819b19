"""Sweeps that keep what they did: rows written as runs finish, resume, failures as rows.

Theory of operation
-------------------
:func:`plan` expands a grid times the seeds into :class:`Task` objects. Every grid point is
checked against its protocol's schema first (:func:`medbench.experiments.params.canonical`), so
a typo or a bad value stops the sweep before any run, and each task gets the ``run_id`` of its
canonical parameters (old names translated, types coerced): the same run written two ways has
one id. :func:`check_size` estimates each run's messages and memory
(:mod:`medbench.experiments.size`) and refuses a plan past a budget.

:func:`execute` runs the tasks and appends each finished run to ``OUT/results.jsonl`` (one JSON
object a line, flushed at once) and its per-node rows to ``OUT/nodes.jsonl``, in the order runs
complete: in this process (``jobs=1``), in joblib worker processes (``jobs>1``), or on a Dask
cluster (``scheduler``). A run that raises becomes a row with ``status = "failed"``,
``error_type`` (the exception's class) and ``error`` (its message) instead of ending the sweep;
a run that completes has ``status = "ok"``. Ctrl-C (``KeyboardInterrupt``) stops the sweep
cleanly: what finished is on disk, and :class:`Summary` says so. ``resume=True`` skips every
task whose ``run_id`` already has a row (``retry_failed=True`` re-runs the failed ones); a last
line cut off by a crash is dropped.

:func:`finish` turns the JSON lines into the tables (``results.csv`` or ``.parquet`` and
``nodes.*``, the last row of each run winning, with the metadata sidecars) and :class:`Summary`
counts runs ok / failed / not live / unsafe.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.experiments import params as schema
from medbench.experiments import runner, size
from medbench.experiments.runner import ExperimentError, expand_grid, run_id
from medbench.sim.costs import CostProfile

RESULTS = "results.jsonl"
NODES = "nodes.jsonl"


@dataclass(frozen=True, slots=True)
class Task:
    """One run of a sweep: canonical parameters, seed, id and size estimate."""

    params: dict[str, Any]
    seed: int
    run_id: str
    estimate: size.Estimate


@dataclass(slots=True)
class Summary:
    """What a sweep did: counts by outcome, and whether it was interrupted."""

    planned: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    not_live: int = 0
    unsafe: int = 0
    interrupted: bool = False
    first_error: str = ""
    not_live_ids: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        """Runs finished in this invocation (ok or failed)."""
        return self.ok + self.failed

    @classmethod
    def of_rows(cls, rows: Iterable[Mapping[str, Any]]) -> Summary:
        """Counts over a whole results table (every run, this invocation's or earlier)."""
        s = cls()
        for row in rows:
            s.planned += 1
            if row.get("status") == "failed":
                s.failed += 1
                if not s.first_error:
                    s.first_error = f"{row.get('error_type')}: {row.get('error')}"
                continue
            s.ok += 1
            if row.get("liveness") is False:
                s.not_live += 1
                s.not_live_ids.append(str(row.get("run_id")))
            if row.get("safety") is False:
                s.unsafe += 1
        return s

    def line(self) -> str:
        """One line: ``24 runs: 20 ok, 1 failed, 3 not live (...)``."""
        parts = [f"{self.ok} ok", f"{self.failed} failed", f"{self.not_live} not live"]
        if self.unsafe:
            parts.append(f"{self.unsafe} unsafe")
        head = f"{self.done} of {self.planned} runs" if self.interrupted else f"{self.done} runs"
        extra = f" ({self.skipped} already done, skipped)" if self.skipped else ""
        return f"{head}: {', '.join(parts)}{extra}"


def plan(grid: Mapping[str, Any], seeds: Iterable[int]) -> list[Task]:
    """Every (grid point, seed) as a :class:`Task`; raises ExperimentError on a bad point."""
    points = expand_grid(grid)
    if not points:
        raise ExperimentError("the grid is empty (a parameter has an empty list of values)")
    seeds = list(seeds)
    if not seeds:
        raise ExperimentError("no seeds: give at least one")
    tasks: list[Task] = []
    seen: set[str] = set()
    for point in points:
        canon = schema.canonical(point)
        full = schema.resolve(point)
        got = schema.schema_for(str(point["protocol"])).estimate(full)
        est = size.Estimate(float(got["messages"]), float(got["memory_bytes"]))
        for seed in seeds:
            rid = run_id(canon, seed)
            if rid in seen:
                continue  # the same run twice in the grid (e.g. an old and a new name)
            seen.add(rid)
            tasks.append(Task(canon, seed, rid, est))
    return tasks


def check_size(tasks: Sequence[Task], budget: size.Budget) -> None:
    """Raise :class:`~medbench.experiments.size.TooLarge` if a task exceeds ``budget``."""
    for task in tasks:
        budget.check(task.estimate, task.params)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file; a line cut off by a crash is skipped."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # an unfinished last line
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _trim_partial(path: Path) -> None:
    """Cut an unfinished last line (no newline) so appends start on a fresh line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _safe_task(
    factory_ref: Any,
    schema_ref: Any,
    task: Task,
    profile: dict[str, Any] | None,
    progress: runner.Progress | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``task``; a run that raises comes back as a ``failed`` row (never raises).

    ``KeyboardInterrupt`` is not caught: it stops the sweep.
    """
    name = str(task.params["protocol"])
    if factory_ref is not None:
        runner.register_protocol(name, factory_ref, schema_ref)
    t0 = time.perf_counter()
    try:
        prof = CostProfile.from_dict(profile) if profile is not None else None
        row, record = runner.run_detailed(task.params, task.seed, prof, progress)
    except Exception as exc:  # a failed run is a result, not the end of the sweep
        failed = {"run_id": task.run_id, "seed": task.seed, "protocol": name}
        failed.update({k: v for k, v in task.params.items() if k != "protocol"})
        failed.update(
            status="failed",
            error_type=type(exc).__name__,
            error=(str(exc) or type(exc).__name__).splitlines()[0][:500],
            wall_s=time.perf_counter() - t0,
        )
        return failed, []
    row["run_id"] = task.run_id
    out = {"run_id": row.pop("run_id"), "seed": row.pop("seed"), "protocol": row.pop("protocol")}
    out["status"] = "ok"
    out["error_type"] = ""
    out["error"] = ""
    out.update(row)
    return out, runner.node_rows(out, record)


class _Writer:
    """Appends rows to the JSON-lines files, flushed after every run."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        for name in (RESULTS, NODES):
            _trim_partial(out / name)
        self.results = (out / RESULTS).open("a", encoding="utf-8")
        self.nodes = (out / NODES).open("a", encoding="utf-8")

    def write(self, row: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]]) -> None:
        # nodes first: a row on disk means its nodes are too
        for r in nodes:
            self.nodes.write(json.dumps(r, default=_jsonable) + "\n")
        self.nodes.flush()
        self.results.write(json.dumps(row, default=_jsonable) + "\n")
        self.results.flush()
        os.fsync(self.results.fileno())

    def close(self) -> None:
        self.results.close()
        self.nodes.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def done_ids(out: Path, retry_failed: bool = False) -> set[str]:
    """Run ids that already have a row in ``out`` (failed ones left out with ``retry_failed``)."""
    return {
        str(r.get("run_id"))
        for r in read_rows(out / RESULTS)
        if not (retry_failed and r.get("status") == "failed")
    }


RowCallback = Callable[[dict[str, Any]], None]


def execute(
    tasks: Sequence[Task],
    out: str | Path,
    *,
    jobs: int = 1,
    scheduler: str | Any | None = None,
    profile: CostProfile | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
    on_row: RowCallback | None = None,
) -> Summary:
    """Run ``tasks``, appending each finished run to ``out`` (see the module docstring)."""
    from tqdm.auto import tqdm

    folder = Path(out)
    summary = Summary(planned=len(tasks))
    if resume:
        skip = done_ids(folder, retry_failed)
        todo = [t for t in tasks if t.run_id not in skip]
        summary.skipped = len(tasks) - len(todo)
    else:
        todo = list(tasks)
    prof = profile.to_dict() if profile is not None else None
    writer = _Writer(folder)
    bar = tqdm(total=len(todo), disable=not progress, desc="runs", unit="run", position=0)
    inner = None

    def record(row: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
        writer.write(row, nodes)
        if row.get("status") == "failed":
            summary.failed += 1
            if not summary.first_error:
                summary.first_error = f"{row.get('error_type')}: {row.get('error')}"
        else:
            summary.ok += 1
            if row.get("liveness") is False:
                summary.not_live += 1
                summary.not_live_ids.append(str(row["run_id"]))
            if row.get("safety") is False:
                summary.unsafe += 1
        if on_row is not None:
            on_row(row)
        bar.update(1)
        bar.set_postfix(ok=summary.ok, failed=summary.failed, not_live=summary.not_live)

    try:
        if scheduler is not None:
            for row, nodes in _on_dask(todo, scheduler, prof):
                record(row, nodes)
        elif jobs == 1:
            inner = tqdm(
                total=0, disable=not progress, desc="  run", unit=" sim s", position=1, leave=False
            )
            for task in todo:
                callback = _inner_progress(inner, task) if progress else None
                row, nodes = _safe_task(None, None, task, prof, callback)
                record(row, nodes)
        else:
            from joblib import Parallel, delayed

            relay = _Relay(progress)
            inner = relay.bar
            calls = (
                delayed(_safe_task)(*_refs(task), task, prof, relay.callback(task)) for task in todo
            )
            try:
                for row, nodes in Parallel(n_jobs=jobs, return_as="generator_unordered")(calls):
                    record(row, nodes)
            finally:
                relay.close()
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if inner is not None:
            inner.close()
        bar.close()
        writer.close()
    return summary


def _refs(task: Task) -> tuple[Any, Any]:
    """The factory and schema entries a worker process re-registers (tests register their own)."""
    name = str(task.params["protocol"])
    return runner._REGISTRY.get(name), runner._SCHEMAS.get(name)


def _inner_progress(bar: Any, task: Task) -> runner.Progress:
    """A progress callback that shows a run's virtual time and completed requests."""
    limit = float(task.params.get("duration_ms", runner.DEFAULTS["duration_ms"])) / 1000.0
    bar.reset(total=limit)
    bar.set_description(f"  run {task.run_id[:8]}")

    def report(now_us: int, completed: int, awaited: int) -> None:
        bar.n = min(now_us / 1e6, limit)
        bar.set_postfix(done=completed, open=awaited, refresh=False)
        bar.refresh()

    return report


class _Relay:
    """Progress inside runs in worker processes: workers put, a thread here shows the latest.

    Workers report through a ``multiprocessing.Manager`` queue (one put per virtual second);
    without progress bars nothing is started.
    """

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        self.queue: Any = None
        if not enabled:
            return
        import multiprocessing
        import threading

        from tqdm.auto import tqdm

        self._manager = multiprocessing.Manager()
        self.queue = self._manager.Queue()
        self.bar = tqdm(
            total=0, desc="  runs in workers", position=1, leave=False, bar_format="{desc}"
        )
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def callback(self, task: Task) -> Any:
        """The worker's progress callback for ``task`` (``None`` when progress is off)."""
        if self.queue is None:
            return None
        return _QueueProgress(self.queue, task.run_id[:8])

    def _drain(self) -> None:
        latest: dict[str, str] = {}
        while True:
            try:
                item = self.queue.get()
            except (EOFError, OSError):
                return
            if item is None:
                return
            rid, now_us, done, open_ = item
            latest[rid] = f"{rid} {now_us / 1e6:.0f} sim s, {done} done, {open_} open"
            while len(latest) > 4:
                latest.pop(next(iter(latest)))
            self.bar.set_description_str("  " + " | ".join(latest.values()))

    def close(self) -> None:
        """Stop the thread and the manager."""
        if self.queue is None:
            return
        with contextlib.suppress(Exception):  # the manager may be gone (Ctrl-C reaches it too)
            self.queue.put(None)
        self._thread.join(timeout=2)
        with contextlib.suppress(Exception):
            self._manager.shutdown()


class _QueueProgress:
    """A picklable progress callback that puts ``(run, now, done, open)`` on a queue."""

    def __init__(self, queue: Any, run: str) -> None:
        self.queue = queue
        self.run = run

    def __call__(self, now_us: int, completed: int, awaited: int) -> None:
        with contextlib.suppress(Exception):  # progress must never fail a run
            self.queue.put((self.run, now_us, completed, awaited))


def _on_dask(
    tasks: Sequence[Task], scheduler: str | Any, prof: dict[str, Any] | None
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Run on a Dask cluster; yield rows as runs complete (futures cancelled on Ctrl-C)."""
    from dask.distributed import Client, as_completed

    client: Any = scheduler
    if not isinstance(scheduler, Client):
        client = Client(scheduler, timeout="10s")  # type: ignore[no-untyped-call]
    futures = []
    try:
        for task in tasks:
            futures.append(
                client.submit(_safe_task, *_refs(task), task, prof, key=f"run-{task.run_id}")
            )
        for fut in as_completed(futures):  # type: ignore[no-untyped-call]
            yield fut.result()
    finally:
        for fut in futures:
            fut.cancel()
        if client is not scheduler:
            client.close()


def finish(
    out: str | Path, fmt: str = "csv", meta: Mapping[str, Any] | None = None
) -> tuple[Path, Path, list[dict[str, Any]]]:
    """Write the tables of ``out`` from its JSON lines; returns their paths and the rows.

    The last row of each ``run_id`` wins (a retried failure replaces its first row); node rows
    are kept for the runs that have a row, the last set of each run.
    """
    folder = Path(out)
    rows: dict[str, dict[str, Any]] = {}
    for row in read_rows(folder / RESULTS):
        rows.pop(str(row.get("run_id")), None)
        rows[str(row.get("run_id"))] = row
    by_run: dict[str, dict[Any, dict[str, Any]]] = {}
    for r in read_rows(folder / NODES):
        rid = str(r.get("run_id"))
        if rid in rows:
            by_run.setdefault(rid, {})[r.get("node")] = r
    nodes = [r for rid in rows for r in by_run.get(rid, {}).values()]
    path = runner.write_results(list(rows.values()), folder, fmt=fmt, meta=meta)
    node_path = runner.write_results(nodes, folder, fmt=fmt, meta=meta, name="nodes")
    return path, node_path, list(rows.values())


__all__ = [
    "NODES",
    "RESULTS",
    "Summary",
    "Task",
    "check_size",
    "done_ids",
    "execute",
    "finish",
    "plan",
    "read_rows",
]
