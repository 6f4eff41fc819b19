"""Experiments: a run is (parameters, seed) -> one flat row; a sweep is a grid x seeds of runs.

Theory of operation
-------------------
A *protocol factory* turns parameters into a :class:`Deployment`: the nodes (ids 0..N-1), which of
them are replicas (for the safety check), where each node sits in the topology, the workload as a
list of :class:`Submission`, and how to rebuild a crashed node from its persisted records.
Factories are registered by name with :func:`register_protocol` (PBFT and the baselines register
themselves when imported; a name may also map to a ``"module:function"`` path that is imported on
first use, so worker processes find it without any set-up).

:func:`run` builds the topology, the simulator and the fault schedule from the parameters, runs
the simulation and returns one row: ``run_id`` (a hash of the parameters and seed), ``seed``, the
parameters, the metrics of :func:`medbench.metrics.summarize`, ``wall_s`` and
``sim_msgs_per_wall_s``. Only the last two depend on the host; every other column is a function
of (parameters, seed) for a given cost profile (a determinism test checks it).

Common parameters (defaults in :data:`DEFAULTS`): ``protocol``, ``n``, ``topology`` (``complete``,
``city``, ``province``, ``country``), ``latency_us`` and ``bandwidth_mbps`` (complete graph only),
``loss``, ``jitter_us``, ``tick_us``, ``cpu`` (``"profile"`` or ``"none"``), ``crypto``
(``"modeled"`` or ``"real"``, passed to the factory), ``duration_ms`` (virtual time limit),
``faults`` (a :func:`medbench.sim.faults.parse` string). Other parameters go to the factory,
which checks them all against its protocol's declared schema (:mod:`.params`: unknown names
and bad values are an :class:`ExperimentError`) and reports the resolved set in
:attr:`Deployment.params`, the parameter columns of the row. The workload is the same for every
protocol (:mod:`.load`). The machine (:mod:`medbench.sim.engine`, *Hosts*, *Processes and
rounds*): ``hosts`` (0: a CPU per node, the classic model; k: node ``i`` runs on host ``site_i mod
k`` and shares its ``cores`` and disk), ``client_processes`` (with hosts: the clients, nodes
``n``.., grouped into that many processes, like load generators) and ``round_ticks`` (with hosts:
processes work in rounds, like the real cluster's driver).

:func:`run_grid` expands a grid (every combination of the listed values) times the seeds and runs
them with joblib (:func:`run_grid_detailed` also returns every run's per-node rows: CPU seconds by
operation and storage by category, see :func:`medbench.metrics.node_table`): local processes by
default (``n_jobs``), or on a Dask cluster with ``scheduler="tcp://host:port"`` (joblib's ``dask``
backend over a ``dask.distributed.Client``). A ``tqdm.auto`` bar shows progress. It returns
when every run is done and raises on the first failing run; :mod:`.sweep` (what ``medbench
sweep`` uses) writes each run as it finishes, records failures as rows and resumes.
:func:`write_results` saves the rows as CSV or Parquet with a sidecar JSON of metadata (medbench
version, backend, cost profile, seeds, grid).
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import platform
import random
import sys
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import medbench
from medbench import metrics
from medbench.node import Node
from medbench.sim import faults as fault_spec
from medbench.sim import topology as topo
from medbench.sim.costs import CostProfile
from medbench.sim.engine import Simulator, default_key


class ExperimentError(ValueError):
    """Bad parameters or an unknown protocol."""


@dataclass(frozen=True, slots=True)
class Submission:
    """At ``at_us``, give ``msg`` to ``node`` as a local input; ``tx`` names the transaction.

    With ``after`` (a closed-loop client, :mod:`medbench.experiments.load`), the input is given
    ``at_us`` after transaction ``after`` completes instead.
    """

    at_us: int
    node: int
    msg: Any
    tx: Hashable
    after: Hashable | None = None


@dataclass(slots=True)
class Deployment:
    """What a protocol factory returns (see the module docstring)."""

    nodes: Sequence[Node]
    submissions: Sequence[Submission]
    replicas: tuple[int, ...] | None = None
    sites: Sequence[int] | None = None
    recover: Callable[[int, list[Any]], Node] | None = None
    completion_key: Callable[[Any], Hashable] = default_key
    commit_key: Callable[[Any], Hashable] = default_key
    checkers: Sequence[metrics.Checker] = field(default_factory=lambda: metrics.DEFAULT_CHECKERS)
    params: Mapping[str, Any] | None = None  # every parameter, as the schema resolved them


ProtocolFactory = Callable[[Mapping[str, Any], random.Random], Deployment]

_REGISTRY: dict[str, ProtocolFactory | str] = {
    "toy-quorum": "medbench.experiments.toy:build",
    "pow": "medbench.experiments.baselines:build",
    "poa": "medbench.experiments.baselines:build",
    "dpos": "medbench.experiments.baselines:build",
    "poi": "medbench.experiments.baselines:build",
    "central": "medbench.experiments.baselines:build",
    "pbft": "medbench.experiments.pbft:build",
    "hotstuff": "medbench.experiments.hotstuff:build",
    "raft": "medbench.experiments.raft:build",
}


_SCHEMAS: dict[str, Any] = {}
"""Protocol name -> its parameter schema (a model or ``"module:Class"``), when registered with
one; otherwise :func:`medbench.experiments.params.schema_for` finds ``PARAMS`` (or
``params_schema(name)``) in the factory's module."""


def register_protocol(
    name: str, factory: ProtocolFactory | str, schema: type | str | None = None
) -> None:
    """Make ``factory`` (a callable or a ``"module:function"`` path) available as ``name``.

    ``schema`` declares its parameters (a :class:`medbench.experiments.params.RunParams`
    subclass or its ``"module:Class"`` path); without it the factory's module must hold one as
    ``PARAMS`` (see :mod:`medbench.experiments.params`).
    """
    _REGISTRY[name] = factory
    if schema is not None:
        _SCHEMAS[name] = schema
    else:
        _SCHEMAS.pop(name, None)


def protocols() -> list[str]:
    """Registered protocol names."""
    return sorted(_REGISTRY)


def get_protocol(name: str) -> ProtocolFactory:
    """The factory registered as ``name`` (importing it if registered by path)."""
    try:
        entry = _REGISTRY[name]
    except KeyError:
        raise ExperimentError(f"unknown protocol {name!r}; registered: {protocols()}") from None
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        _REGISTRY[name] = entry
    return entry


DEFAULTS: dict[str, Any] = {
    "n": 4,
    "topology": "complete",
    "latency_us": 1000,
    "bandwidth_mbps": 1000,
    "loss": 0.0,
    # Seeded network jitter: each copy's one-way delay gains a uniform draw from [0, jitter_us]
    # (10% of the default 1 ms link; links stay FIFO), so different seeds give different traces
    # and a figure's spread over seeds means something. 0 gives the jitter-free network.
    "jitter_us": 100,
    "tick_us": 1000,
    "cpu": "profile",
    "crypto": "modeled",
    "duration_ms": 60_000,
    "faults": "",
    "hosts": 0,
    "cores": 1,
    "client_processes": 0,
    "round_ticks": False,
}

NONDETERMINISTIC_COLUMNS = ("wall_s", "sim_msgs_per_wall_s")
"""Columns of a row that depend on the host rather than on (parameters, seed)."""


def run_id(params: Mapping[str, Any], seed: int) -> str:
    """A stable id of (parameters, seed): 16 hex digits of SHA-256 over canonical JSON."""
    blob = json.dumps({"params": dict(params), "seed": seed}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_simulator(
    params: Mapping[str, Any], seed: int, profile: CostProfile | None = None
) -> tuple[Simulator, Deployment]:
    """The simulator of one run, with workload and faults scheduled (not yet run).

    The factory checks the parameters against its protocol's schema
    (:mod:`medbench.experiments.params`) and reports them in :attr:`Deployment.params`.
    """
    if "protocol" not in params:
        raise ExperimentError("parameters need a 'protocol'")
    p = {**DEFAULTS, **params}
    factory = get_protocol(str(p["protocol"]))
    # Independent streams so that changing the network does not change the workload.
    root = random.Random(seed)
    rng_proto = random.Random(root.getrandbits(64))
    rng_topo = random.Random(root.getrandbits(64))
    rng_net = random.Random(root.getrandbits(64))
    dep = factory(p, rng_proto)
    if dep.params is not None:
        p = {**p, **dep.params}
    nodes = list(dep.nodes)
    sites = list(dep.sites) if dep.sites is not None else list(range(len(nodes)))
    n_sites = max(sites) + 1 if sites else 0
    base = topo.build(
        str(p["topology"]),
        n_sites,
        rng_topo,
        latency_us=int(p["latency_us"]),
        bandwidth_bps=int(float(p["bandwidth_mbps"]) * topo.MBIT),
        loss=float(p["loss"]),
    )
    network = base.for_nodes(sites)
    if p["cpu"] == "profile":
        cpu = profile if profile is not None else CostProfile.default()
    elif p["cpu"] == "none":
        cpu = CostProfile.zero()
    else:
        raise ExperimentError(f"cpu must be 'profile' or 'none', not {p['cpu']!r}")
    n_hosts = int(p.get("hosts", 0) or 0)
    hosts = [site % n_hosts for site in sites] if n_hosts > 0 else None
    procs = None
    client_procs = int(p.get("client_processes", 0) or 0)
    if hosts is not None and client_procs > 0:
        # replicas 0..n-1 each a process; the clients in ``client_processes`` processes
        n_rep = int(p["n"])
        procs = [i if i < n_rep else n_rep + (i - n_rep) % client_procs for i in range(len(nodes))]
        for i in range(n_rep, len(nodes)):  # a load-generator process sits on one host
            hosts[i] = hosts[n_rep + (i - n_rep) % client_procs]
    sim = Simulator(
        nodes,
        network,
        rng=rng_net,
        tick_us=int(p["tick_us"]),
        profile=cpu,
        jitter_us=int(p["jitter_us"]),
        recover=dep.recover,
        replicas=dep.replicas,
        completion_key=dep.completion_key,
        commit_key=dep.commit_key,
        hosts=hosts,
        cores=int(p.get("cores", 1) or 1),
        round_ticks=bool(p.get("round_ticks", False)) and hosts is not None,
        procs=procs,
    )
    for s in dep.submissions:
        if s.after is None:
            sim.submit(s.at_us, s.node, s.msg, s.tx)
        else:
            sim.submit_after(s.after, s.at_us, s.node, s.msg, s.tx)
    sim.schedule_faults(fault_spec.parse(str(p["faults"])))
    return sim, dep


Progress = Callable[[int, int, int], None]
"""``progress(now_us, completed, still_awaited)``: see :attr:`Simulator.progress`."""


def run(
    params: Mapping[str, Any],
    seed: int,
    profile: CostProfile | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run one experiment and return its flat row (see the module docstring)."""
    return run_detailed(params, seed, profile, progress)[0]


def run_detailed(
    params: Mapping[str, Any],
    seed: int,
    profile: CostProfile | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], metrics.RunRecord]:
    """Like :func:`run`, and also return the raw record (e.g. for :func:`metrics.node_rows`).

    ``progress`` is called as virtual time passes each second (and changes nothing in the run).
    The row's ``not_issued`` counts closed-loop requests never sent (their predecessor never
    completed).
    """
    t0 = time.perf_counter()
    sim, dep = build_simulator(params, seed, profile)
    p = {**DEFAULTS, **params, **(dep.params or {})}
    sim.progress = progress
    record = sim.run(int(float(p["duration_ms"]) * 1000), stop_when_complete=True)
    wall = time.perf_counter() - t0
    row: dict[str, Any] = {"run_id": run_id(params, seed), "seed": seed}
    row["protocol"] = p["protocol"]
    for key, value in p.items():
        row[key] = value
    row.update(metrics.summarize(record, dep.checkers))
    row["not_issued"] = len({s.tx for s in dep.submissions} - set(record.submitted))
    row["wall_s"] = wall
    row["sim_msgs_per_wall_s"] = record.delivered / wall if wall > 0 else 0.0
    return row, record


def expand_grid(grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (scalars are fixed), in the grid's key order."""
    keys = list(grid)
    values = [v if isinstance(v, (list, tuple)) else [v] for v in grid.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def seed_list(seeds: int | Iterable[int]) -> list[int]:
    """``3`` -> ``[0, 1, 2]``; an iterable of seeds is kept as is."""
    return list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]


def node_rows(row: Mapping[str, Any], record: metrics.RunRecord) -> list[dict[str, Any]]:
    """The per-node table of one run (:func:`metrics.node_table`), keyed by the run's id."""
    key = {"run_id": row["run_id"], "seed": row["seed"], "protocol": row["protocol"]}
    return [{**key, **r} for r in metrics.node_table(record)]


def _run_task(
    factory_ref: ProtocolFactory | str | None,
    params: dict[str, Any],
    seed: int,
    profile: dict[str, Any] | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    # Re-register in worker processes, where the parent's registry is not populated.
    if factory_ref is not None:
        register_protocol(str(params["protocol"]), factory_ref)
    prof = CostProfile.from_dict(profile) if profile is not None else None
    row, record = run_detailed(params, seed, prof)
    return row, node_rows(row, record)


def run_grid(
    grid: Mapping[str, Any],
    seeds: int | Iterable[int] = 1,
    *,
    n_jobs: int = 1,
    scheduler: str | Any | None = None,
    profile: CostProfile | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every grid point with every seed; rows come back in grid-then-seed order.

    ``scheduler`` is the address of a Dask scheduler (or a ``dask.distributed.Client``): the runs
    then go to the cluster through joblib's ``dask`` backend; otherwise joblib runs ``n_jobs``
    local worker processes (1 = in this process).
    """
    rows, _nodes = run_grid_detailed(
        grid, seeds, n_jobs=n_jobs, scheduler=scheduler, profile=profile, progress=progress
    )
    return rows


def run_grid_detailed(
    grid: Mapping[str, Any],
    seeds: int | Iterable[int] = 1,
    *,
    n_jobs: int = 1,
    scheduler: str | Any | None = None,
    profile: CostProfile | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """:func:`run_grid`, plus every run's per-node rows (:func:`node_rows`) in the same order."""
    from joblib import Parallel, delayed, parallel_config
    from tqdm.auto import tqdm

    points = expand_grid(grid)
    seeds_ = seed_list(seeds)
    tasks = []
    for point in points:
        name = point.get("protocol")
        if name is None:
            raise ExperimentError("the grid needs a 'protocol'")
        entry = _REGISTRY.get(str(name))
        if entry is None:
            get_protocol(str(name))  # raises the helpful error
        for seed in seeds_:
            tasks.append((entry, point, seed))
    prof = profile.to_dict() if profile is not None else None
    jobs = (delayed(_run_task)(entry, point, seed, prof) for entry, point, seed in tasks)
    bar = tqdm(total=len(tasks), disable=not progress, desc="runs", unit="run")
    rows: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    try:
        if scheduler is None:
            if n_jobs == 1:
                for entry, point, seed in tasks:
                    row, per_node = _run_task(entry, point, seed, prof)
                    rows.append(row)
                    nodes.extend(per_node)
                    bar.update(1)
            else:
                for row, per_node in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
                    rows.append(row)
                    nodes.extend(per_node)
                    bar.update(1)
        else:
            from dask.distributed import Client

            client = scheduler if isinstance(scheduler, Client) else Client(scheduler)  # type: ignore[no-untyped-call]
            try:
                with parallel_config(backend="dask"):
                    for row, per_node in Parallel(n_jobs=-1, return_as="generator")(jobs):
                        rows.append(row)
                        nodes.extend(per_node)
                        bar.update(1)
            finally:
                if client is not scheduler:
                    client.close()  # type: ignore[no-untyped-call]
    finally:
        bar.close()
    return rows, nodes


def metadata(
    grid: Mapping[str, Any] | None = None,
    seeds: Iterable[int] | None = None,
    profile: CostProfile | None = None,
) -> dict[str, Any]:
    """The sidecar metadata of a result table."""
    from medbench import backend

    return {
        "medbench_version": medbench.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "backend": backend.describe(),
        "cost_profile": (profile or CostProfile.default()).to_dict(),
        "seeds": list(seeds) if seeds is not None else [],
        "grid": dict(grid) if grid is not None else {},
        "defaults": DEFAULTS,
        "created_unix": int(time.time()),
    }


def write_results(
    rows: Sequence[Mapping[str, Any]],
    folder: str | Path,
    *,
    fmt: str = "csv",
    meta: Mapping[str, Any] | None = None,
    name: str = "results",
) -> Path:
    """Write ``rows`` to ``folder/name.csv`` (or ``.parquet``) and ``folder/name.json``.

    Columns are the union of the rows' keys in first-seen order; missing cells are empty.
    Returns the table's path.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, None)
    if fmt == "csv":
        import csv

        path = out / f"{name}.csv"
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns), restval="")
            writer.writeheader()
            for row in rows:
                writer.writerow(dict(row))
    elif fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ExperimentError("Parquet output needs pyarrow (pip install pyarrow)") from None

        table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
        path = out / f"{name}.parquet"
        pq.write_table(table, path)
    else:
        raise ExperimentError(f"unknown format {fmt!r}; expected 'csv' or 'parquet'")
    (out / f"{name}.json").write_text(
        json.dumps(dict(meta or {}), indent=2, sort_keys=True, default=str) + "\n"
    )
    return path
