"""``medbench validate``: the same workload on the real cluster and on the simulator, side by side.

Theory of operation
-------------------
The simulator is only as good as its model of the machine. :func:`validate` checks it against
this host:

1. **calibrate** (:func:`medbench.experiments.calibrate.calibrate`) with the runtime's transport
   (TLS 1.3 frames over loopback TCP) and a measured commit cost (``persist_ns``: an fsync'd
   SQLite commit where the nodes keep their data);
2. **the cluster** (:func:`medbench.runtime.bench.run_point`): the null service over TLS, ``n``
   node processes and one load-generator process on this machine, closed loop at 1 client (low
   load: p50 latency) and at ``clients`` (saturation: throughput);
3. **the simulator** (:func:`medbench.experiments.run`), the same protocol configuration (batch
   size, checkpoint interval and window, signatures on every message, empty operations, one
   request outstanding per client) with the calibrated profile, every node — replicas and
   clients — on **one host** whose cores are this machine's (``hosts=1``, ``cores``), sharing its
   disk, the network a loopback (``latency_us``);
4. each figure side by side with the ratio simulator / cluster, and whether it lies within the
   ``tolerance`` (25 %); then two diagnostics. *At the cluster's CPU share*: on a shared machine
   the cluster's processes get only part of the cores (their CPU seconds over the window), and a
   CPU-bound saturation throughput scales with it. *Unpriced CPU per message*: the cluster's CPU
   per request (nodes and load generator, measured) minus the simulator's, per message — what
   the profile's microbenchmarks do not see (the event loop, rounds, syscalls, the interpreter) —
   and the simulator rerun with it added to every message (a fit to the cluster, so no longer an
   independent prediction; what remains is scheduling on a busy host).

The run also prints how busy the host was (other users' work shows in every real measurement on
a shared machine) and the calibrated figures, so a difference can be traced to a cause: the
simulator charges the operations it counts (signatures, hashes, codec, frames, commits) and
nothing else — not the event loop, the interpreter's own overhead per message, or the operating
system's scheduling of n + 1 processes on few cores.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medbench.experiments.calibrate import calibrate, commit_costs
from medbench.experiments.runner import run
from medbench.sim.costs import CostProfile

CLUSTER_PROTOCOL = {
    "checkpoint_interval": 64,
    "log_window": 256,
    "max_batch_size": 64,
    "max_batch_delay_us": 1,
    "view_change_timeout_us": 1_000_000,
    "client_retransmit_us": 1_000_000,
}
"""The cluster's PBFT settings (what :mod:`medbench.runtime.cluster` generates)."""


@dataclass
class ValidateSpec:
    """What :func:`validate` runs."""

    nodes: list[int] = field(default_factory=lambda: [4, 7])
    clients: int = 64
    duration_s: float = 8.0
    warmup_s: float = 2.0
    latency_us: int = 50
    tick_us: int = 200
    cores: int = 0  # 0: this machine's
    tolerance: float = 0.25
    quick: bool = False
    storage: str | None = None


def sim_params(n: int, clients: int, spec: ValidateSpec) -> dict[str, Any]:
    """Simulator parameters of the cluster's workload at ``n`` members and ``clients``."""
    per_client = 100 if clients == 1 else 30
    return {
        "protocol": "pbft",
        "n": n,
        "clients": clients,
        "requests": clients * per_client,
        # a closed loop, like the cluster's load generator: one request in flight per client,
        # the next one sent when it completes; latency counted from when a request leaves
        "load": "closed",
        "outstanding": 1,
        "payload_bytes": 0,
        "batch": CLUSTER_PROTOCOL["max_batch_size"],
        "batch_delay_us": CLUSTER_PROTOCOL["max_batch_delay_us"],
        "checkpoint_interval": CLUSTER_PROTOCOL["checkpoint_interval"],
        "log_window": CLUSTER_PROTOCOL["log_window"],
        "view_change_timeout_us": CLUSTER_PROTOCOL["view_change_timeout_us"],
        "client_timeout_us": CLUSTER_PROTOCOL["client_retransmit_us"],
        "block_mode": "integrated",
        "crypto": "modeled",  # signatures counted and charged at the profile's Ed25519 costs
        "topology": "complete",
        "latency_us": spec.latency_us,
        "bandwidth_mbps": 10_000,
        "tick_us": spec.tick_us,
        "hosts": 1,
        "cores": spec.cores or os.cpu_count() or 1,
        "round_ticks": True,
        "client_processes": 1,  # one load-generator process, like the cluster's
        "duration_ms": 600_000,
    }


def _cluster_row(n: int, clients: int, spec: ValidateSpec, work: Path, k: int) -> dict[str, Any]:
    from medbench.runtime.bench import BenchSpec, run_point

    bench = BenchSpec(
        nodes=[n], clients=[clients], duration_s=spec.duration_s, warmup_s=spec.warmup_s,
        protocol=dict(CLUSTER_PROTOCOL),
    )  # fmt: skip
    point = {"n": n, "service": "null", "transport": "tls", "clients": clients, "rate": 0.0}
    row, _raw = run_point(bench, point, work, k)
    return row


def validate(
    spec: ValidateSpec, out: str | Path, work: str | Path | None = None
) -> list[dict[str, Any]]:
    """Run the comparison (see the module docstring); write ``validate.csv`` and ``.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = Path(work) if work else out / "clusters"
    run_dir = base / time.strftime("validate-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    profile = calibrate(
        quick=spec.quick, transport="tls", storage=spec.storage or run_dir, concurrent=4
    )
    profile.save(out / "profile.json")
    print(_profile_line(profile), flush=True)
    rows: list[dict[str, Any]] = []
    k = 0
    for n in spec.nodes:
        for clients, metric, column in (
            (1, "latency p50 (ms), 1 client", "latency_ms_p50"),
            (spec.clients, f"throughput (req/s), {spec.clients} clients", "throughput_tps"),
        ):
            # the disk's commit time drifts with the machine's other work: measured per point
            wall, cpu = commit_costs(spec.storage or run_dir, 40, concurrent=n)
            point_profile = replace(
                profile, persist_ns=round(wall, 1), persist_cpu_ns=round(cpu, 1)
            )
            cluster = _cluster_row(n, clients, spec, run_dir, k)
            k += 1
            sim = run(sim_params(n, clients, spec), seed=1, profile=point_profile)
            c, s = float(cluster[column]), float(sim[column])
            ratio = s / c if c else float("nan")
            cores = spec.cores or os.cpu_count() or 1
            got = _cluster_cpu_s(cluster) / max(float(cluster.get("window_s", 1.0)), 1e-9)
            share = min(got / cores, 1.0)
            row = {
                "n": n,
                "clients": clients,
                "metric": metric,
                "cluster": c,
                "simulator": s,
                "ratio": ratio,
                "within": abs(ratio - 1.0) <= spec.tolerance,
                "cluster_batch_mean": cluster.get("batch_mean"),
                "cluster_cpu_ms_per_tx": cluster.get("cpu_ms_per_tx"),
                "sim_cpu_ms_per_tx": 1000 * sim["cpu_s_total"] / max(sim["completed"], 1),
                "cluster_msgs_per_tx": cluster.get("msgs_per_tx"),
                "sim_msgs_per_tx": sim.get("msgs_per_tx"),
                "host_busy_pct_before": cluster.get("host_busy_pct_before"),
                "commit_ms": point_profile.persist_ns / 1e6,
                "cluster_cpu_share": share,
            }
            if clients > 1:
                # a CPU-bound run scales with the CPU it gets: on a shared machine the cluster's
                # processes obtained only ``share`` of the cores the simulator gave them
                row["simulator_at_cluster_cpu"] = s * share
                row["ratio_at_cluster_cpu"] = s * share / c if c else float("nan")
            # what the profile does not price: the cluster's CPU per request (nodes and load
            # generator) beyond the simulator's, per message; then the simulator with it
            done = max(float(cluster.get("completed", 0)), 1.0)
            cluster_cpu = 1000 * _cluster_cpu_s(cluster) / done
            msgs = float(cluster.get("msgs_per_tx") or 0.0) or float(sim.get("msgs_per_tx", 1))
            extra_us = max((cluster_cpu - row["sim_cpu_ms_per_tx"]) * 1000 / msgs, 0.0)
            fitted = replace(
                point_profile, message_base_ns=point_profile.message_base_ns + extra_us * 1000
            )
            row["unpriced_us_per_msg"] = extra_us
            if clients == 1:
                # low load: latency is the sum of per-message work along the critical path; at
                # saturation the unpriced CPU would be charged to the one load-generator process
                # as much as to the nodes, which it is not, so no fit there
                sim2 = run(sim_params(n, clients, spec), seed=1, profile=fitted)
                s2 = float(sim2[column])
                row["simulator_fitted"] = s2
                row["ratio_fitted"] = s2 / c if c else float("nan")
            rows.append(row)
            print(_row_line(row), flush=True)
    _write(rows, profile, spec, out)
    return rows


def _cluster_cpu_s(row: dict[str, Any]) -> float:
    """CPU seconds the cluster's processes (nodes and load generators) used in the window."""
    nodes = float(row.get("cpu_ms_per_tx", 0.0) or 0.0) * float(row.get("completed", 0)) / 1000
    return nodes + float(row.get("load_cpu_s", 0.0) or 0.0)


def _profile_line(p: CostProfile) -> str:
    return (
        f"calibrated: Ed25519 sign {p.sign_ns / 1000:.1f} us, verify {p.verify_ns / 1000:.1f} us; "
        f"TLS frame send {p.send_per_dst_ns / 1000:.1f} us, receive + dispatch "
        f"{p.message_base_ns / 1000:.1f} us; commit (fsync) {p.persist_ns / 1e6:.2f} ms of "
        f"which {p.persist_cpu_ns / 1000:.0f} us CPU"
    )


def _row_line(r: dict[str, Any]) -> str:
    return (
        f"n={r['n']} {r['metric']}: cluster {r['cluster']:.2f}, simulator {r['simulator']:.2f}, "
        f"ratio {r['ratio']:.2f} ({'within' if r['within'] else 'outside'} tolerance)"
    )


def _write(rows: list[dict[str, Any]], p: CostProfile, spec: ValidateSpec, out: Path) -> None:
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    with (out / "validate.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# medbench validate: the simulator against the real cluster",
        "",
        _profile_line(p) + ".",
        f"Simulator: one host of {spec.cores or os.cpu_count()} cores shared by every node, "
        f"loopback latency {spec.latency_us} us; null service over TLS, closed loop.",
        "",
        "| n | metric | cluster | simulator | sim / cluster | within "
        f"{spec.tolerance:.0%} | sim at the cluster's CPU share (ratio) | unpriced us/msg | "
        "sim + unpriced (ratio) | commit ms | CPU ms/tx cluster | CPU ms/tx sim | "
        "host busy before |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        at_share = (
            f"{r['simulator_at_cluster_cpu']:.0f} ({r['ratio_at_cluster_cpu']:.2f}, "
            f"share {r['cluster_cpu_share']:.0%})"
            if "simulator_at_cluster_cpu" in r
            else "-"
        )
        fitted = (
            f"{r['simulator_fitted']:.2f} ({r['ratio_fitted']:.2f})"
            if "simulator_fitted" in r
            else "-"
        )
        lines.append(
            f"| {r['n']} | {r['metric']} | {r['cluster']:.2f} | {r['simulator']:.2f} | "
            f"{r['ratio']:.2f} | {'yes' if r['within'] else 'no'} | {at_share} | "
            f"{r['unpriced_us_per_msg']:.0f} | {fitted} | "
            f"{r['commit_ms']:.2f} | {r['cluster_cpu_ms_per_tx']:.2f} | "
            f"{r['sim_cpu_ms_per_tx']:.2f} | {r['host_busy_pct_before']} % |"
        )
    (out / "validate.md").write_text("\n".join(lines) + "\n")
