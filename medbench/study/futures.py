"""The paper's future work, measured: PBFT, chained HotStuff and Raft side by side (issue 16).

Theory of operation
-------------------
Medical Chain's paper ends by asking for a faster BFT protocol and for a BFT + CFT hybrid among
hospitals. This module measures, in the deterministic simulator and over several seeds, what a
consortium choosing among PBFT (``pbft``), chained HotStuff (``hotstuff``) and Raft (``raft``)
would compare (docs/medical-chain.md §4), with one workload, one cost profile and one network
for all three. The network is ``topology`` (default ``city``: the hospitals of one city placed at
random, 1-5 ms apart, links of 100 Mbit/s to 1 Gbit/s, :mod:`medbench.sim.topology`), drawn
anew from each seed, so the seeds are different consortia and their spread is the spread over
layouts (on the ``complete`` graph every seed gives the same timing: keys and payload bytes
change, sizes do not):

1. **Saturation** (:func:`saturation_params`): ``clients`` closed-loop clients (``load =
   "closed"``: one request in flight each, the next sent when it is answered, so latency is
   counted from the moment a request leaves), batches of up to ``batch`` requests
   (PBFT and HotStuff wait up to ``batch_delay_us`` to fill one; Raft sends each entry at once,
   as the core does), failure detectors set far beyond the run (so overload is measured, not a
   view change it would trigger). Read: throughput (completed / span), messages, bytes and CPU
   per transaction (every node, clients included), storage per replica, and the busiest node's
   CPU share of the run from the first submission (``cpu_busy_share``, near 1 when a node's CPU
   is the bottleneck). ``throughput_tps_steady`` counts only the middle half of the completions
   (:func:`steady_throughput`: no ramp, no drain); the headline uses it when present.
2. **Latency** (:func:`latency_params`): the same protocols under light open-loop load
   (``latency_rate_tps``), where a request's latency is its service time (the saturation rows
   have a latency too: it includes the queueing at the busiest node).
3. **Leader failure** (:func:`leader_failure`): open-loop load at ``failure_rate_tps``; at
   ``crash_after_us`` after the first submission the *current leader* crashes — PBFT's primary,
   the replica that leads HotStuff's next view, Raft's leader — with every failure detector set
   to ``failure_timeout_us`` (PBFT's view-change and client timeouts, HotStuff's view and client
   timeouts, Raft's election timeout, drawn in ``[T, 2T)``, and client timeout). A *stall* is a
   gap between consecutive completions longer than :data:`STALL_FACTOR` arrival intervals; a
   run ends when every request completed or ``failure_horizon_ms`` after the crash. Read: the
   time from the crash until the first completion that ends a stall (``resume_ms``: service
   resumed; NaN, with ``resumed`` 0, when it had not resumed by the horizon — the open stall
   then counts up to the horizon, a lower bound), the longest gap (``outage_ms``), the number of
   stalls and the total time lost in them after the crash (``stall_ms_total``: HotStuff's
   round-robin leaders meet the crashed one again every ``n`` views), the recovery messages
   sent after the crash (PBFT's VIEW-CHANGE / NEW-VIEW, HotStuff's NEW-VIEW, Raft's
   RequestVote and answers) and all messages per transaction.

Rows are the runner's (:func:`medbench.experiments.run`: parameters + the
:func:`medbench.metrics.summarize` schema) with ``experiment`` and a few derived columns
(:func:`derive`), so rows measured on the cluster runtime (the same summarize schema, with
``source`` set) go through :func:`aggregate`, :func:`crossovers`, :func:`conclusions` and the
plots unchanged; a column a source lacks is NaN and skipped.

:func:`aggregate` gives mean, standard deviation, min and max over seeds per (experiment,
protocol, n); :func:`crossovers` finds, for each metric and pair of protocols, the sizes between
which their order flips (linearly interpolated in log n) and says whether every seed agrees on
the order on both sides; :func:`conclusions` writes sentences from those numbers for the
consortia of :data:`CONSORTIA` — it states only orders and ratios the data show.

``python -m medbench.study.futures --out DIR [--preset full|reproduce|quick|small]`` writes the
comparison as a report folder; :func:`section` adds it to ``medbench reproduce``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from medbench import experiments as ex
from medbench import metrics
from medbench.sim.costs import CostProfile
from medbench.study.report import Report, markdown_table

PROTOCOLS: tuple[str, ...] = ("pbft", "hotstuff", "raft")
"""The compared protocols, in report order."""

LABELS: dict[str, str] = {"pbft": "PBFT", "hotstuff": "chained HotStuff", "raft": "Raft"}

CONSORTIA: tuple[int, ...] = (4, 16, 64, 100)
"""The consortium sizes the paper's question is answered for."""

GRID_N: tuple[int, ...] = (4, 7, 10, 16, 32, 64, 100)
"""Node counts of the full comparison."""

STALL_FACTOR = 5
"""A gap between completions longer than this many arrival intervals is a stall."""

RECOVERY_KINDS: dict[str, tuple[str, ...]] = {
    "pbft": ("view-change", "new-view", "view-change-ack"),
    "hotstuff": ("new-view",),
    "raft": ("request-vote", "request-vote-response"),
}
"""Message kinds each protocol sends to replace a failed leader."""

NEVER_US = 600_000_000
"""A failure-detector timeout no saturation run reaches (virtual microseconds)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What a comparison runs (see the module docstring); presets below."""

    ns: tuple[int, ...] = GRID_N
    seeds: tuple[int, ...] = (1, 2, 3)
    protocols: tuple[str, ...] = PROTOCOLS
    topology: str = "city"
    batch: int = 16
    batch_delay_us: int = 1_000
    payload_bytes: int = 200
    clients: int = 256
    requests: int = 768
    large_n: int = 64  # from this size on, the workload is bounded ...
    large_requests: int = 512  # ... to this many requests
    latency_rate_tps: float = 20.0
    latency_requests: int = 40
    large_latency_requests: int = 16  # from large_n on (PBFT's n^2 per request at light load)
    failure_ns: tuple[int, ...] = (4, 16, 64)
    failure_rate_tps: float = 50.0
    failure_requests: int = 80
    failure_clients: int = 8
    crash_after_us: int = 400_000
    failure_timeout_us: int = 300_000
    failure_horizon_ms: int = 10_000  # virtual time after the crash a failure run may take
    duration_ms: int = 300_000
    profile: CostProfile | None = None

    @classmethod
    def full(cls) -> Settings:
        """The full comparison: n = 4 ... 100, three seeds (tens of minutes on two cores)."""
        return cls(
            clients=256,
            requests=1024,
            large_requests=512,
            latency_requests=30,
            large_latency_requests=12,
            failure_ns=(4, 16, 64, 100),
            failure_requests=60,
        )

    @classmethod
    def reproduce(cls) -> Settings:
        """``medbench reproduce``: the consortia of the paper's question, two seeds, bounded
        workloads (PBFT's n^2 messages at n = 100 dominate the time)."""
        return cls(
            ns=CONSORTIA,
            seeds=(1, 2),
            clients=64,
            requests=384,
            large_requests=160,
            latency_requests=16,
            large_latency_requests=6,
            failure_ns=(4, 16),
            failure_requests=50,
        )

    @classmethod
    def quick(cls) -> Settings:
        """``medbench reproduce --quick``: two small sizes, two seeds (a few seconds)."""
        return cls(
            ns=(4, 16),
            seeds=(1, 2),
            clients=32,
            requests=128,
            latency_requests=12,
            failure_ns=(4,),
            failure_requests=30,
        )

    @classmethod
    def small(cls) -> Settings:
        """The notebook's test parameters (``MEDBENCH_SMALL=1``): tiny but complete."""
        return replace(cls.quick(), ns=(4, 7), requests=96, clients=24)

    def requests_for(self, n: int) -> int:
        """Saturation requests at size ``n`` (bounded from :attr:`large_n` on)."""
        return self.large_requests if n >= self.large_n else self.requests

    def cost_profile(self) -> CostProfile:
        """The cost profile of every run."""
        return self.profile if self.profile is not None else CostProfile.default()


def _protocol_timeouts(protocol: str, timeout_us: int) -> dict[str, Any]:
    """Every failure detector of ``protocol`` set to ``timeout_us``."""
    if protocol == "pbft":
        return {"view_change_timeout_us": timeout_us, "client_timeout_us": timeout_us}
    if protocol == "hotstuff":
        return {
            "view_timeout_us": timeout_us,
            "max_view_timeout_us": max(timeout_us, 60_000_000),
            "client_timeout_us": timeout_us,
        }
    return {"client_timeout_us": timeout_us}


def _common(protocol: str, n: int, s: Settings) -> dict[str, Any]:
    p: dict[str, Any] = {
        "protocol": protocol,
        "n": n,
        "topology": s.topology,
        "batch": s.batch,
        "payload_bytes": s.payload_bytes,
        "duration_ms": s.duration_ms,
    }
    if protocol in ("pbft", "hotstuff"):
        p["batch_delay_us"] = s.batch_delay_us
    return p


def saturation_params(protocol: str, n: int, s: Settings) -> dict[str, Any]:
    """Closed-loop clients (one request in flight each), failure detectors out of the way."""
    p = _common(protocol, n, s)
    p.update(clients=s.clients, requests=s.requests_for(n), load="closed", outstanding=1)
    if protocol == "raft":
        p["client_timeout_us"] = NEVER_US  # its election timeout is needed to start
    else:
        p.update(_protocol_timeouts(protocol, NEVER_US))
    return p


def latency_params(protocol: str, n: int, s: Settings) -> dict[str, Any]:
    """Light open-loop load: a request every ``1 / latency_rate_tps`` seconds."""
    p = _common(protocol, n, s)
    p.update(
        clients=4,
        requests=s.large_latency_requests if n >= s.large_n else s.latency_requests,
        rate_tps=s.latency_rate_tps,
    )
    return p


def failure_params(protocol: str, n: int, s: Settings) -> dict[str, Any]:
    """Open-loop load at ``failure_rate_tps`` with every failure detector at the same timeout."""
    p = _common(protocol, n, s)
    p.update(
        clients=s.failure_clients,
        requests=s.failure_requests,
        rate_tps=s.failure_rate_tps,
        **_protocol_timeouts(protocol, s.failure_timeout_us),
    )
    if protocol == "raft":
        p["election_timeout_us"] = s.failure_timeout_us
    return p


def derive(row: dict[str, Any]) -> dict[str, Any]:
    """Add ``cpu_ms_per_tx``, ``storage_kb_per_node``, ``storage_bytes_per_tx`` (bytes a
    replica stores per committed transaction: blocks, transactions and protocol log) and
    ``cpu_busy_share`` to a runner row (NaN where the row lacks what they need, e.g. a cluster
    row without CPU counters)."""
    done = float(row.get("completed", 0) or 0)
    cpu = row.get("cpu_s_total")
    row["cpu_ms_per_tx"] = (
        float(cpu) * 1000 / done if isinstance(cpu, (int, float)) and done else math.nan
    )
    n = int(row.get("n", 0) or 0)
    stored = [v for k, v in row.items() if k.startswith("storage_bytes.") and v not in ("", None)]
    total = sum(float(v) for v in stored) if stored and n else math.nan
    row["storage_kb_per_node"] = total / n / 1024
    row["storage_bytes_per_tx"] = total / n / done if done else math.nan
    busiest, end = _number(row.get("cpu_s_max_node")), _number(row.get("sim_end_s"))
    span = end - _number(row.get("first_submit_s", 0.0) or 0.0)
    row["cpu_busy_share"] = busiest / span if span > 0 else math.nan
    row.setdefault("source", "simulator")
    return row


def steady_throughput(record: metrics.RunRecord) -> float:
    """Completions per second over the middle half of the run: between the completion of the
    first and of the third quartile of the transactions (the ramp of closed-loop clients at the
    start and the drain at the end are left out); NaN with fewer than 8 completions."""
    times = sorted(record.completed[tx] for tx in record.submitted if tx in record.completed)
    if len(times) < 8:
        return math.nan
    a, b = len(times) // 4, (3 * len(times)) // 4
    span = times[b] - times[a]
    return (b - a) / (span / 1e6) if span > 0 else math.nan


def _run(params: Mapping[str, Any], seed: int, s: Settings, experiment: str) -> dict[str, Any]:
    row, record = ex.run_detailed(params, seed, s.cost_profile())
    row["experiment"] = experiment
    row["throughput_tps_steady"] = steady_throughput(record)
    row["first_submit_s"] = min(record.submitted.values(), default=0) / 1e6
    return derive(row)


def _sweep(
    kind: str,
    params_of: Callable[[str, int, Settings], dict[str, Any]],
    s: Settings,
    say: Callable[[str], None] | None,
) -> list[dict[str, Any]]:
    """One ``kind`` row per (protocol, n, seed), the parameters from ``params_of``."""
    rows = []
    for n in s.ns:
        for protocol in s.protocols:
            if say is not None:
                say(f"  {kind} {protocol} n={n}")
            for seed in s.seeds:
                rows.append(_run(params_of(protocol, n, s), seed, s, kind))
    return rows


def saturation(s: Settings, say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per (protocol, n, seed) at saturation."""
    return _sweep("saturation", saturation_params, s, say)


def latency(s: Settings, say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per (protocol, n, seed) under light load."""
    return _sweep("latency", latency_params, s, say)


def current_leader(sim: Any, protocol: str, n: int) -> int:
    """The replica whose crash stops service now: PBFT's primary, the leader of HotStuff's next
    view (the votes of the current view go to it), Raft's leader (or node 0 if none)."""
    live = [r for r in range(n) if sim.alive(r)]
    states = [sim.nodes[r].replica for r in live]
    if protocol == "pbft":
        return max(int(st.view) for st in states) % n
    if protocol == "hotstuff":
        return (max(int(st.pacemaker.view) for st in states) + 1) % n
    leaders = [r for r, st in zip(live, states, strict=True) if str(st.role) == "leader"]
    return leaders[0] if leaders else 0


def _gaps(times: Sequence[int], start: int) -> list[tuple[int, int]]:
    """(gap start, gap end) between consecutive completion times from ``start`` on."""
    out = []
    prev = start
    for t in times:
        if t < start:
            continue
        out.append((prev, t))
        prev = t
    return out


def leader_failure(s: Settings, say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per (protocol, n, seed): the cost of a leader crash (module docstring)."""
    rows = []
    for n in s.failure_ns:
        for protocol in s.protocols:
            if say is not None:
                say(f"  leader failure {protocol} n={n}")
            for seed in s.seeds:
                rows.append(failure_run(protocol, n, seed, s))
    return rows


def failure_run(protocol: str, n: int, seed: int, s: Settings) -> dict[str, Any]:
    """One leader-failure run (see :func:`leader_failure`)."""
    params = failure_params(protocol, n, s)
    sim, dep = ex.build_simulator(params, seed, s.cost_profile())
    first = min((sub.at_us for sub in dep.submissions), default=0)
    crash_at = first + s.crash_after_us
    seen: dict[str, Any] = {}

    def crash(sim_: Any) -> None:
        victim = current_leader(sim_, protocol, n)
        seen["victim"] = victim
        seen["msgs"] = dict(sim_.record.sent_msgs)
        sim_.crash(victim)

    sim.call_at(crash_at, crash)
    t0 = time.perf_counter()
    horizon = crash_at + s.failure_horizon_ms * 1000
    record = sim.run(min(horizon, int(params["duration_ms"]) * 1000), stop_when_complete=True)
    row = metrics.summarize(record, dep.checkers)
    row.update({k: v for k, v in params.items() if k not in row})
    row["wall_s"] = time.perf_counter() - t0
    row["seed"] = seed
    row["experiment"] = "failure"
    row["crashed_leader"] = seen.get("victim", -1)
    before = seen.get("msgs", {})
    kinds = RECOVERY_KINDS.get(protocol, ())
    after = {str(k): v - before.get(k, 0) for k, v in record.sent_msgs.items()}
    row["recovery_msgs"] = sum(after.get(k, 0) for k in kinds)
    row["msgs_after_crash"] = sum(after.values())
    times = sorted(record.completed[tx] for tx in record.submitted if tx in record.completed)
    gaps = _gaps(times, crash_at)
    interval = 1e6 / float(params["rate_tps"])
    stalls = [(a, b) for a, b in gaps if b - a > STALL_FACTOR * interval]
    resumed = bool(row["liveness"])
    row["resumed"] = 1.0 if resumed else 0.0
    if not resumed:
        # service had not resumed when the horizon ended: the last stall is still open (its
        # length, and the lost time, are lower bounds); there is no time to resume
        opened = times[-1] if times and times[-1] > crash_at else crash_at
        stalls.append((opened, record.end_us))
        gaps.append((opened, record.end_us))
    if resumed and gaps:
        ended = stalls[0] if stalls else gaps[0]
        row["resume_ms"] = (ended[1] - crash_at) / 1000
    else:
        row["resume_ms"] = math.nan
    row["outage_ms"] = max(b - a for a, b in gaps) / 1000 if gaps else math.nan
    row["stalls"] = len(stalls)
    row["stall_ms_total"] = sum(b - a for a, b in stalls) / 1000
    row["crash_at_ms"] = crash_at / 1000
    row["horizon_ms"] = s.failure_horizon_ms
    return derive(row)


# --- aggregation, crossovers, conclusions ---------------------------------------------------

METRICS: dict[str, tuple[str, str, bool]] = {
    "throughput_tps_steady": (
        "steady throughput at saturation",
        "transactions per second",
        True,
    ),
    "throughput_tps": ("throughput at saturation", "transactions per second", True),
    "latency_ms_p50": ("median latency under light load", "milliseconds", False),
    "msgs_per_tx": ("messages per transaction at saturation", "messages", False),
    "bytes_per_tx": ("bytes sent per transaction at saturation", "bytes", False),
    "cpu_ms_per_tx": ("CPU time per transaction at saturation", "CPU milliseconds", False),
    "storage_bytes_per_tx": ("storage per replica per transaction", "bytes", False),
    "storage_kb_per_node": ("storage per replica at saturation", "KiB", False),
    "resume_ms": ("time to resume service after a leader crash", "milliseconds", False),
    "stall_ms_total": ("time lost in stalls after a leader crash", "milliseconds", False),
    "recovery_msgs": ("messages spent replacing the crashed leader", "messages", False),
    "resumed": ("share of runs whose service resumed after a leader crash", "fraction", True),
}
"""Metric -> (what it is, unit, higher is better); the experiment each is read from is
:data:`SOURCE_EXPERIMENT`."""

SOURCE_EXPERIMENT: dict[str, str] = {
    "throughput_tps_steady": "saturation",
    "throughput_tps": "saturation",
    "latency_ms_p50": "latency",
    "msgs_per_tx": "saturation",
    "bytes_per_tx": "saturation",
    "cpu_ms_per_tx": "saturation",
    "storage_bytes_per_tx": "saturation",
    "storage_kb_per_node": "saturation",
    "resume_ms": "failure",
    "stall_ms_total": "failure",
    "recovery_msgs": "failure",
    "resumed": "failure",
}


def _number(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x


def aggregate(
    rows: Iterable[Mapping[str, Any]], columns: Iterable[str] = tuple(METRICS)
) -> list[dict[str, Any]]:
    """Mean, standard deviation, min and max over seeds of each column, per (source,
    experiment, protocol, n); ``<col>`` is the mean, ``<col>_std/_min/_max`` the spread,
    ``seeds`` how many runs, ``safe`` / ``live`` whether every run was."""
    cols = list(columns)
    groups: dict[tuple[str, str, str, int], list[Mapping[str, Any]]] = {}
    for r in rows:
        key = (
            str(r.get("source", "simulator")),
            str(r.get("experiment", "")),
            str(r.get("protocol", "")),
            int(r.get("n", 0)),
        )
        groups.setdefault(key, []).append(r)
    out = []
    for (source, experiment, protocol, n), members in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1], _order(kv[0][2]), kv[0][3])
    ):
        agg: dict[str, Any] = {
            "source": source,
            "experiment": experiment,
            "protocol": protocol,
            "n": n,
            "seeds": len(members),
            "safe": all(bool(m.get("safety")) for m in members),
            "live": all(bool(m.get("liveness")) for m in members),
        }
        for c in cols:
            values = [v for v in (_number(m.get(c)) for m in members) if not math.isnan(v)]
            if not values:
                continue
            agg[c] = statistics.fmean(values)
            agg[f"{c}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            agg[f"{c}_min"] = min(values)
            agg[f"{c}_max"] = max(values)
        out.append(agg)
    return out


def _order(protocol: str) -> int:
    return PROTOCOLS.index(protocol) if protocol in PROTOCOLS else len(PROTOCOLS)


def _series(
    summary: Sequence[Mapping[str, Any]], metric: str, protocol: str, source: str = "simulator"
) -> dict[int, Mapping[str, Any]]:
    experiment = SOURCE_EXPERIMENT.get(metric, "")
    return {
        int(r["n"]): r
        for r in summary
        if r["protocol"] == protocol
        and r["experiment"] == experiment
        and r.get("source", "simulator") == source
        and metric in r
    }


CROSSOVER_METRICS: tuple[str, ...] = (
    "throughput_tps_steady",
    "latency_ms_p50",
    "msgs_per_tx",
    "bytes_per_tx",
    "cpu_ms_per_tx",
    "storage_bytes_per_tx",
    "resume_ms",
    "stall_ms_total",
    "resumed",
    "recovery_msgs",
)
"""The metrics :func:`crossovers` looks at by default (the headline's)."""


def crossovers(
    summary: Sequence[Mapping[str, Any]],
    metrics_: Iterable[str] = CROSSOVER_METRICS,
    source: str = "simulator",
) -> list[dict[str, Any]]:
    """Where one protocol overtakes another: for each metric and pair, every pair of adjacent
    measured sizes between which the better of the two changes.

    ``n_cross`` interpolates the difference of the means linearly in log n; ``robust`` is true
    when at both sizes every seed's range keeps the two apart (min of one above max of the
    other), so the flip is not within the seed-to-seed spread.
    """
    out = []
    for metric in metrics_:
        if metric not in METRICS:
            continue
        _what, _unit, higher = METRICS[metric]
        for i, a in enumerate(PROTOCOLS):
            for b in PROTOCOLS[i + 1 :]:
                sa, sb = _series(summary, metric, a, source), _series(summary, metric, b, source)
                ns = sorted(set(sa) & set(sb))
                for lo, hi in itertools.pairwise(ns):
                    d_lo = sa[lo][metric] - sb[lo][metric]
                    d_hi = sa[hi][metric] - sb[hi][metric]
                    if d_lo == 0 or d_hi == 0 or (d_lo > 0) == (d_hi > 0):
                        continue
                    x_lo, x_hi = math.log(lo), math.log(hi)
                    x = x_lo + (x_hi - x_lo) * d_lo / (d_lo - d_hi)
                    better_hi = a if (d_hi > 0) == higher else b
                    better_lo = b if better_hi == a else a
                    out.append(
                        {
                            "metric": metric,
                            "overtakes": better_hi,
                            "overtaken": better_lo,
                            "n_below": lo,
                            "n_above": hi,
                            "n_cross": round(math.exp(x), 1),
                            "robust": _apart(sa[lo], sb[lo], metric)
                            and _apart(sa[hi], sb[hi], metric),
                        }
                    )
    return out


def _apart(x: Mapping[str, Any], y: Mapping[str, Any], metric: str) -> bool:
    lo_x, hi_x = x.get(f"{metric}_min", x[metric]), x.get(f"{metric}_max", x[metric])
    lo_y, hi_y = y.get(f"{metric}_min", y[metric]), y.get(f"{metric}_max", y[metric])
    return bool(lo_x > hi_y or lo_y > hi_x)


def throughput_metric(summary: Sequence[Mapping[str, Any]]) -> str:
    """``throughput_tps_steady`` where the rows have it (the simulator's), else
    ``throughput_tps`` (e.g. cluster rows with the plain summarize schema)."""
    if any("throughput_tps_steady" in r for r in summary):
        return "throughput_tps_steady"
    return "throughput_tps"


def headline(
    summary: Sequence[Mapping[str, Any]], source: str = "simulator"
) -> list[dict[str, Any]]:
    """One row per (n, protocol): the comparison's headline figures with their spread."""
    rows = []
    ns = sorted({int(r["n"]) for r in summary if r.get("source", "simulator") == source})
    for n in ns:
        for p in PROTOCOLS:
            row: dict[str, Any] = {"n": n, "protocol": LABELS.get(p, p)}
            present = False
            for metric in (
                throughput_metric(summary),
                "latency_ms_p50",
                "msgs_per_tx",
                "cpu_ms_per_tx",
                "storage_bytes_per_tx",
                "resume_ms",
                "resumed",
                "stall_ms_total",
                "recovery_msgs",
            ):
                s = _series(summary, metric, p, source).get(n)
                if s is None:
                    row[metric] = math.nan
                    continue
                present = True
                row[metric] = s[metric]
                row[f"{metric}_spread"] = f"{_fmt(s[f'{metric}_min'])}–{_fmt(s[f'{metric}_max'])}"
            seeds = [
                int(r["seeds"])
                for r in summary
                if r["protocol"] == p
                and int(r["n"]) == n
                and r.get("source", "simulator") == source
            ]
            row["seeds"] = min(seeds) if seeds else 0
            mine = [
                r
                for r in summary
                if r["protocol"] == p
                and int(r["n"]) == n
                and r.get("source", "simulator") == source
            ]
            row["all_safe"] = all(bool(r["safe"]) for r in mine)
            row["all_live"] = all(bool(r["live"]) for r in mine)
            if present:
                rows.append(row)
    return rows


def _ranking(summary: Sequence[Mapping[str, Any]], metric: str, n: int) -> list[tuple[str, float]]:
    _what, _unit, higher = METRICS[metric]
    got = [
        (p, float(s[metric]))
        for p in PROTOCOLS
        if (s := _series(summary, metric, p).get(n)) is not None
    ]
    return sorted(got, key=lambda kv: -kv[1] if higher else kv[1])


def conclusions(
    summary: Sequence[Mapping[str, Any]],
    crosses: Sequence[Mapping[str, Any]],
    consortia: Iterable[int] = CONSORTIA,
) -> list[str]:
    """Sentences computed from the measurements: for each consortium size that was measured,
    who is ahead on each metric and by how much; then the crossover points. Nothing is stated
    that the numbers do not show (an order within the seed spread is said to be within it)."""
    out: list[str] = []
    for n in consortia:
        parts = []
        tput = throughput_metric(summary)
        for metric in (tput, "latency_ms_p50", "cpu_ms_per_tx", "resume_ms"):
            ranking = _ranking(summary, metric, n)
            if len(ranking) < 2:
                continue
            what, unit, _higher = METRICS[metric]
            (best, v1), (second, v2) = ranking[0], ranking[1]
            s1 = _series(summary, metric, best)[n]
            s2 = _series(summary, metric, second)[n]
            ratio = max(v1, v2) / min(v1, v2) if min(v1, v2) > 0 else math.inf
            spread = "" if _apart(s1, s2, metric) else ", within the seed-to-seed spread"
            parts.append(
                f"{what}: {LABELS[best]} {_fmt(v1)} {unit} vs {LABELS[second]} {_fmt(v2)}"
                f" ({ratio:.2f}x{spread})"
                + (f", {LABELS[ranking[2][0]]} {_fmt(ranking[2][1])}" if len(ranking) > 2 else "")
            )
        for p in PROTOCOLS:
            f = _series(summary, "resumed", p).get(n)
            if f is not None and f["resumed"] < 1:
                lost = _series(summary, "recovery_msgs", p).get(n)
                msgs = f" ({_fmt(lost['recovery_msgs'])} recovery messages)" if lost else ""
                parts.append(
                    f"after a leader crash {LABELS[p]} did not resume service within the "
                    f"horizon in {round((1 - f['resumed']) * f['seeds'])} of {f['seeds']} "
                    f"runs{msgs}"
                )
        if parts:
            out.append(f"**{n} hospitals** — " + "; ".join(parts) + ".")
    for c in crosses:
        what = METRICS[c["metric"]][0]
        how = "every seed agrees on both sides" if c["robust"] else "within the seed spread"
        out.append(
            f"Crossover ({what}): {LABELS[c['overtakes']]} becomes better than "
            f"{LABELS[c['overtaken']]} between n = {c['n_below']} and n = {c['n_above']} "
            f"(interpolated n = {c['n_cross']:g}; {how})."
        )
    if not crosses:
        out.append("No crossover: on every metric the order of the protocols is the same at "
                   "every measured size.")  # fmt: skip
    return out


def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


# --- plots ------------------------------------------------------------------------------------


def plot_metric(
    summary: Sequence[Mapping[str, Any]],
    metric: str,
    path: Path,
    logy: bool = True,
    source: str = "simulator",
) -> None:
    """One line per protocol: the mean over seeds against n, the min-max band over seeds, and
    error bars of one standard deviation; axes and title in words and units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    what, unit, _higher = METRICS[metric]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    drawn = False
    for p in PROTOCOLS:
        series = _series(summary, metric, p, source)
        if not series:
            continue
        ns = sorted(series)
        mean = [series[n][metric] for n in ns]
        lo = [series[n][f"{metric}_min"] for n in ns]
        hi = [series[n][f"{metric}_max"] for n in ns]
        std = [series[n][f"{metric}_std"] for n in ns]
        line = ax.errorbar(ns, mean, yerr=std, marker="o", capsize=3, label=LABELS[p])
        ax.fill_between(ns, lo, hi, alpha=0.2, color=line[0].get_color())
        drawn = True
    if metric in ("resume_ms", "stall_ms_total"):
        # runs whose service never came back have no time to resume: say so on the figure
        lines = [
            f"{LABELS[p]}, n = {n}: {round((1 - row['resumed']) * row['seeds'])} of "
            f"{row['seeds']} runs not resumed by the horizon"
            for p in PROTOCOLS
            for n, row in sorted(_series(summary, "resumed", p, source).items())
            if row["resumed"] < 1
        ]
        if lines:
            ax.text(
                0.5, 0.97, "\n".join(lines), transform=ax.transAxes, ha="center", va="top",
                fontsize="x-small", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
            )  # fmt: skip
    ax.set_xscale("log")
    if logy and drawn:
        ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    all_ns = sorted({n for p in PROTOCOLS for n in _series(summary, metric, p, source)})
    ax.set_xticks(all_ns)
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain if logy else NullFormatter())
    ax.set_xlabel("consortium size n (replicas, log scale)")
    ax.set_ylabel(f"{what} ({SHORT_UNITS.get(unit, unit)})")
    ax.set_title(f"{what[0].upper()}{what[1:]} against consortium size")
    seeds = max((int(r["seeds"]) for r in summary), default=0)
    ax.text(
        0.01, 0.01, f"mean of {seeds} seeds; band: min-max; bars: ±1 s.d.",
        transform=ax.transAxes, fontsize="x-small", alpha=0.7,
    )  # fmt: skip
    if drawn:
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


SHORT_UNITS: dict[str, str] = {
    "transactions per second": "tx/s",
    "milliseconds": "ms",
    "CPU milliseconds": "CPU ms",
}
"""Units as an axis label writes them."""

PLOTS: tuple[tuple[str, bool], ...] = (
    ("throughput_tps_steady", True),
    ("latency_ms_p50", True),
    ("msgs_per_tx", True),
    ("cpu_ms_per_tx", True),
    ("resume_ms", False),
    ("storage_bytes_per_tx", False),
)


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Every row of one comparison and what is computed from them."""

    settings: Settings
    rows: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def summary(self) -> list[dict[str, Any]]:
        """:func:`aggregate` of the rows."""
        return aggregate(self.rows)

    def crossovers(self) -> list[dict[str, Any]]:
        """:func:`crossovers` of the summary."""
        return crossovers(self.summary)


def compare(s: Settings, say: Callable[[str], None] | None = None) -> Comparison:
    """Run the three experiments of the module docstring."""
    t0 = time.perf_counter()
    rows = saturation(s, say) + latency(s, say) + leader_failure(s, say)
    return Comparison(s, rows, time.perf_counter() - t0)


ROW_COLUMNS = (
    "source",
    "experiment",
    "protocol",
    "n",
    "seed",
    "clients",
    "requests",
    "completed",
    "throughput_tps",
    "latency_ms_p50",
    "latency_ms_p95",
    "msgs_per_tx",
    "bytes_per_tx",
    "cpu_ms_per_tx",
    "cpu_busy_share",
    "storage_kb_per_node",
    "storage_bytes_per_tx",
    "view_changes",
    "crashed_leader",
    "resume_ms",
    "outage_ms",
    "stalls",
    "stall_ms_total",
    "resumed",
    "recovery_msgs",
    "msgs_after_crash",
    "safety",
    "liveness",
    "trace_digest",
)
"""Columns of ``futures_runs.csv`` (a selection of the runner's row, in this order)."""


def section(rep: Report, cmp: Comparison, folder_note: str = "") -> None:
    """Add the comparison to a report: text, tables (CSV), plots and computed sentences."""
    s = cmp.settings
    summary = cmp.summary
    crosses = crossovers(summary)
    rep.text(
        "## Consensus futures: PBFT, chained HotStuff and Raft (the paper's future work)\n\n"
        "The same workload, cost profile and simulator for the three protocols "
        f"(docs/medical-chain.md §4), on the `{s.topology}` network drawn from each seed: "
        f"n = {', '.join(map(str, s.ns))}; seeds {', '.join(map(str, s.seeds))}; batches of up "
        f"to {s.batch} requests of {s.payload_bytes} bytes. Saturation: {s.clients} "
        f"closed-loop clients, {s.requests} requests ({s.large_requests} from n = "
        f"{s.large_n}). Latency: {s.latency_rate_tps:g} tx/s open loop. Leader failure "
        f"(n = {', '.join(map(str, s.failure_ns))}): {s.failure_rate_tps:g} tx/s open loop, the "
        f"leader crashes {s.crash_after_us / 1000:g} ms after the first request, every failure "
        f"detector at {s.failure_timeout_us / 1000:g} ms. HotStuff's QC is modeled as n - f "
        "verified signatures; Raft signs nothing but the clients' transactions. Figures are the "
        "mean over seeds, with min-max in the CSV and the plots." + folder_note
    )
    table = headline(summary)
    shown = [
        "n",
        "protocol",
        throughput_metric(summary),
        "latency_ms_p50",
        "msgs_per_tx",
        "cpu_ms_per_tx",
        "storage_bytes_per_tx",
        "resume_ms",
        "resumed",
        "stall_ms_total",
        "recovery_msgs",
        "all_safe",
        "all_live",
    ]
    rep.table("futures_headline", table, shown)
    rep.table("futures_summary", summary, show=False)
    rep.table(
        "futures_runs",
        [{c: r.get(c, "") for c in ROW_COLUMNS} for r in cmp.rows],
        list(ROW_COLUMNS),
        show=False,
    )
    rep.text("### Crossover points (computed from the means; robust = every seed agrees)")
    if crosses:
        rep.text(markdown_table(crosses))
    rep.table("futures_crossovers", crosses, show=False)
    rep.text("### What the measurements say")
    rep.text("\n".join(f"- {c}" for c in conclusions(summary, crosses, s.ns)))
    for metric, logy in PLOTS:
        if any(metric in r for r in summary):
            name = f"futures_{metric}"
            rep.image(name, f"{METRICS[metric][0]} against n", _plotter(summary, metric, logy))


def _plotter(summary: list[dict[str, Any]], metric: str, logy: bool) -> Callable[[Path], None]:
    def render(path: Path) -> None:
        plot_metric(summary, metric, path, logy)

    return render


def settings_dict(s: Settings) -> dict[str, Any]:
    """The settings as JSON-ready values (the cost profile is in the metadata already)."""
    return {f.name: getattr(s, f.name) for f in fields(s) if f.name != "profile"}


def write(cmp: Comparison, out: str | Path) -> Path:
    """The comparison as a report folder of its own; returns its ``README.md``."""
    rep = Report("medbench: PBFT, chained HotStuff and Raft compared (issue 16)")
    section(rep, cmp)
    rep.meta = {
        **ex.metadata(seeds=list(cmp.settings.seeds), profile=cmp.settings.cost_profile()),
        "settings": settings_dict(cmp.settings),
        "wall_s": cmp.wall_s,
    }
    return rep.write(out)


PRESETS: dict[str, Callable[[], Settings]] = {
    "full": Settings.full,
    "reproduce": Settings.reproduce,
    "quick": Settings.quick,
    "small": Settings.small,
}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m medbench.study.futures [--preset P] [--out DIR] [--seeds 1,2,3]``."""
    ap = argparse.ArgumentParser(prog="python -m medbench.study.futures", description=__doc__)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="full")
    ap.add_argument("--out", default="reports/futures")
    ap.add_argument("--seeds", default="", help="comma-separated seeds (default: the preset's)")
    ap.add_argument("--ns", default="", help="comma-separated sizes (default: the preset's)")
    args = ap.parse_args(argv)
    s = PRESETS[args.preset]()
    if args.seeds:
        s = replace(s, seeds=tuple(int(x) for x in args.seeds.split(",")))
    if args.ns:
        s = replace(s, ns=tuple(int(x) for x in args.ns.split(",")))
    cmp = compare(s, say=lambda m: print(m, flush=True))
    readme = write(cmp, args.out)
    print(f"wrote {readme} ({cmp.wall_s:.1f} s)")
    return 0


__all__ = [
    "CONSORTIA",
    "GRID_N",
    "LABELS",
    "METRICS",
    "PROTOCOLS",
    "Comparison",
    "Settings",
    "aggregate",
    "compare",
    "conclusions",
    "crossovers",
    "current_leader",
    "derive",
    "failure_params",
    "failure_run",
    "headline",
    "latency_params",
    "leader_failure",
    "plot_metric",
    "saturation",
    "saturation_params",
    "section",
    "write",
]

if __name__ == "__main__":
    raise SystemExit(main())
