"""Uniform metrics of one run: latency, throughput, messages, CPU, view changes, storage, verdicts.

Theory of operation
-------------------
A driver (the simulator in :mod:`medbench.sim`) fills one :class:`RunRecord` with raw facts:
when each transaction was submitted and first completed, what each replica committed at each
sequence number, how many messages and bytes of each kind were sent, the CPU nanoseconds each node
spent per operation, the notes nodes emitted (with their time), and storage per node.
:func:`summarize` turns a record into one flat ``dict`` of numbers (a "tidy" row): every column is
one metric, so a sweep is a list of such rows (see :mod:`medbench.experiments`).

Definitions (times in virtual microseconds unless the name says ``_s`` or ``_ms``):

* latency of a transaction = first completion (e.g. a PBFT client holding f+1 matching replies)
  minus submission; ``latency_ms_p50/p95/p99`` via :func:`numpy.percentile` (linear);
* throughput = completed transactions / (last completion - first submission), per virtual second;
* ``msgs_per_tx`` / ``bytes_per_tx`` = point-to-point messages (a broadcast to k nodes is k) sent
  during the run / completed transactions, in total and per message kind (``msgs_per_tx.<kind>``);
* ``cpu_s.<op>`` = CPU seconds by operation summed over nodes, and ``cpu_s_max_node`` the busiest
  node's total; :func:`node_rows` gives the per-node, per-operation table;
* view changes: notes of kind ``"view_change"`` (a replica starts changing view) and
  ``"new_view"`` (it enters the new view). A view change's duration on a node runs from its first
  ``view_change`` note to its next ``new_view`` note; the row reports how many views were entered
  and the mean/max duration;
* storage: ``storage_bytes.<category>`` summed over nodes (if nodes report it);
  :func:`node_table` gives one row per node (CPU seconds and counts by operation, storage bytes
  by category), the ``nodes.csv`` of a sweep;
* verdicts from pluggable :class:`Checker` objects: :class:`SafetyChecker` (no two replicas commit
  different payloads at one sequence number, and no replica commits two) and
  :class:`LivenessChecker` (every submitted transaction completed by the end).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(slots=True)
class RunRecord:
    """Raw facts of one run, filled by a driver (see the module docstring)."""

    n_nodes: int
    replicas: tuple[int, ...]
    end_us: int = 0
    submitted: dict[Hashable, int] = field(default_factory=dict)
    completed: dict[Hashable, int] = field(default_factory=dict)
    commits: dict[int, list[tuple[int, Hashable, int]]] = field(default_factory=dict)
    sent_msgs: dict[str, int] = field(default_factory=dict)
    sent_bytes: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    cpu_ns: dict[int, dict[str, int]] = field(default_factory=dict)
    op_counts: dict[int, dict[str, int]] = field(default_factory=dict)
    notes: list[tuple[int, int, str, Any]] = field(default_factory=list)
    storage: dict[int, dict[str, int]] = field(default_factory=dict)
    events: int = 0
    trace_digest: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one checker: ``ok`` and, when not ok, why."""

    name: str
    ok: bool
    reason: str = ""


class Checker(Protocol):
    """A pluggable verdict on a run (safety, liveness, or a protocol's own invariant)."""

    name: str

    def check(self, record: RunRecord) -> Verdict:
        """Judge ``record``."""
        ...


def _short(key: Hashable) -> str:
    """A committed payload as a report shows it: a hash prefix for bytes, else its repr."""
    if isinstance(key, bytes):
        return key[:6].hex()
    return f"{key!r:.40}"


class SafetyChecker:
    """Agreement: on each sequence number, every replica that committed chose the same payload."""

    name = "safety"

    def check(self, record: RunRecord) -> Verdict:
        """Return a failing verdict naming the first conflicting sequence number, if any."""
        chosen: dict[int, tuple[int, Hashable]] = {}
        for node in sorted(record.commits):
            if record.replicas and node not in record.replicas:
                continue
            for seq, key, _t in record.commits[node]:
                first = chosen.get(seq)
                if first is None:
                    chosen[seq] = (node, key)
                elif first[1] != key:
                    return Verdict(
                        self.name,
                        False,
                        f"sequence {seq}: node {first[0]} committed {_short(first[1])} "
                        f"but node {node} committed {_short(key)}",
                    )
        return Verdict(self.name, True)


class LivenessChecker:
    """Every submitted transaction completed before the run ended."""

    name = "liveness"

    def check(self, record: RunRecord) -> Verdict:
        """Return a failing verdict counting the transactions left open."""
        missing = [tx for tx in record.submitted if tx not in record.completed]
        if missing:
            return Verdict(
                self.name, False, f"{len(missing)} of {len(record.submitted)} not completed"
            )
        return Verdict(self.name, True)


DEFAULT_CHECKERS: tuple[Checker, ...] = (SafetyChecker(), LivenessChecker())


def percentiles(values: Sequence[float], qs: Iterable[float]) -> list[float]:
    """Linear-interpolated percentiles of ``values`` (NaN for an empty input)."""
    qs = list(qs)
    if not values:
        return [float("nan")] * len(qs)
    return [float(x) for x in np.percentile(np.asarray(values, dtype=np.float64), qs)]


def latencies_us(record: RunRecord) -> list[int]:
    """Submit-to-completion latency of every completed, submitted transaction."""
    sub = record.submitted
    return [t - sub[tx] for tx, t in record.completed.items() if tx in sub]


def view_change_stats(record: RunRecord) -> tuple[int, float, float]:
    """(views entered, mean duration us, max duration us) from the view-change notes."""
    started: dict[int, int] = {}
    durations: list[int] = []
    views: set[Any] = set()
    entered = 0
    for t, node, kind, detail in record.notes:
        if kind == "view_change":
            started.setdefault(node, t)
        elif kind == "new_view":
            key = _hashable(detail)
            if detail is None or key not in views:
                views.add(key)
                entered += 1
            if node in started:
                durations.append(t - started.pop(node))
    if not durations:
        return entered, 0.0, 0.0
    return entered, float(np.mean(durations)), float(max(durations))


def summarize(record: RunRecord, checkers: Sequence[Checker] = DEFAULT_CHECKERS) -> dict[str, Any]:
    """One flat row of metrics for ``record`` (see the module docstring for definitions)."""
    row: dict[str, Any] = {}
    lats = latencies_us(record)
    done = len(lats)
    row["submitted"] = len(record.submitted)
    row["completed"] = done
    p50, p95, p99 = percentiles(lats, (50, 95, 99))
    row["latency_ms_p50"] = p50 / 1000.0
    row["latency_ms_p95"] = p95 / 1000.0
    row["latency_ms_p99"] = p99 / 1000.0
    row["latency_ms_mean"] = float(np.mean(lats)) / 1000.0 if lats else float("nan")
    if done:
        start = min(record.submitted.values())
        end = max(t for tx, t in record.completed.items() if tx in record.submitted)
        span = max(end - start, 1)
        row["throughput_tps"] = done / (span / 1e6)
    else:
        row["throughput_tps"] = 0.0
    row["sim_end_s"] = record.end_us / 1e6
    total_msgs = sum(record.sent_msgs.values())
    total_bytes = sum(record.sent_bytes.values())
    per = max(done, 1)
    row["msgs_total"] = total_msgs
    row["bytes_total"] = total_bytes
    row["msgs_per_tx"] = total_msgs / per
    row["bytes_per_tx"] = total_bytes / per
    for kind in sorted(record.sent_msgs):
        row[f"msgs_per_tx.{kind}"] = record.sent_msgs[kind] / per
        row[f"bytes_per_tx.{kind}"] = record.sent_bytes.get(kind, 0) / per
    row["delivered"] = record.delivered
    for reason in sorted(record.dropped):
        row[f"dropped.{reason}"] = record.dropped[reason]
    by_op: dict[str, int] = {}
    busiest = 0
    for ops in record.cpu_ns.values():
        busiest = max(busiest, sum(ops.values()))
        for op, ns in ops.items():
            by_op[op] = by_op.get(op, 0) + ns
    for op in sorted(by_op):
        row[f"cpu_s.{op}"] = by_op[op] / 1e9
    row["cpu_s_total"] = sum(by_op.values()) / 1e9
    row["cpu_s_max_node"] = busiest / 1e9
    entered, mean_us, max_us = view_change_stats(record)
    row["view_changes"] = entered
    row["view_change_ms_mean"] = mean_us / 1000.0
    row["view_change_ms_max"] = max_us / 1000.0
    note_counts: dict[str, int] = {}
    for _t, _n, kind, _d in record.notes:
        note_counts[kind] = note_counts.get(kind, 0) + 1
    for kind in sorted(note_counts):
        row[f"notes.{kind}"] = note_counts[kind]
    storage: dict[str, int] = {}
    for cats in record.storage.values():
        for cat, b in cats.items():
            storage[cat] = storage.get(cat, 0) + b
    for cat in sorted(storage):
        row[f"storage_bytes.{cat}"] = storage[cat]
    for verdict in (c.check(record) for c in checkers):
        row[verdict.name] = verdict.ok
        row[f"{verdict.name}_reason"] = verdict.reason
    row["events"] = record.events
    row["trace_digest"] = record.trace_digest
    return row


def node_rows(record: RunRecord) -> list[dict[str, Any]]:
    """Tidy per-node rows: one per (node, operation) with CPU seconds and operation count."""
    rows = []
    for node in sorted(record.cpu_ns):
        ops = record.cpu_ns[node]
        counts = record.op_counts.get(node, {})
        for op in sorted(set(ops) | set(counts)):
            rows.append(
                {
                    "node": node,
                    "op": op,
                    "cpu_s": ops.get(op, 0) / 1e9,
                    "count": counts.get(op, 0),
                }
            )
    return rows


def node_table(
    record: RunRecord, storage: dict[int, dict[str, int]] | None = None
) -> list[dict[str, Any]]:
    """One wide row per node: CPU seconds and counts by operation, storage bytes by category.

    Columns: ``node``, ``replica`` (in the safety checker's set), ``cpu_s.<op>``,
    ``cpu_s_total``, ``count.<op>``, ``storage_bytes.<category>``, ``storage_bytes_total``.
    ``storage`` overrides ``record.storage`` (e.g. read after a drain). Nodes that spent no CPU
    and store nothing are still listed, so the table has ``record.n_nodes`` rows.
    """
    stored = record.storage if storage is None else storage
    rows = []
    replicas = set(record.replicas)
    for node in range(record.n_nodes):
        ops = record.cpu_ns.get(node, {})
        counts = record.op_counts.get(node, {})
        cats = stored.get(node, {})
        row: dict[str, Any] = {"node": node, "replica": node in replicas}
        for op in sorted(ops):
            row[f"cpu_s.{op}"] = ops[op] / 1e9
        row["cpu_s_total"] = sum(ops.values()) / 1e9
        for op in sorted(counts):
            row[f"count.{op}"] = counts[op]
        for cat in sorted(cats):
            row[f"storage_bytes.{cat}"] = int(cats[cat])
        row["storage_bytes_total"] = sum(int(v) for v in cats.values())
        rows.append(row)
    return rows


def _hashable(value: Any) -> Hashable:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value  # type: ignore[no-any-return]
