"""``medbench reproduce``: Table 1, every system at an offered load and at saturation, faults.

Theory of operation
-------------------
:func:`reproduce` measures, in the deterministic simulator:

1. **Table 1** (:mod:`medbench.study.table1`, seed ``Options.seed``): every system at its minimal
   and a common configuration, the measured table beside the paper's with match marks and
   reasons, where each row was measured (scaled-down configurations named), and every search
   trial ("nodes needed" includes the Byzantine trials of a BFT system).
2. **Offered load**: every registered system (Table 1's variant rows included) at ``n`` in
   :data:`SCALING_N` (4, 7, 10, 16) with the common open-loop workload (50 tx/s), for each seed
   of :meth:`Options.seed_list` (3 seeds, 2 with ``--quick``): throughput, median latency,
   messages, CPU and storage per node. A throughput at the offered rate says a system kept up,
   not what it can do; so:
3. **Saturation**: the systems whose adapter takes a closed-loop load
   (:func:`closed_loop_params`; PBFT's clients are closed loops, in both block modes) with
   :data:`SATURATION_CLIENTS` clients and every request sent as soon as the previous one
   completed, per seed: the throughput the system itself sets.
4. **Faults**: each system at the common size with ``k`` nodes crashed from the start, up to the
   first ``k`` that loses liveness, per seed; then (seed ``Options.seed``) the Byzantine
   behaviours each protocol has: PBFT's equivocating and silent primaries at n = 3 (f = 0) and
   n = 4 (f = 1), ModelChain sites publishing poisoned model updates, and the attacks of
   :func:`attacks`: PoW's 51% attack (a private miner with a majority and with a minority of the
   hash power) and the central relay's Byzantine centre rewriting history.

5. **Consensus futures** (:mod:`medbench.study.futures`): PBFT, chained HotStuff and Raft at the
   consortium sizes of the paper's question (n = 4, 16, 64, 100; two seeds; ``--quick``: 4 and
   16) — throughput at saturation, latency, messages, CPU and storage per transaction, the cost
   of a leader crash, and the crossover points, with plots and sentences computed from the data.

Every table names its network, workload and cost profile (:mod:`medbench.study.conditions`, in
its caption and in its CSV's JSON sidecar); every sentence that states a result is written from
the rows it describes (:mod:`medbench.study.findings`); every figure that compares systems shows
the mean over seeds with the range as error bars (:mod:`medbench.study.figures`).

The report folder (default ``reports/latest``) gets ``README.md`` (the tables), one CSV per table
with a JSON sidecar (``table1_cpu.csv``: CPU per committed transaction by operation at the common
configuration; ``nodes.csv``: per node of the Table 1 common runs and the first seed's
offered-load runs: CPU seconds and counts by operation, storage bytes by category), PNG figures
and ``metadata.json`` (versions, backend, cost profile and its provenance, seeds, settings, wall
times). Everything except ``metadata.json``'s host fields and wall times is a function of the
seeds.
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
from medbench.study import conditions, findings, futures, report, table1
from medbench.study.figures import Figure, Panel
from medbench.study.measure import run_params
from medbench.study.report import Report

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
    seeds: int = 0  # seeds of the figures that compare systems (0: 3, or 2 with quick)

    def seed_list(self) -> list[int]:
        """The figures' seeds: ``seed``, ``seed + 1``, ..."""
        k = self.seeds or (2 if self.quick else 3)
        return [self.seed + i for i in range(k)]

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


SATURATION_CLIENTS = 16
"""Closed-loop clients of PBFT's saturation runs (each a simulated client node)."""


def saturation_clients(system: table1.System, s: table1.Settings) -> int:
    """Closed-loop clients that saturate ``system``: 16 for PBFT (its latency is milliseconds,
    so 16 keep more in flight than it commits per round); every transaction for the
    baselines, whose latency is seconds to minutes (16 clients would measure the clients:
    throughput = 16 / latency, Little's law)."""
    return SATURATION_CLIENTS if system.protocol == "pbft" else s.txs


SATURATION_DURATION_MS = 3_600_000
"""Virtual time a saturation run may take (the slowest systems confirm one block in minutes)."""

SATURATION_VALUES = ("throughput_tps", "latency_ms_p50", "msgs_per_tx", "cpu_s_max_node")


def closed_loop_params(
    system: table1.System, n: int, s: table1.Settings, clients: int = SATURATION_CLIENTS
) -> dict[str, Any]:
    """The parameters of ``system`` at ``n`` under closed-loop load (the saturation hook).

    Every adapter takes the common workload vocabulary's ``load = "closed"``
    (:mod:`medbench.experiments.load`): each client sends its next transaction when the previous
    one completed. An adapter that does not take it refuses the parameters, and
    :func:`saturation` leaves it out.
    """
    p = run_params(system, n, system.options_for(n), s)
    p.update(load="closed", clients=clients)
    p.pop("rate_tps", None)
    return p


def saturation(
    systems: Sequence[table1.System], ns: Sequence[int], s: table1.Settings,
    clients: int = 0,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every system that takes a closed-loop load, at each ``n`` (see :func:`closed_loop_params`).

    A blocker-mode PBFT run goes on until every transaction is in a block, so its messages
    per transaction include the BLOCK rounds.
    """
    rows = []
    s = replace(s, duration_ms=max(s.duration_ms, SATURATION_DURATION_MS))
    for system in systems:
        for n in ns:
            k = clients if clients else saturation_clients(system, s)
            params = closed_loop_params(system, n, s, k)
            try:
                sim, dep = ex.build_simulator(params, s.seed, s.cost_profile())
            except (ex.ExperimentError, ValueError, TypeError):
                break  # this adapter takes no closed-loop load (yet)
            record = sim.run(int(s.duration_ms) * 1000, stop_when_complete=True)
            left, waited = table1.wait_for_blocks(sim, range(n))
            if waited:
                record = sim.snapshot()
            r = metrics.summarize(record, dep.checkers)
            rows.append(
                {
                    "system": system.name,
                    "protocol": system.protocol,
                    "n": n,
                    "clients": k,
                    "live": bool(r["liveness"]) and left == 0,
                    "completed": r["completed"],
                    "throughput_tps": float(r["throughput_tps"]),
                    "latency_ms_p50": float(r["latency_ms_p50"]),
                    "latency_ms_p95": float(r["latency_ms_p95"]),
                    "msgs_per_tx": float(r["msgs_per_tx"]),
                    "bytes_per_tx": float(r["bytes_per_tx"]),
                    "cpu_s_max_node": float(r["cpu_s_max_node"]),
                    "unblocked_left": left,
                    "safety": r["safety"],
                }
            )
    return rows


def saturation_figure(rows: list[dict[str, Any]], caption: str) -> Figure:
    """Throughput and median latency under closed-loop load, over seeds (live runs only)."""
    rows = [r for r in rows if r.get("live")]
    return Figure(
        "saturation",
        [
            Panel(
                rows,
                "n",
                "throughput_tps",
                "system",
                "Throughput at saturation",
                "nodes n",
                "committed tx/s (log scale)",
                logy=True,
            ),
            Panel(
                rows,
                "n",
                "latency_ms_p50",
                "system",
                "Median latency at saturation",
                "nodes n",
                "submit to commit (log scale)",
                unit="ms",
                logy=True,
            ),
        ],
        title="Saturation (closed-loop clients), against node count",
        caption=caption,
    )


def crash_figure(rows: list[dict[str, Any]], n: int, caption: str) -> Figure:
    """Committed share of the workload against crashed nodes, per system, over seeds."""
    shown = [
        {**r, "committed_pct": 100.0 * float(r["completed"]) / max(1, int(r["requests"]))}
        for r in rows
    ]
    return Figure(
        "faults_crash",
        [
            Panel(
                shown,
                "crashed",
                "committed_pct",
                "system",
                f"Transactions committed with k of {n} nodes crashed at time 0",
                "nodes crashed k",
                "committed (% of the workload)",
                ylim0=True,
            ),
        ],
        caption=caption,
    )


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
                "requests": s.txs,
                "rate_tps": s.rate_tps,
                "payload_bytes": s.tx_bytes,
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
            "requests": s.txs,
            "rate_tps": s.rate_tps,
            "payload_bytes": s.tx_bytes,
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
    systems: Sequence[table1.System],
    n: int,
    s: table1.Settings,
    crashes: bool = True,
    byzantine: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Crash runs per system at ``n`` (until liveness is lost) and the Byzantine runs."""
    crash_rows = []
    for system in systems if crashes else ():
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
                    "requests": s.txs,
                    "latency_ms_p50": float(t.row.get("latency_ms_p50", float("nan"))),
                    "tolerated": k,
                }
            )
    byz_rows = []
    by_protocol = {sy.protocol: sy for sy in systems if not sy.variant_of}  # the paper's rows
    for protocol, size, opts, what in BYZANTINE if byzantine else ():
        target = by_protocol.get(protocol)
        if target is None:
            continue
        t = table1.measure(target, size, {**target.options_for(size), **opts}, s)
        byz_rows.append(_attack_row(target.name, what, size, t.row))
    return crash_rows, byz_rows


def seed_rows(
    fn: Callable[[table1.Settings], list[dict[str, Any]]], s: table1.Settings, seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """``fn`` run once per seed, each row labelled with its ``seed``."""
    rows = []
    for seed in seeds:
        for r in fn(replace(s, seed=seed)):
            rows.append({"seed": seed, **r})
    return rows


def spread_rows(
    rows: Sequence[Mapping[str, Any]], keys: Sequence[str], values: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per ``keys`` group: each of ``values`` as the mean over seeds, with min and max."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, runs in groups.items():
        d: dict[str, Any] = dict(zip(keys, key, strict=True))
        d["seeds"] = len(runs)
        d["live"] = f"{sum(bool(r.get('live', True)) for r in runs)}/{len(runs)}"
        for v in values:
            xs = [float(r[v]) for r in runs if isinstance(r.get(v), (int, float))]
            xs = [x for x in xs if x == x]
            d[v] = sum(xs) / len(xs) if xs else float("nan")
            d[f"{v}_min"] = min(xs) if xs else float("nan")
            d[f"{v}_max"] = max(xs) if xs else float("nan")
        out.append(d)
    return out


def spread_markdown(rows: Sequence[Mapping[str, Any]], keys: Sequence[str],
                    values: Sequence[str]) -> str:  # fmt: skip
    """:func:`spread_rows` as a markdown table: ``mean (min–max)`` per value."""
    shown = []
    for r in rows:
        d: dict[str, Any] = {k: r[k] for k in (*keys, "seeds", "live")}
        for v in values:
            mean, lo, hi = r[v], r[f"{v}_min"], r[f"{v}_max"]
            cell = report.fmt(mean, v)
            if lo == lo and hi == hi and report.fmt(lo, v) != report.fmt(hi, v):
                cell += f" ({report.fmt(lo, v)} – {report.fmt(hi, v)})"
            d[v] = cell
        shown.append(d)
    return report.markdown_table(shown)


SCALING_VALUES = (
    "throughput_tps",
    "latency_ms_p50",
    "msgs_per_tx",
    "cpu_ms_per_tx",
    "storage_kb_per_node",
)


def scaling_figure(rows: list[dict[str, Any]], s: table1.Settings, caption: str) -> Figure:
    """Small multiples of :func:`scaling` over seeds: throughput, latency, CPU, storage."""
    x, xl = "n", "nodes n"
    return Figure(
        "scaling",
        [
            Panel(
                rows,
                x,
                "throughput_tps",
                "system",
                "Throughput",
                xl,
                "committed tx/s",
                hline=(s.rate_tps, f"offered load {s.rate_tps:g} tx/s"),
                ylim0=True,
            ),
            Panel(
                rows,
                x,
                "latency_ms_p50",
                "system",
                "Median latency",
                xl,
                "submit to commit (log scale)",
                logy=True,
                unit="ms",
            ),
            Panel(
                rows,
                x,
                "cpu_ms_per_tx",
                "system",
                "CPU time per transaction",
                xl,
                "all nodes' CPU per committed tx (log)",
                logy=True,
                unit="ms",
            ),
            Panel(
                rows,
                x,
                "storage_kb_per_node",
                "system",
                "Storage per node",
                xl,
                "encoded bytes kept per node",
                unit="KiB",
                ylim0=True,
            ),
        ],
        title=f"Every system at the offered load of {s.rate_tps:g} tx/s, against node count",
        caption=caption,
        columns=2,
    )


def summary_lines(
    rows: Sequence[table1.Row],
    cmp: table1.Comparison,
    trials: Sequence[Mapping[str, Any]],
    sat: Sequence[Mapping[str, Any]],
) -> list[str]:
    """A few lines for the terminal: Table 1's match count, nodes needed, saturation."""
    marks = [ok for cols in cmp.marks.values() for ok in cols.values()]
    misses = [f"{k}/{c}" for k, cols in cmp.marks.items() for c, ok in cols.items() if not ok]
    out = [
        f"Table 1: {sum(marks)} of {len(marks)} measured paper cells reproduced"
        + (f" (differ: {', '.join(misses)}; reasons in the report)" if misses else "")
    ]
    for row in rows:
        if row.system.byzantine_behaviours and not row.system.variant_of:
            out.append(findings.nodes_needed(trials, row.system.name, row.cells["nodes_needed"]))
    if sat:
        out.append(findings.saturation(sat))
    return out


def reproduce(
    out: str | Path = DEFAULT_OUT,
    options: Options | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Run everything (see the module docstring) and write the report; returns ``README.md``."""
    o = options if options is not None else Options()
    s = o.settings()
    seeds = o.seed_list()
    say = progress if progress is not None else (lambda _msg: None)
    t0 = time.perf_counter()
    wall: dict[str, float] = {}
    systems = table1.available()
    say("Table 1")
    rows = table1.measure_table(s, systems, progress=lambda name: say(f"  {name}"))
    cmp = table1.compare(rows)
    wall["table1"] = time.perf_counter() - t0
    say(f"offered load, seeds {seeds}")
    nodes = [r for row in rows for r in node_rows(row.common, "table1 common")]
    scale_s = replace(s, duration_ms=min(s.duration_ms, 600_000))
    first = [seeds[0]]
    scale = seed_rows(lambda ss: scaling(systems, o.scaling_n, ss,
                      nodes if ss.seed == first[0] else None), scale_s, seeds)  # fmt: skip
    wall["offered"] = time.perf_counter() - t0 - sum(wall.values())
    say("saturation")
    sat = seed_rows(lambda ss: saturation(systems, o.scaling_n, ss), s, seeds)
    wall["saturation"] = time.perf_counter() - t0 - sum(wall.values())
    say("faults")
    # Variants change one setting of a row (PBFT's authentication): scaling shows them, the
    # fault runs stay on the systems themselves.
    primary = [sy for sy in systems if not sy.variant_of]
    crash_rows = seed_rows(lambda ss: faults(primary, s.common_n, ss, byzantine=False)[0], s, seeds)
    _, byz_rows = faults(primary, s.common_n, s, crashes=False)
    say("attacks")
    byz_rows.extend(attacks(primary, s))
    wall["faults"] = time.perf_counter() - t0 - sum(wall.values())
    say("consensus futures")
    fs = futures.Settings.quick() if o.quick else futures.Settings.reproduce()
    fut = futures.compare(replace(fs, profile=s.cost_profile()), say)
    wall["futures"] = time.perf_counter() - t0 - sum(wall.values())
    wall["total"] = time.perf_counter() - t0

    rep = Report("medbench reproduce: Medical Chain Table 1 and consensus comparison")
    names = [sy.name for sy in systems]  # one style per system across the figures
    missing = [sy.name for sy in table1.SYSTEMS if sy not in systems]
    prof = s.cost_profile()
    rep.text(
        f"Mode: {'quick' if o.quick else 'full'}. Table 1 and the attack runs use seed "
        f"{o.seed}; every figure that compares systems runs seeds "
        f"{', '.join(map(str, seeds))} and shows their spread.\n\n"
        f"**Network** (every table and figure): {conditions.network()}. Each system's "
        "nodes sit one per site; PBFT's clients sit beside their hospital's replica (a LAN "
        "link of 0.1 ms).\n\n"
        f"**CPU costs**: {conditions.profile(prof)}.\n\n"
        f"**Workloads**: Table 1, the offered-load figure and the fault runs: "
        f"{conditions.workload(s)}; the saturation figure: "
        f"{conditions.workload(s, 'closed', SATURATION_CLIENTS)} for PBFT, and every "
        "transaction in flight at once for the baselines (see the saturation section)."
        + (
            f" Not registered in the simulator (rows missing): {', '.join(missing)}."
            if missing
            else ""
        )
    )
    t1_caption = conditions.caption(s, seeds=[o.seed])
    t1_context = conditions.context(s, seeds=[o.seed])
    rep.text("## Table 1 (measured; ✓/✗ = matches the paper's cell)")
    rep.text(table1.markdown(rows, cmp))
    rep.text(t1_caption)
    for row in rows:
        minimal = row.minimal.row if row.minimal.live else {}
        line = findings.scaled_down(
            row.system.name, table1.measured_where(row), minimal, row.cells["nodes_needed"]
        )
        if line:
            rep.text(line)
    rep.table("table1", table1.table_rows(rows, cmp), show=False, context=t1_context)
    rep.table("table1_cpu", table1.breakdown_rows(rows), show=False, context=t1_context)
    rep.text("### Searches behind 'nodes needed' and 'faults tolerated'")
    rep.text(table1.NODES_NEEDED_DEFINITION)
    trials = table1.trial_rows(rows)
    for row in rows:
        if row.system.byzantine_behaviours:
            rep.text(findings.nodes_needed(trials, row.system.name, row.cells["nodes_needed"]))
    rep.table("table1_trials", trials, show=False, context=t1_context)
    rep.text(report.markdown_table(table1.trial_summary(rows)))
    rep.text(t1_caption)

    rep.text(f"## Every system at the offered load ({s.rate_tps:g} tx/s) against node count")
    cap = conditions.caption(scale_s, seeds=seeds)
    rep.text(findings.offered_load(scale, s.rate_tps))
    rep.figure(replace(scaling_figure(scale, s, cap), series=names))
    agg = spread_rows(scale, ("system", "n"), SCALING_VALUES)
    rep.text(spread_markdown(agg, ("system", "n"), SCALING_VALUES))
    rep.text("Cells: mean over seeds (min – max where the seeds differ). " + cap)
    rep.table("scaling", scale, show=False, caption="", context=conditions.context(
        scale_s, seeds=seeds))  # fmt: skip

    rep.text("## At saturation (closed-loop load) against node count")
    sat_clients = f"{SATURATION_CLIENTS} (PBFT) or {s.txs}, one per transaction (the baselines)"
    sat_cap = conditions.caption(s, "closed", sat_clients, seeds=seeds)
    if sat:
        rep.text(findings.saturation(sat))
        rep.figure(replace(saturation_figure(sat, sat_cap), series=names))
        agg = spread_rows(sat, ("system", "clients", "n"), SATURATION_VALUES)
        rep.text(spread_markdown(agg, ("system", "clients", "n"), SATURATION_VALUES))
        rep.text("Cells: mean over seeds (min – max where the seeds differ). " + sat_cap)
    skipped = sorted({sy.name for sy in systems} - {r["system"] for r in sat})
    if skipped:
        rep.text(
            "No closed-loop load in this build for: " + ", ".join(skipped) + " (their adapters "
            "do not take `load = closed` yet; :func:`medbench.study.reproduce.closed_loop_params` "
            "is the hook, and they appear here once they do)."
        )
    rep.table("saturation", sat, show=False, context=conditions.context(
        s, "closed", sat_clients, seeds=seeds))  # fmt: skip

    rep.text(f"## Fault tolerance (crash k nodes at time 0, n = {s.common_n})")
    crash_cap = conditions.caption(s, seeds=seeds)
    rep.text(findings.crashes(crash_rows))
    rep.figure(replace(crash_figure(crash_rows, s.common_n, crash_cap), series=names))
    rep.table("faults_crash", crash_rows, show=False, context=conditions.context(s, seeds=seeds))
    rep.text("## Byzantine behaviour and attacks")
    rep.text(findings.byzantine(byz_rows))
    rep.table("faults_byzantine", byz_rows, caption=conditions.caption(s, seeds=[o.seed]),
              context=conditions.context(s, seeds=[o.seed]))  # fmt: skip
    rep.text(
        "Per-node CPU seconds by operation and storage bytes by category of every Table 1 "
        f"common-configuration run and the seed-{seeds[0]} offered-load runs: "
        "[nodes.csv](nodes.csv)."
    )
    rep.table("nodes", nodes, show=False, context=t1_context)
    futures.section(rep, fut)
    rep.summary = summary_lines(rows, cmp, trials, sat)
    rep.meta = {
        **ex.metadata(seeds=seeds, profile=prof),
        "options": asdict(o),
        "settings": asdict(s),
        "network": conditions.network(),
        "futures": futures.settings_dict(fut.settings),
        "systems": [sy.name for sy in systems],
        "large_hashes_per_tx": table1.LARGE_HASHES_PER_TX,
        "wall_s": wall,
    }
    return rep.write(out)


__all__ = [
    "ATTACK_SHARES",
    "BYZANTINE",
    "DEFAULT_OUT",
    "SATURATION_CLIENTS",
    "SCALING_N",
    "Options",
    "attacks",
    "closed_loop_params",
    "crash_figure",
    "faults",
    "node_rows",
    "reproduce",
    "run_for",
    "saturation",
    "saturation_figure",
    "scaling",
    "scaling_figure",
    "seed_rows",
    "spread_rows",
]
