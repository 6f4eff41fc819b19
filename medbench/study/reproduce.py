"""``medbench reproduce``: Table 1, the PBFT scaling sweep and a fault-tolerance comparison.

Theory of operation
-------------------
:func:`reproduce` measures, in the deterministic simulator and from one seed:

1. **Table 1** (:mod:`medbench.study.table1`): every system at its minimal and a common
   configuration, the measured table beside the paper's with match marks and reasons, and every
   search trial.
2. **Scaling**: every registered system (Table 1's variant rows included) at ``n`` in
   :data:`SCALING_N` (4, 7, 10, 16) with the same workload: throughput, median latency, CPU and
   hashes per transaction, storage per node. The PBFT rows are the paper's scaling sweep
   (Medical Chain with f = 1, 2, 3, 5), also run under saturating load (:func:`pbft_saturation`).
3. **Faults**: each system at the common size with ``k`` nodes crashed from the start, up to the
   first ``k`` that loses liveness; then the Byzantine behaviours each protocol has:
   PBFT's equivocating and silent primaries at n = 3 (f = 0) and n = 4 (f = 1), ModelChain
   sites publishing poisoned model updates, and the attacks of :func:`attacks`: PoW's 51%
   attack (a private miner with a majority and with a minority of the hash power) and the
   central relay's Byzantine centre rewriting history.
4. **Consensus futures** (:mod:`medbench.study.futures`): PBFT, chained HotStuff and Raft at the
   consortium sizes of the paper's question (n = 4, 16, 64, 100; two seeds; ``--quick``: 4 and
   16) — throughput at saturation, latency, messages, CPU and storage per transaction, the cost
   of a leader crash, and the crossover points, with plots and sentences computed from the data.

The report folder (default ``reports/latest``) gets ``README.md`` (the tables), one CSV per table
(``table1_cpu.csv``: CPU per committed transaction by operation at the common configuration),
``nodes.csv`` (per node of the Table 1 common and scaling runs: CPU seconds and counts by operation,
storage bytes by category), ``futures_*.csv`` (the consensus comparison's runs, summary over seeds,
headline and crossovers), PNG plots and ``metadata.json`` (versions, backend, cost profile, seed,
settings, wall time).
Everything except ``metadata.json``'s host fields and wall times is a function of the seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from medbench import experiments as ex
from medbench import metrics
from medbench.consensus.baselines.central import Rewrite
from medbench.sim.costs import CostProfile
from medbench.sim.engine import Simulator
from medbench.study import futures, report, table1
from medbench.study.report import Plot, Report

SCALING_N = (4, 7, 10, 16)
"""Node counts of the scaling sweep (PBFT: f = 1, 2, 3, 5)."""

DEFAULT_OUT = Path("reports") / "latest"


@dataclass(frozen=True, slots=True)
class Options:
    """What :func:`reproduce` runs."""

    seed: int = 1
    quick: bool = False
    scaling_n: tuple[int, ...] = SCALING_N
    profile: CostProfile | None = None  # None: CostProfile.default()

    def settings(self) -> table1.Settings:
        """The Table 1 settings of this mode."""
        if self.quick:
            return table1.Settings.quick(self.seed, self.profile)
        return table1.Settings(seed=self.seed, profile=self.profile)


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
    """PBFT at ``n`` in ``ns`` under saturating load: ``clients`` closed loops, all at time 0.

    Both block modes: the paper's blocker (:data:`medbench.study.table1.MEDICAL_CHAIN`; the run goes
    on until every transaction is in a block, so messages per transaction include the BLOCK
    rounds) and integrated blocks.
    """
    rows = []
    for mode in ("blocker", "integrated"):
        for n in ns:
            rows.append(_saturation_row(n, mode, s, clients))
    return rows


def _saturation_row(n: int, mode: str, s: table1.Settings, clients: int) -> dict[str, Any]:
    params = {
        "protocol": "pbft",
        "n": n,
        "requests": s.txs,
        "clients": clients,
        "interval_us": 0,
        "payload_bytes": s.tx_bytes,
        **table1.MEDICAL_CHAIN,
        "block_mode": mode,
    }
    sim, dep = ex.build_simulator(params, s.seed, s.cost_profile())
    record = sim.run(int(s.duration_ms) * 1000, stop_when_complete=True)
    left, waited = table1.wait_for_blocks(sim, range(n))
    if waited:
        record = sim.snapshot()
    r = metrics.summarize(record, dep.checkers)
    return {
        "block_mode": mode,
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
        "unblocked_left": left,
        "safety": r["safety"],
        "liveness": r["liveness"],
    }


BYZANTINE: tuple[tuple[str, int, dict[str, Any], str], ...] = (
    (
        "pbft",
        3,
        {"byzantine": "split-brain", "byzantine_count": 1},
        "primary equivocating in every phase, n=3 (f=0)",
    ),
    (
        "pbft",
        4,
        {"byzantine": "split-brain", "byzantine_count": 1},
        "primary equivocating in every phase, n=4 (f=1)",
    ),
    ("pbft", 4, {"byzantine": "equivocating-primary"}, "equivocating primary, n=4 (f=1)"),
    ("pbft", 4, {"byzantine": "silent-primary"}, "silent primary, n=4 (f=1)"),
    ("poi", 4, {"poison": (3,)}, "1 of 4 sites publishes poisoned updates"),
)
"""Byzantine runs: (protocol, n, options, description)."""


ATTACK_SHARES: tuple[float, ...] = (0.6, 0.3)
"""Hash-power shares of the PoW attacker in :func:`attacks` (a majority, then a minority)."""


def run_for(
    params: Mapping[str, Any],
    seed: int,
    duration_us: int,
    profile: CostProfile | None = None,
    before: Callable[[Simulator], None] | None = None,
) -> dict[str, Any]:
    """One run for a fixed virtual time (an attack plays out after the workload completed).

    ``before(simulator)`` may schedule extra inputs (a Byzantine centre's rewrite) first.
    """
    sim, dep = ex.build_simulator(params, seed, profile)
    if before is not None:
        before(sim)
    record = sim.run(duration_us)
    return metrics.summarize(record, dep.checkers)


def _attack_row(system: str, what: str, n: int, r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "system": system,
        "behaviour": what,
        "n": n,
        "live": bool(r.get("liveness")) and r.get("completed", 0) > 0,
        "safety": r.get("safety", ""),
        "safety_reason": str(r.get("safety_reason", ""))[:48],
        "completed": r.get("completed", 0),
        "view_changes": r.get("view_changes", 0),
        # PBFT notes a refused message as "reject", the baselines as "rejected".
        "rejections": int(r.get("notes.rejected", 0)) + int(r.get("notes.reject", 0)),
        "commits_undone": int(r.get("notes.commit_reverted", 0))
        + int(r.get("notes.history_replaced", 0)),
        "latency_ms_p50": float(r.get("latency_ms_p50", float("nan"))),
    }


def attacks(systems: Sequence[table1.System], s: table1.Settings) -> list[dict[str, Any]]:
    """The attacks a hash-linked chain without votes cannot stop (docs/medical-chain.md §1.8, §2).

    * PoW (MedRec) with 4 miners, one of them a private miner (the 51% attack) holding each share
      of :data:`ATTACK_SHARES` of the hash power; blocks are committed 3 deep and the attacker
      releases its branch once the public chain is 4 past the fork, so a winning release
      reverts committed blocks (a safety violation). The run lasts 15 virtual minutes.
    * The central relay with 4 members whose Byzantine centre drops a transaction from block 1
      and re-links every later block (:class:`~medbench.consensus.baselines.central.Rewrite`)
      once the workload is done; node servers accept it (no rejection) and re-commit the changed
      heights with different blocks.
    """
    names = {sy.protocol: sy.name for sy in systems if not sy.variant_of}
    rows: list[dict[str, Any]] = []
    prof = s.cost_profile()
    if "pow" in names:
        for share in ATTACK_SHARES:
            honest = 25e6
            attacker = 3 * honest * share / (1 - share)
            params = {
                "protocol": "pow",
                "n": 4,
                "tick_us": 0,
                "txs": s.txs,
                "rate_tps": s.rate_tps,
                "tx_bytes": s.tx_bytes,
                "clients": 1,
                "confirmations": 3,
                "hashrates": (honest, honest, honest, attacker),
                "attacker": 3,
                "release_depth": 4,
            }
            r = run_for(params, s.seed, 900_000_000, prof)
            what = f"1 of 4 miners holds {share:.0%} of the hash power, mines privately"
            rows.append(_attack_row(names["pow"], what, 4, r))
    if "central" in names:
        params = {
            "protocol": "central",
            "n": 4,
            "tick_us": 0,
            "txs": s.txs,
            "rate_tps": s.rate_tps,
            "tx_bytes": s.tx_bytes,
        }
        at_us = int(1e6 * s.txs / s.rate_tps) + 2_000_000  # after the workload's blocks

        def rewrite(sim: Simulator) -> None:
            def fire(sim: Simulator) -> None:
                chain = sim.nodes[0].node.chain  # type: ignore[attr-defined]
                if len(chain) > 1 and chain[1].txs:
                    sim.schedule_input(sim.now, 0, Rewrite(1, chain[1].txs[0][0]))

            sim.call_at(at_us, fire)

        r = run_for(params, s.seed, at_us + 2_000_000, prof, before=rewrite)
        what = "Byzantine centre drops a record from block 1 and re-links the chain"
        rows.append(_attack_row(names["central"], what, 4, r))
    return rows


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
    by_protocol = {sy.protocol: sy for sy in systems if not sy.variant_of}  # the paper's rows
    for protocol, size, opts, what in BYZANTINE:
        target = by_protocol.get(protocol)
        if target is None:
            continue
        t = table1.measure(target, size, {**target.options_for(size), **opts}, s)
        byz_rows.append(_attack_row(target.name, what, size, t.row))
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
    # Variants change one setting of a row (PBFT's authentication): scaling shows them, the
    # fault runs stay on the systems themselves.
    primary = [sy for sy in systems if not sy.variant_of]
    crash_rows, byz_rows = faults(primary, s.common_n, s)
    say("attacks")
    byz_rows.extend(attacks(primary, s))
    say("consensus futures")
    t_fut = time.perf_counter()
    fs = futures.Settings.quick() if o.quick else futures.Settings.reproduce()
    fut = futures.compare(replace(fs, profile=s.cost_profile()), say)
    t_fut = time.perf_counter() - t_fut
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
    rep.table("table1_cpu", table1.breakdown_rows(rows), show=False)
    rep.text("### Searches behind 'nodes needed' and 'faults tolerated'")
    rep.table("table1_trials", table1.trial_rows(rows), show=False)
    rep.text(report.markdown_table(table1.trial_summary(rows)))
    pbft_rows = [r for r in scale if r["protocol"] == "pbft"]
    rep.text("## PBFT scaling (Medical Chain, n = " + ", ".join(map(str, o.scaling_n)) + ")")
    if pbft_rows:
        rep.text(
            f"Offered load {s.rate_tps:g} tx/s (the common workload), each Medical Chain row "
            "of Table 1:"
        )
        rep.table("pbft_scaling", pbft_rows)
        sat = pbft_saturation(o.scaling_n, s)
        rep.text(
            "Saturating load (16 closed-loop clients, every request at time 0), the paper's "
            "blocker mode and integrated blocks:"
        )
        rep.table("pbft_saturation", sat)
        label = {"blocker": "blocker (paper)", "integrated": "integrated blocks"}
        sat_plot = [{**r, "series": label[r["block_mode"]]} for r in sat]
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
    rep.text("## Byzantine behaviour and attacks")
    rep.text(
        "PBFT's faulty primaries up to f are caught by the vote quorums (safe, live); the "
        "PoW private miner with a hash majority rewrites committed blocks (commits_undone > 0, "
        "safety lost) and a minority one does not; the central relay's Byzantine centre "
        "rewrites history and no node server rejects it (rejections = 0)."
    )
    rep.table("faults_byzantine", byz_rows)
    rep.text(
        "Per-node CPU seconds by operation and storage bytes by category of every Table 1 "
        "common-configuration and scaling run: [nodes.csv](nodes.csv)."
    )
    rep.table("nodes", nodes, show=False)
    futures.section(rep, fut)
    rep.meta = {
        **ex.metadata(seeds=[o.seed], profile=s.cost_profile()),
        "options": asdict(o),
        "settings": asdict(s),
        "systems": [sy.name for sy in systems],
        "large_hashes_per_tx": table1.LARGE_HASHES_PER_TX,
        "futures": futures.settings_dict(fut.settings),
        "wall_s": {"table1": t_table, "scaling": t_scale, "futures": t_fut, "total": wall},
    }
    return rep.write(out)


__all__ = [
    "ATTACK_SHARES",
    "BYZANTINE",
    "DEFAULT_OUT",
    "SCALING_N",
    "Options",
    "attacks",
    "faults",
    "node_rows",
    "reproduce",
    "run_for",
    "scaling",
]
