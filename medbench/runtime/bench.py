"""``medbench cluster bench``: load sweeps on fresh consortia; rows in the simulator's schema.

Theory of operation
-------------------
Each point of the sweep (members ``n``, consensus protocol — PBFT, chained HotStuff or Raft,
:mod:`.protocols` —, service, transport, and one client count in closed loop
or one rate in open loop) gets a **fresh consortium** (:func:`.cluster.generate` + ``up``) and
``procs`` load-generator processes (:mod:`.loadgen`) started together: setup (connections,
Medical Chain grants and pre-built transactions), then ``warmup_s``, then the steady window of
``duration_s``, then a drain. The benchmark samples every node process (``psutil``: CPU time,
resident memory) and its ``/metrics`` (messages and bytes sent by kind, batches, view changes)
at the window's start and end; the load generators keep every request submitted in the window.

A row is :func:`medbench.metrics.summarize` of a :class:`~medbench.metrics.RunRecord` filled
from those facts — the simulator's columns (``throughput_tps``, ``latency_ms_p50/p95/p99``,
``msgs_per_tx.<kind>``, ``bytes_per_tx.<kind>``, ``cpu_s.process``, ``cpu_s_max_node``,
``view_changes``, ``safety``, ``liveness``, ...) mean the same here, measured on real processes
(``sim_end_s`` is the window's length) — plus the cluster's own: ``driver = "cluster"``,
``latency_ms_p999`` (HDR histogram), ``cpu_pct_node_max`` / ``cpu_pct_node_mean`` (per node
process over the window, 100 = one core), ``rss_mb_max``, ``load_cpu_s`` (the load generators),
``batch_mean`` (requests per executed batch), ``loadavg_1m`` and ``host_busy_pct_before`` (the
host's load and CPU use just before the point started, without the cluster: other users' work on
a shared machine shows here; ``quiet_wait_s`` waits for a quiet host first). **A request counts
as committed when its client holds f+1 matching replies** (Raft: the leader's reply). The
``safety`` column comes from an audit of the stopped nodes' stores (:mod:`.audit`,
:func:`.protocols.audit_stores`).

Outputs in ``out``: ``results.csv`` (+ ``results.json`` metadata), ``throughput_latency.png``
(throughput and p50 latency against clients, or against the offered rate), ``summary.md``, and
``profile-node1.txt`` when one backup ran under cProfile.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from medbench import metrics
from medbench.runtime import cluster
from medbench.runtime.audit import committed_digests
from medbench.runtime.loadgen import merged_histogram
from medbench.runtime.protocols import audit_stores

US = 1_000_000

REFERENCE = {
    # ops/s at 1 / 16 / 64 clients, n = 4 on loopback, measured earlier on this kind of 2-core
    # machine (issue 14): what the null service is compared with
    "BFT-SMaRt v2.0 (Java, no signatures)": (119, 590, 1300),
    "libhotstuff (C++)": (464, 4513, 6720),
}


@dataclass
class BenchSpec:
    """A sweep (see the module docstring)."""

    nodes: list[int] = field(default_factory=lambda: [4])
    clients: list[int] = field(default_factory=lambda: [1, 16, 64])
    services: list[str] = field(default_factory=lambda: ["null"])
    protocols: list[str] = field(default_factory=lambda: ["pbft"])
    transports: list[str] = field(default_factory=lambda: ["tls"])
    mode: str = "closed"
    rates: list[float] = field(default_factory=list)
    duration_s: float = 10.0
    warmup_s: float = 3.0
    procs: int = 1
    durability: str = "FULL"
    profile: bool = False
    protocol: dict[str, Any] = field(default_factory=dict)
    quiet_wait_s: float = 0.0  # wait up to this long before each point for an idle host


def host_busy_pct(seconds: float = 2.0) -> float:
    """How busy the whole host is (percent of all cores) over ``seconds``: other users' load."""
    return float(psutil.cpu_percent(interval=seconds))


def wait_quiet(limit_s: float, threshold_pct: float = 15.0) -> float:
    """Wait (up to ``limit_s``) until the host is below ``threshold_pct`` busy; return the last
    reading."""
    end = time.monotonic() + limit_s
    busy = host_busy_pct()
    while busy > threshold_pct and time.monotonic() < end:
        time.sleep(3.0)
        busy = host_busy_pct()
    return busy


def _points(spec: BenchSpec) -> list[dict[str, Any]]:
    pts = []
    loads = spec.clients if spec.mode == "closed" else spec.rates
    for protocol in spec.protocols:
        for service in spec.services:
            if protocol != "pbft" and service != "null":
                raise ValueError(f"the {service} service runs on PBFT only, not on {protocol}")
    for n in spec.nodes:
        for protocol in spec.protocols:
            for service in spec.services:
                for transport in spec.transports:
                    for load in loads:
                        clients = int(load) if spec.mode == "closed" else max(spec.clients)
                        rate = 0.0 if spec.mode == "closed" else float(load)
                        pts.append(
                            {"n": n, "protocol": protocol, "service": service,
                             "transport": transport, "clients": clients, "rate": rate}
                        )  # fmt: skip
    return pts


def _node_procs(lay: cluster.Layout, n: int) -> dict[int, psutil.Process]:
    out = {}
    for i in range(n):
        pid = cluster.node_pid(lay, i)
        if pid is not None:
            out[i] = psutil.Process(pid)
    return out


def _cpu(procs: dict[int, psutil.Process]) -> dict[int, float]:
    out = {}
    for i, p in procs.items():
        try:
            t = p.cpu_times()
            out[i] = t.user + t.system
        except psutil.Error:
            out[i] = float("nan")
    return out


def _rss(procs: dict[int, psutil.Process]) -> float:
    best = 0.0
    for p in procs.values():
        with contextlib.suppress(psutil.Error):
            best = max(best, p.memory_info().rss / 2**20)
    return best


def _metrics(lay: cluster.Layout, n: int) -> dict[int, dict[str, Any]]:
    out = {}
    for i in range(n):
        st = cluster.read_status(lay, i)
        if st is not None:
            out[i] = st
    return out


def _delta(a: dict[str, Any], b: dict[str, Any], key: str) -> dict[str, float]:
    x, y = a.get(key, {}), b.get(key, {})
    if not isinstance(x, dict) or not isinstance(y, dict):
        return {}
    return {k: y.get(k, 0.0) - x.get(k, 0.0) for k in set(x) | set(y)}


def run_point(
    spec: BenchSpec, point: dict[str, Any], work: Path, index: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One sweep point on a fresh consortium: its row and raw facts."""
    n, service, transport = point["n"], point["service"], point["transport"]
    clients, rate = point["clients"], point["rate"]
    protocol = point.get("protocol", "pbft")
    procs_n = max(1, min(spec.procs, clients))
    per_proc = math.ceil(clients / procs_n)
    d = work / f"p{index:03d}-n{n}-{protocol}-{service}-{transport}-c{clients}-r{int(rate)}"
    busy = wait_quiet(spec.quiet_wait_s) if spec.quiet_wait_s else host_busy_pct(1.0)
    loadavg = os.getloadavg()[0]
    cluster.generate(
        d, n, service=service, transport=transport, durability=spec.durability,
        client_groups=procs_n, clients_per_group=max(per_proc, 1), protocol=spec.protocol,
        consensus=protocol,
    )  # fmt: skip
    env = {1: {"MEDBENCH_PROFILE": str(d / "node-1.prof")}} if spec.profile else None
    lay, _ = cluster.up(d, n, timeout=60, env=env)
    loads: list[subprocess.Popen[bytes]] = []
    try:
        setup_s = 3.0 if service == "null" else 10.0
        start_at = time.time() + setup_s
        for k in range(procs_n):
            c = min(per_proc, clients - k * per_proc)
            if c <= 0:
                break
            out = d / f"load-{k}.json"
            cmd = [
                sys.executable, "-m", "medbench", "cluster", "load", "--dir", str(d),
                "--identity", str(k), "--clients", str(c), "--mode", spec.mode,
                "--rate", str(rate / procs_n), "--warmup", str(spec.warmup_s),
                "--duration", str(spec.duration_s), "--start-at", str(start_at),
                "--seed", str(k), "--out", str(out),
            ]  # fmt: skip
            log = (d / f"load-{k}.log").open("ab")
            loads.append(
                subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=cluster._env())
            )
            log.close()
        procs = _node_procs(lay, n)
        load_procs = {k: psutil.Process(p.pid) for k, p in enumerate(loads)}
        time.sleep(max(start_at + spec.warmup_s - time.time(), 0.0))
        cpu0, lcpu0, m0, t0 = _cpu(procs), _cpu(load_procs), _metrics(lay, n), time.monotonic()
        rss = 0.0
        end = start_at + spec.warmup_s + spec.duration_s
        while time.time() < end:
            rss = max(rss, _rss(procs))
            time.sleep(min(0.5, max(end - time.time(), 0.0)))
        cpu1, lcpu1, m1, t1 = _cpu(procs), _cpu(load_procs), _metrics(lay, n), time.monotonic()
        for p in loads:
            try:
                p.wait(spec.duration_s + 120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
    finally:
        for p in loads:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        cluster.down(d)
    results = [json.loads(f.read_text()) for f in sorted(d.glob("load-*.json"))]
    stores = {i: lay.node_dir(i) / "data" / "node.sqlite" for i in range(n)}
    report = audit_stores(protocol, stores, committed_digests(results))
    window = t1 - t0
    record = metrics.RunRecord(n_nodes=n, replicas=tuple(range(n)))
    record.end_us = int(spec.duration_s * US)
    for k, r in enumerate(results):
        for c, ts, sub, done in r["window"]:
            record.submitted[(k, c, ts)] = sub
            record.completed[(k, c, ts)] = done
        for j in range(max(r.get("window_submitted", 0) - len(r["window"]), 0)):
            record.submitted[(k, "unfinished", j)] = r["window_start_us"]
    for i in range(n):
        a, b = m0.get(i, {}), m1.get(i, {})
        for kind, v in _delta(a, b, "messages_sent_total").items():
            record.sent_msgs[kind] = record.sent_msgs.get(kind, 0) + int(v)
        for kind, v in _delta(a, b, "bytes_sent_total").items():
            record.sent_bytes[kind] = record.sent_bytes.get(kind, 0) + int(v)
        if i in cpu0 and i in cpu1:
            record.cpu_ns[i] = {"process": int((cpu1[i] - cpu0[i]) * 1e9)}
        record.commits[i] = [(s, dgst, 0) for s, dgst in sorted(report.nodes[i].executed.items())]
    row = metrics.summarize(record)
    hist = merged_histogram(results)
    batches = sum(m1.get(i, {}).get("committed_batches_total", 0) - m0.get(i, {}).get(
        "committed_batches_total", 0) for i in range(n))  # fmt: skip
    reqs = sum(m1.get(i, {}).get("committed_requests_total", 0) - m0.get(i, {}).get(
        "committed_requests_total", 0) for i in range(n))  # fmt: skip
    vcs = max((m1.get(i, {}).get("view_changes_total", 0) for i in range(n)), default=0)
    cpu_pct = [100 * (cpu1[i] - cpu0[i]) / window for i in cpu0 if i in cpu1]
    row.update(
        {
            "driver": "cluster",
            "protocol": protocol,
            "service": service,
            "transport": transport,
            "n": n,
            "f": (n - 1) // (2 if protocol == "raft" else 3),
            "clients": clients,
            "mode": spec.mode,
            "rate": rate,
            "durability": spec.durability,
            "procs": procs_n,
            "window_s": round(window, 3),
            "view_changes": int(vcs),
            "safety": report.ok,
            "safety_reason": "; ".join(report.problems[:3]),
            "latency_ms_p50_hdr": hist.get_value_at_percentile(50) / 1000,
            "latency_ms_p99_hdr": hist.get_value_at_percentile(99) / 1000,
            "latency_ms_p999": hist.get_value_at_percentile(99.9) / 1000,
            "cpu_pct_node_max": max(cpu_pct, default=float("nan")),
            "cpu_pct_node_mean": sum(cpu_pct) / len(cpu_pct) if cpu_pct else float("nan"),
            "cpu_ms_per_tx": (
                1000 * sum(cpu1[i] - cpu0[i] for i in cpu0 if i in cpu1) / row["completed"]
                if row["completed"]
                else float("nan")
            ),
            "rss_mb_max": round(rss, 1),
            "load_cpu_s": sum(lcpu1.get(k, 0) - lcpu0.get(k, 0) for k in lcpu0),
            "batch_mean": reqs / batches if batches else float("nan"),
            "refused": sum(r.get("refused", 0) for r in results),
            "outstanding_end": sum(r.get("outstanding_end", 0) for r in results),
            "loadavg_1m": round(loadavg, 2),
            "host_busy_pct_before": round(busy, 1),
        }
    )
    raw = {"point": point, "dir": str(d), "results": len(results)}
    if spec.profile and (d / "node-1.prof").exists():
        raw["profile"] = str(d / "node-1.prof")
    return row, raw


FIRST = [
    "driver", "protocol", "service", "transport", "n", "f", "clients", "mode", "rate",
    "durability", "throughput_tps", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99",
    "latency_ms_p999", "cpu_pct_node_max", "cpu_pct_node_mean", "cpu_ms_per_tx", "batch_mean",
    "rss_mb_max", "view_changes", "safety", "liveness", "loadavg_1m",
]  # fmt: skip


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    """CSV with the cluster's leading columns first, then the rest sorted."""
    keys = [k for k in FIRST if any(k in r for r in rows)]
    rest = sorted({k for r in rows for k in r} - set(keys))
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys + rest)
        w.writeheader()
        w.writerows(rows)


def plot(rows: list[dict[str, Any]], path: Path, mode: str) -> None:
    """Throughput and p50 latency against clients (closed loop) or offered rate (open loop)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xkey = "clients" if mode == "closed" else "rate"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        key = (r.get("protocol", "pbft"), r["service"], r["transport"], r["n"])
        series.setdefault(key, []).append(r)
    for (protocol, service, transport, n), rs in sorted(series.items()):
        rs = sorted(rs, key=lambda r: r[xkey])
        label = f"{protocol}, {service}, {transport}, n={n}"
        xs = [r[xkey] for r in rs]
        ax1.plot(xs, [r["throughput_tps"] for r in rs], marker="o", label=label)
        ax2.plot(xs, [r["latency_ms_p50"] for r in rs], marker="o", label=label)
    for ax in (ax1, ax2):
        ax.set_xlabel("closed-loop clients (outstanding requests)" if mode == "closed"
                      else "offered load (requests/s)")  # fmt: skip
        if mode == "closed":
            ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
    ax1.set_ylabel("committed requests/s (f+1 matching replies; Raft: the leader's)")
    ax2.set_ylabel("latency p50 (ms)")
    ax1.legend(fontsize=8)
    names = sorted({str(r.get("protocol", "pbft")) for r in rows})
    fig.suptitle(f"medbench cluster: {', '.join(names)} on real processes (loopback)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(rows: list[dict[str, Any]], spec: BenchSpec) -> str:
    """The Markdown summary."""
    lines = [
        "# medbench cluster bench",
        "",
        f"Host: {platform.node()} ({os.cpu_count()} cores), Python {platform.python_version()}; "
        f"durability {spec.durability}; steady window {spec.duration_s:.0f} s after "
        f"{spec.warmup_s:.0f} s warm-up; a request counts as committed when its client holds "
        "f+1 matching replies (Raft: the leader's reply).",
        "",
        "| n | protocol | service | transport | clients | rate | tx/s | p50 ms | p99 ms | "
        "p99.9 ms | batch | CPU % max node | CPU ms/tx | RSS MB | safety | host busy before |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r.get('protocol', 'pbft')} | {r['service']} | {r['transport']} | "
            f"{r['clients']} | "
            f"{r['rate'] or '-'} | {r['throughput_tps']:.0f} | {r['latency_ms_p50']:.2f} | "
            f"{r['latency_ms_p99']:.2f} | {r['latency_ms_p999']:.2f} | {r['batch_mean']:.1f} | "
            f"{r['cpu_pct_node_max']:.0f} | {r['cpu_ms_per_tx']:.2f} | {r['rss_mb_max']:.0f} | "
            f"{'ok' if r['safety'] else 'FAILED'} | {r['host_busy_pct_before']:.0f} % |"
        )
    lines += ["", "Reference figures (n = 4, loopback, 1 / 16 / 64 clients, ops/s):", ""]
    for name, figs in REFERENCE.items():
        lines.append(f"- {name}: {' / '.join(str(x) for x in figs)}")
    return "\n".join(lines) + "\n"


def run_bench(spec: BenchSpec, out: str | Path, work: str | Path | None = None) -> list[Any]:
    """Run the sweep; write CSV, metadata, plot and summary into ``out``; return the rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = Path(work) if work else out / "clusters"
    run_dir = base / time.strftime("bench-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    raws = []
    for k, point in enumerate(_points(spec)):
        print(f"point {k}: {point} ...", flush=True)
        row, raw = run_point(spec, point, run_dir, k)
        rows.append(row)
        raws.append(raw)
        print(
            f"  {row['throughput_tps']:.0f} req/s, p50 {row['latency_ms_p50']:.2f} ms, "
            f"p99 {row['latency_ms_p99']:.2f} ms, batch {row['batch_mean']:.1f}, "
            f"CPU max node {row['cpu_pct_node_max']:.0f} %, safety {row['safety']}",
            flush=True,
        )
        write_rows(rows, out / "results.csv")
    meta = {
        "spec": asdict(spec),
        "host": platform.node(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "points": raws,
    }
    (out / "results.json").write_text(json.dumps(meta, indent=2, default=str))
    if rows:
        plot(rows, out / "throughput_latency.png", spec.mode)
        (out / "summary.md").write_text(summary(rows, spec))
    for raw in raws:
        if "profile" in raw:
            import pstats

            with (out / "profile-node1.txt").open("a") as f:
                f.write(f"== {raw['point']}\n")
                pstats.Stats(raw["profile"], stream=f).sort_stats("tottime").print_stats(30)
    return rows
