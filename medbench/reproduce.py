"""``medbench reproduce``: Table 1, the PBFT scaling sweep and a fault-tolerance comparison.

Theory of operation
-------------------
:func:`reproduce` measures, in the deterministic simulator and from one seed:

1. **Table 1** (:mod:`medbench.table1`): every system at its minimal and a common configuration,
   the measured table beside the paper's with match marks and reasons, and every search trial.
2. **Scaling**: every registered system at ``n`` in :data:`SCALING_N` (4, 7, 10, 16) with the same
   workload: throughput, median latency, CPU and hashes per transaction, storage per node. The
   PBFT rows are the paper's scaling sweep (Medical Chain with f = 1, 2, 3, 5), also run under
   saturating load (:func:`pbft_saturation`).
3. **Faults**: each system at the common size with ``k`` nodes crashed from the start, up to the
   first ``k`` that loses liveness; then the Byzantine behaviours each protocol has:
   PBFT's equivocating and silent primaries at n = 3 (f = 0) and n = 4 (f = 1), and ModelChain
   sites publishing poisoned model updates.

The report folder (default ``reports/latest``) gets ``README.md`` (the tables), one CSV per table,
``nodes.csv`` (per node of the Table 1 common and scaling runs: CPU seconds and counts by operation,
storage bytes by category), PNG plots and ``metadata.json`` (versions, backend, cost profile, seed,
settings, wall time).
Everything except ``metadata.json``'s host fields and wall times is a function of the seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from medbench import experiments as ex
from medbench import report, table1
from medbench.report import Plot, Report

SCALING_N = (4, 7, 10, 16)
"""Node counts of the scaling sweep (PBFT: f = 1, 2, 3, 5)."""

DEFAULT_OUT = Path("reports") / "latest"


@dataclass(frozen=True, slots=True)
class Options:
    """What :func:`reproduce` runs."""

    seed: int = 1
    quick: bool = False
    scaling_n: tuple[int, ...] = SCALING_N

    def settings(self) -> table1.Settings:
        """The Table 1 settings of this mode."""
        return table1.Settings.quick(self.seed) if self.quick else table1.Settings(seed=self.seed)


def scaling(
    systems: Sequence[table1.System],
    ns: Sequence[int],
    s: table1.Settings,
    nodes: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per (system, n): throughput, latency, compute and storage at the common options.

    ``nodes``, if given, receives every run's per-node rows (:func:`node_rows`).
    """
    rows = []
    for system in systems:
        for n in ns:
            t = table1.measure(system, n, system.options_for(n), s)
            if nodes is not None:
                nodes.extend(node_rows(t, "scaling"))
            r = t.row
            rows.append(
                {
                    "system": system.name,
                    "protocol": system.protocol,
                    "n": n,
                    "started": t.started,
                    "live": t.live,
                    "completed": r.get("completed", 0),
                    "throughput_tps": float(r.get("throughput_tps", 0.0)),
                    "latency_ms_p50": float(r.get("latency_ms_p50", float("nan"))),
                    "latency_ms_p95": float(r.get("latency_ms_p95", float("nan"))),
                    "msgs_per_tx": float(r.get("msgs_per_tx", 0.0)),
                    "cpu_ms_per_tx": float(r.get("cpu_ms_per_tx", 0.0)),
                    "hashes_per_tx": float(r.get("hashes_per_tx", 0.0)),
                    "storage_kb_per_node": float(r.get("storage_kb_per_node", 0.0)),
                    "safety": r.get("safety", ""),
                }
            )
    return rows


def node_rows(trial: table1.Trial, run: str) -> list[dict[str, Any]]:
    """A trial's per-node CPU and storage rows, labelled with the run, system and size."""
    key = {"run": run, "system": trial.system, "n": trial.n, "crashed": trial.crashed}
    return [{**key, **r} for r in trial.nodes]


def pbft_saturation(
    ns: Sequence[int], s: table1.Settings, clients: int = 16
) -> list[dict[str, Any]]:
    """PBFT at ``n`` in ``ns`` under saturating load: ``clients`` closed loops, all at time 0."""
    rows = []
    for n in ns:
        params = {
            "protocol": "pbft",
            "n": n,
            "requests": s.txs,
            "clients": clients,
            "interval_us": 0,
            "payload_bytes": s.tx_bytes,
        }
        r = ex.run(params, s.seed)
        rows.append(
            {
                "n": n,
                "f": (n - 1) // 3,
                "clients": clients,
                "completed": r["completed"],
                "throughput_tps": float(r["throughput_tps"]),
                "latency_ms_p50": float(r["latency_ms_p50"]),
                "latency_ms_p95": float(r["latency_ms_p95"]),
                "msgs_per_tx": float(r["msgs_per_tx"]),
                "bytes_per_tx": float(r["bytes_per_tx"]),
                "cpu_s_max_node": float(r["cpu_s_max_node"]),
                "safety": r["safety"],
                "liveness": r["liveness"],
            }
        )
    return rows


BYZANTINE: tuple[tuple[str, int, dict[str, Any], str], ...] = (
    ("pbft", 3, {"byzantine": "equivocating-primary"}, "equivocating primary, n=3 (f=0)"),
    ("pbft", 4, {"byzantine": "equivocating-primary"}, "equivocating primary, n=4 (f=1)"),
    ("pbft", 4, {"byzantine": "silent-primary"}, "silent primary, n=4 (f=1)"),
    ("poi", 4, {"poison": (3,)}, "1 of 4 sites publishes poisoned updates"),
)
"""Byzantine runs: (protocol, n, options, description)."""


def faults(
    systems: Sequence[table1.System], n: int, s: table1.Settings
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Crash runs per system at ``n`` (until liveness is lost) and the Byzantine runs."""
    crash_rows = []
    for system in systems:
        k, trials = table1.faults_tolerated(system, n, system.options_for(n), s)
        for t in trials:
            crash_rows.append(
                {
                    "system": system.name,
                    "n": n,
                    "crashed": t.crashed,
                    "live": t.live,
                    "safety": t.row.get("safety", ""),
                    "completed": t.row.get("completed", 0),
                    "latency_ms_p50": float(t.row.get("latency_ms_p50", float("nan"))),
                    "tolerated": k,
                }
            )
    byz_rows = []
    by_protocol = {sy.protocol: sy for sy in systems}
    for protocol, size, opts, what in BYZANTINE:
        target = by_protocol.get(protocol)
        if target is None:
            continue
        t = table1.measure(target, size, {**target.options_for(size), **opts}, s)
        r = t.row
        byz_rows.append(
            {
                "system": target.name,
                "behaviour": what,
                "n": size,
                "live": t.live,
                "safety": r.get("safety", ""),
                "safety_reason": str(r.get("safety_reason", ""))[:48],
                "completed": r.get("completed", 0),
                "view_changes": r.get("view_changes", 0),
                "rejections": sum(v for k_, v in r.items() if k_ == "notes.rejected"),
                "latency_ms_p50": float(r.get("latency_ms_p50", float("nan"))),
            }
        )
    return crash_rows, byz_rows


def reproduce(
    out: str | Path = DEFAULT_OUT,
    options: Options | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Run everything (see the module docstring) and write the report; returns ``README.md``."""
    o = options if options is not None else Options()
    s = o.settings()
    say = progress if progress is not None else (lambda _msg: None)
    t0 = time.perf_counter()
    systems = table1.available()
    say("Table 1")
    rows = table1.measure_table(s, systems, progress=lambda name: say(f"  {name}"))
    cmp = table1.compare(rows)
    t_table = time.perf_counter() - t0
    say("scaling")
    nodes = [r for row in rows for r in node_rows(row.common, "table1 common")]
    scale = scaling(
        systems, o.scaling_n, replace(s, duration_ms=min(s.duration_ms, 600_000)), nodes
    )
    t_scale = time.perf_counter() - t0 - t_table
    say("faults")
    crash_rows, byz_rows = faults(systems, s.common_n, s)
    wall = time.perf_counter() - t0

    rep = Report("medbench reproduce: Medical Chain Table 1 and consensus comparison")
    missing = [sy.name for sy in table1.SYSTEMS if sy not in systems]
    rep.text(
        f"Mode: {'quick' if o.quick else 'full'}; seed {o.seed}; workload {s.txs} transactions "
        f"of {s.tx_bytes} bytes at {s.rate_tps:g} tx/s; common configuration n = {s.common_n}."
        + (
            f" Not registered in the simulator (rows missing): {', '.join(missing)}."
            if missing
            else ""
        )
    )
    rep.text("## Table 1 (measured; ✓/✗ = matches the paper's cell)")
    rep.text(table1.markdown(rows, cmp))
    rep.table("table1", table1.table_rows(rows, cmp), show=False)
    rep.text("### Searches behind 'nodes needed' and 'faults tolerated'")
    rep.table("table1_trials", table1.trial_rows(rows), show=False)
    rep.text(report.markdown_table(table1.trial_summary(rows)))
    pbft_rows = [r for r in scale if r["protocol"] == "pbft"]
    rep.text("## PBFT scaling (Medical Chain, n = " + ", ".join(map(str, o.scaling_n)) + ")")
    if pbft_rows:
        rep.text(f"Offered load {s.rate_tps:g} tx/s (the common workload):")
        rep.table("pbft_scaling", pbft_rows)
        sat = pbft_saturation(o.scaling_n, s)
        rep.text("Saturating load (16 closed-loop clients, every request at time 0):")
        rep.table("pbft_saturation", sat)
        sat_plot = [{**r, "series": "PBFT"} for r in sat]
        title = "PBFT saturation throughput against n"
        rep.plot(Plot("pbft_saturation", sat_plot, "n", "throughput_tps", "series", title))
    else:
        rep.text("PBFT is not registered in the simulator: no scaling rows.")
    rep.text("## Every system against node count")
    rep.table("scaling", scale)
    for y, logy in (
        ("throughput_tps", True),
        ("latency_ms_p50", True),
        ("cpu_ms_per_tx", True),
        ("storage_kb_per_node", False),
    ):
        rep.plot(Plot(f"scaling_{y}", scale, "n", y, "system", f"{y} against n", logy))
    rep.text(f"## Fault tolerance (crash k nodes at time 0, n = {s.common_n})")
    rep.table("faults_crash", crash_rows)
    rep.plot(Plot("faults_crash", crash_rows, "crashed", "completed", "system",
                  "completed transactions with k nodes crashed"))  # fmt: skip
    rep.text("## Byzantine behaviour")
    rep.table("faults_byzantine", byz_rows)
    rep.text(
        "Per-node CPU seconds by operation and storage bytes by category of every Table 1 "
        "common-configuration and scaling run: [nodes.csv](nodes.csv)."
    )
    rep.table("nodes", nodes, show=False)
    rep.meta = {
        **ex.metadata(seeds=[o.seed]),
        "options": asdict(o),
        "settings": asdict(s),
        "systems": [sy.name for sy in systems],
        "large_hashes_per_tx": table1.LARGE_HASHES_PER_TX,
        "wall_s": {"table1": t_table, "scaling": t_scale, "total": wall},
    }
    return rep.write(out)


__all__ = [
    "BYZANTINE",
    "DEFAULT_OUT",
    "SCALING_N",
    "Options",
    "faults",
    "node_rows",
    "reproduce",
    "scaling",
]
