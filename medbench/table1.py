"""Table 1 of Medical Chain (PAPER.md §1.8), filled from simulator measurements.

Theory of operation
-------------------
Each compared system is a :class:`System`: the simulator protocol that implements it (MDSM ->
``dpos``, MedRec -> ``pow``, ModelChain -> ``poi``, Medical Chain -> ``pbft``, plus the central
relay of PAPER.md §2 -> ``central`` and MedRec 2.0's Clique -> ``poa`` as extra rows), its paper
configuration (MDSM: 101 delegates + 20 auditors; Medical Chain: tolerate ``f = 1``, two-level
blocks of :data:`MEDICAL_CHAIN`), and the order in which a fault search crashes its nodes (the
most damaging first where the roles differ: MDSM's auditors, the relay's central server).
*Variant* rows change one setting of Medical Chain: MAC authenticators between replicas
(requests still signed by their clients), and integrated blocks (each PBFT batch is a block).

Medical Chain's row runs as PAPER.md §1.5 builds it (``block_mode = blocker``): a client's
reply comes once PBFT accepted its transaction, and the rotating blocker's BLOCK is ordered by
PBFT later. So a run goes on after its last reply until every accepted transaction is in a block
(:func:`wait_for_blocks`, at most :data:`BLOCK_WAIT_US`), and its messages, hashes, CPU and
storage include that second level; a run whose transactions never reach a block is not live.

Compute fairness: every system pays the same client-signature work, one signature per
transaction and one check per transaction at every node that accepts it (a block holding it, or
a PBFT request); :func:`cpu_breakdown` keeps that apart from the protocol's own signatures.

Every column comes from runs of :func:`medbench.experiments.build_simulator`:

* **nodes needed** — :func:`nodes_needed` tries ``n = 1, 2, ...``: a trial *starts* when the
  protocol's own rules accept ``n`` members (MDSM refuses fewer than 121), is *live* when every
  submitted transaction completes, and must then survive the ``required_faults`` crashes of the
  paper configuration (1 for Medical Chain, whose point is ``f >= 1``; 0 for the others). The
  first trial that passes is the answer; every trial is kept (so ``n = 3`` PBFT shows 0 faults).
* **faults tolerated** — :func:`faults_tolerated` crashes ``k = 0, 1, ...`` nodes at time 0 in
  the system's crash order (clients submit at the nodes crashed last) until a run loses
  liveness; the answer is the last ``k`` that stayed live.
* **pays rewards** — block rewards + fees per committed transaction (the chain's own accounting,
  ``stats()``), > 0 means yes; a protocol without a currency pays nothing.
* **compute demand** — hash evaluations per committed transaction, every node counted by the
  rule of :mod:`medbench.hashwork` (transaction IDs, Merkle roots, block IDs, protocol
  digests, MACs, mining trials), and CPU ms per committed transaction: the simulator's CPU time
  (signatures, hashes, message handling, and PoI's learning charged as ``flop``) plus the
  modeled mining trials at the profile's SHA-256 cost. ``large`` when the CPU time reaches that
  of :data:`LARGE_HASHES_PER_TX` SHA-256 evaluations (:func:`large_cpu_ms`), else ``small``;
  ``learn_ms_per_tx`` shows the learning part.
* **blockchain** — every live replica re-checks its chain after the run (each block names its
  predecessor's ID and recomputes to its Merkle root and ID) and holds at least one block.
* **family** — observed (:func:`observed_family`): PoX when producers are chosen by a lottery of
  work (mining trials spent) or by stake (the election follows the vote weights); BFT when every
  decision was backed by signed votes of more than two thirds of the identified validators.
* **vote weights** — observed for a protocol with a weight parameter (MDSM: equal and skewed
  weights elect different block producers, :func:`vote_weights`); *declared* "no" for the
  others, which have no weight to vary.
* **consensus** — the protocol's name: *declared*, shown as such and never marked.
* extra columns the paper lacks: throughput, median latency, storage per node (common
  configuration) and faults tolerated (minimal configuration). Storage is read after
  :meth:`~medbench.sim.engine.Simulator.drain` let every replica catch up with the last commit:
  the canonical encodings of the blocks and transactions each live node keeps (and PBFT's
  protocol log), averaged over the live nodes.

:func:`compare` sets the measured table beside the paper's: a match mark per cell and a one-line
reason for each mismatch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from medbench import experiments as ex
from medbench import hashwork, metrics
from medbench.consensus.baselines import REGISTRY
from medbench.consensus.baselines.common import MembershipError
from medbench.sim.costs import CostProfile

LARGE_HASHES_PER_TX = 1_000_000
"""Compute demand is ``large`` at or above the CPU time of this many SHA-256 evaluations per
committed transaction (:func:`large_cpu_ms`)."""


def large_cpu_ms(profile: CostProfile) -> float:
    """The ``large`` threshold in CPU ms per committed transaction under ``profile``."""
    return LARGE_HASHES_PER_TX * profile.unit_ns("hash") / 1e6


def compute_demand(cpu_ms_per_tx: float, profile: CostProfile) -> str:
    """``large`` or ``small`` for a measured CPU time per committed transaction."""
    return "large" if cpu_ms_per_tx >= large_cpu_ms(profile) else "small"


COLUMNS = (
    "blockchain",
    "consensus",
    "family",
    "pays_rewards",
    "nodes_needed",
    "compute_demand",
    "vote_weights",
)
"""The paper's columns (after the system name)."""

EXTRA_COLUMNS = (
    "faults_tolerated",
    "throughput_tps",
    "latency_ms_p50",
    "storage_kb_per_node",
    "hashes_per_tx",
    "cpu_ms_per_tx",
    "learn_ms_per_tx",
    "rewards_per_tx",
)
"""Measured columns the paper lacks."""


@dataclass(frozen=True, slots=True)
class System:
    """One row of Table 1: the protocol that implements a system and how to configure it."""

    key: str
    name: str
    protocol: str
    consensus: str
    family: str
    paper_options: Mapping[str, Any] = field(default_factory=dict)
    required_faults: int = 0
    crash_first: tuple[int, ...] = ()
    in_paper: bool = True
    quorum_safety: bool = False
    run_options: Mapping[str, Any] = field(default_factory=dict)  # every run of this row
    variant_of: str = ""  # the key of the row this one varies (one setting changed)

    def options_for(self, n: int) -> dict[str, Any]:
        """Protocol options for a run with ``n`` nodes at the common configuration."""
        if self.protocol == "dpos":
            auditors = max(1, n // 4)
            return {"delegates": n - auditors, "auditors": auditors}
        return {}

    def crash_order(self, n: int) -> list[int]:
        """Nodes in the order a fault search crashes them."""
        first = [i for i in self.crash_first if i < n]
        return first + [i for i in range(n - 1, -1, -1) if i not in first]


MEDICAL_CHAIN: dict[str, Any] = {
    "block_mode": "blocker",
    "block_size": 100,
    "block_interval_us": 1_000_000,
}
"""Medical Chain as PAPER.md §1.5 builds it: PBFT accepts transactions, then the blocker
``B = L mod (N - 1)`` packs up to ``block_size`` accepted IDs into a BLOCK that PBFT orders again.
The paper blocks "after a while (e.g. 10 minutes)"; the interval is 1 s here so that a
workload of a few seconds yields blocks (each costs one more PBFT round, shared by its
transactions)."""

BLOCK_WAIT_US = 30_000_000
"""How long a blocker-mode run may go on after its last reply until every accepted transaction
is in a block (a crashed blocker costs a block interval plus a view change, per turn)."""

SYSTEMS: tuple[System, ...] = (
    System("mdsm", "MDSM", "dpos", "improved DPoS", "PoX", {"delegates": 101, "auditors": 20}),
    System("medrec", "MedRec", "pow", "PoW", "PoX"),
    System("modelchain", "ModelChain", "poi", "PoI", "PoX"),
    System(
        "medicalchain",
        "Medical Chain",
        "pbft",
        "improved PBFT",
        "BFT",
        required_faults=1,
        quorum_safety=True,
        # the paper's two levels: PBFT orders transactions, then the rotating blocker's BLOCK
        run_options=MEDICAL_CHAIN,
    ),
    System(
        "central",
        "Central relay (§2)",
        "central",
        "none (relay)",
        "none",
        crash_first=(0,),
        in_paper=False,
    ),
    System("poa", "MedRec 2.0 (PoA)", "poa", "PoA (Clique)", "PoA", in_paper=False),
    System(
        "medicalchain_macs",
        "Medical Chain, MAC authenticators (variant)",
        "pbft",
        "improved PBFT, MACs",
        "BFT",
        required_faults=1,
        in_paper=False,
        quorum_safety=True,
        # TOCS §3's authenticators between replicas; requests stay signed by their clients
        run_options={**MEDICAL_CHAIN, "auth": "macs", "client_signatures": 1},
        variant_of="medicalchain",
    ),
    System(
        "medicalchain_integrated",
        "Medical Chain, integrated blocks (variant)",
        "pbft",
        "improved PBFT, one block per batch",
        "BFT",
        required_faults=1,
        in_paper=False,
        quorum_safety=True,
        run_options={**MEDICAL_CHAIN, "block_mode": "integrated"},
        variant_of="medicalchain",
    ),
)
"""The compared systems, in the paper's row order, then the extra rows and the variants."""

PAPER: dict[str, dict[str, str]] = {
    "mdsm": {"blockchain": "yes", "consensus": "improved DPoS", "family": "PoX",
             "pays_rewards": "no", "nodes_needed": "121", "compute_demand": "small",
             "vote_weights": "yes"},
    "medrec": {"blockchain": "yes", "consensus": "PoW", "family": "PoX", "pays_rewards": "yes",
               "nodes_needed": "many", "compute_demand": "large", "vote_weights": "no"},
    "modelchain": {"blockchain": "yes", "consensus": "PoI", "family": "PoX",
                   "pays_rewards": "yes", "nodes_needed": "many", "compute_demand": "large",
                   "vote_weights": "no"},
    "medicalchain": {"blockchain": "yes", "consensus": "improved PBFT", "family": "BFT",
                     "pays_rewards": "no", "nodes_needed": "few, at least 4",
                     "compute_demand": "small", "vote_weights": "no"},
}  # fmt: skip
"""PAPER.md §1.8 Table 1, cell by cell."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Workload and search bounds of a Table 1 measurement."""

    seed: int = 1
    txs: int = 200
    rate_tps: float = 50.0
    tx_bytes: int = 200
    common_n: int = 16
    max_n: int = 130
    duration_ms: int = 600_000
    profile: CostProfile | None = None  # None: CostProfile.default()

    def cost_profile(self) -> CostProfile:
        """The CPU cost profile of every run."""
        return self.profile if self.profile is not None else CostProfile.default()

    @classmethod
    def quick(cls, seed: int = 1, profile: CostProfile | None = None) -> Settings:
        """Smaller workload and common configuration (``--quick``)."""
        return cls(seed=seed, txs=12, rate_tps=20.0, common_n=7, profile=profile)


@dataclass(slots=True)
class Trial:
    """One run of a search: did it start, stay live; what it measured."""

    system: str
    n: int
    crashed: int
    started: bool
    live: bool
    reason: str = ""
    row: dict[str, Any] = field(default_factory=dict)
    tolerated: int | None = None  # faults the membership tolerates (set by the searches)
    nodes: list[dict[str, Any]] = field(default_factory=list)  # metrics.node_table of the run


def run_params(
    system: System, n: int, options: Mapping[str, Any], s: Settings, crashed: int = 0
) -> dict[str, Any]:
    """The simulator parameters of one run (workload mapped to the protocol's names)."""
    p: dict[str, Any] = {
        "protocol": system.protocol,
        "n": n,
        "tick_us": 0,
        "duration_ms": s.duration_ms,
        **system.run_options,
        **options,
    }
    order = system.crash_order(n)
    dead = order[:crashed]
    if dead:
        p["faults"] = ";".join(f"crash:{i}@0" for i in dead)
    if system.protocol == "pbft":
        # Clients are separate nodes (never crashed); four closed loops keep the pipeline busy.
        p.update(
            requests=s.txs,
            interval_us=int(1e6 / s.rate_tps),
            payload_bytes=s.tx_bytes,
            clients=4,
            tick_us=1000,
        )
    else:
        # One client at the first eligible node, which every crash order crashes last: a
        # transaction left open then means lost liveness, not a crashed entry point.
        p.update(txs=s.txs, rate_tps=s.rate_tps, tx_bytes=s.tx_bytes, clients=1)
    return p


def measure(
    system: System,
    n: int,
    options: Mapping[str, Any],
    s: Settings,
    crashed: int = 0,
    profile: CostProfile | None = None,
) -> Trial:
    """Run ``system`` with ``n`` nodes and ``crashed`` nodes down from time 0.

    ``profile`` overrides the settings' cost profile.
    """
    profile = profile if profile is not None else s.cost_profile()
    params = run_params(system, n, options, s, crashed)
    try:
        sim, dep = ex.build_simulator(params, s.seed, profile)
    except (MembershipError, ex.ExperimentError, ValueError) as exc:
        return Trial(system.key, n, crashed, False, False, f"refused to start: {exc}")
    t0 = time.perf_counter()
    record = sim.run(int(s.duration_ms) * 1000, stop_when_complete=True)
    replicas = [r for r in record.replicas if r < sim.n] or list(range(sim.n))
    done = len(record.completed) == len(record.submitted) > 0
    left, waited = wait_for_blocks(sim, replicas) if done else (0, 0)
    if waited:
        record = sim.snapshot()  # the second level's work (BLOCKs ordered again) included
    row = metrics.summarize(record, dep.checkers)
    row["wall_s"] = time.perf_counter() - t0
    row["block_wait_ms"] = waited / 1000
    row["unblocked_left"] = left
    row.update(_node_figures(sim, record, profile))
    live = bool(row["liveness"]) and row["completed"] > 0 and left == 0
    if left:
        row["liveness_reason"] = f"{left} accepted transaction(s) left outside blocks"
    nodes = metrics.node_table(record)  # CPU up to the last completion (or block), like the row
    # Storage and chains are read once the other replicas caught up with the last commit.
    row["drain_ms"] = sim.drain(replicas) / 1000 if live else 0.0
    after = sim.snapshot()
    row.update(_storage_and_chains(sim, after, replicas))
    for node_row in metrics.node_table(after):
        mine = nodes[node_row["node"]]
        for key in [k for k in mine if k.startswith("storage_bytes")]:
            del mine[key]
        mine.update({k: v for k, v in node_row.items() if k.startswith("storage_bytes")})
        mine["alive"] = sim.alive(node_row["node"])
    row["params"] = params
    reason = "" if live else str(row.get("liveness_reason") or "nothing committed")
    return Trial(system.key, n, crashed, True, live, reason, row, nodes=nodes)


def wait_for_blocks(
    sim: Any, replicas: Sequence[int], max_us: int = BLOCK_WAIT_US, chunk_us: int = 100_000
) -> tuple[int, int]:
    """Run on until no live replica holds an accepted transaction outside a block.

    Only nodes with an ``unblocked()`` count (PBFT in blocker mode: transactions are replied to
    once accepted, and blocked later) can make this wait. Returns (transactions still
    unblocked after ``max_us``, virtual microseconds waited).
    """

    def left() -> int:
        total = 0
        for r in replicas:
            count = getattr(sim.nodes[r], "unblocked", None)
            if callable(count) and sim.alive(r):
                total += int(count())
        return total

    start = sim.now
    waiting = left()
    while waiting and sim.now - start < max_us:
        sim.run(sim.now + chunk_us)
        waiting = left()
    return waiting, sim.now - start


def _node_figures(sim: Any, record: metrics.RunRecord, profile: CostProfile) -> dict[str, Any]:
    """Money, hashes, CPU, votes and producers per committed transaction from the nodes."""
    done = max(1, len(metrics.latencies_us(record)))
    money = 0
    mining = 0
    flops = 0
    by_kind = dict.fromkeys(hashwork.CATEGORIES, 0)
    decisions = 0
    votes_min = 0
    validators = 0
    producers: set[int] = set()
    client_signs = client_verifies = 0
    signers = 0  # nodes that made protocol signatures (client signatures excluded)
    for i, node in enumerate(sim.nodes):
        stats = getattr(node, "stats", None)
        if not callable(stats):
            continue
        st = stats()
        signs = int(st.get("tx_sign_ops", 0)) + int(st.get("client_sig_signs", 0))
        client_signs += signs
        client_verifies += int(st.get("tx_verify_ops", 0)) + int(st.get("client_sig_verifies", 0))
        if i in record.replicas and record.op_counts.get(i, {}).get("sign", 0) > signs:
            signers += 1
        if st.get("decisions", 0) > 0:
            decisions += int(st["decisions"])
            got = int(st["finality_votes_min"])
            votes_min = got if votes_min == 0 else min(votes_min, got)
            validators = max(validators, int(st.get("validators", 0)))
        producers.update(getattr(node, "producers", ()))
        for kind in by_kind:
            by_kind[kind] += int(st.get(f"hash.{kind}", 0))
        mining += int(st.get("hash_mining", 0))
        flops += int(st.get("train_flops", 0)) + int(st.get("validate_flops", 0))
        if sim.alive(i):
            # Every live full node sees the same final chain: take the richest view.
            money = max(money, int(st.get("rewards_paid", 0)) + int(st.get("fees_paid", 0)))
    charged = sum(c.get("hash", 0) for c in record.op_counts.values())
    cpu_ns = sum(sum(ops.values()) for ops in record.cpu_ns.values())
    cpu_ns += int(mining * profile.unit_ns("hash"))
    replicas = [r for r in record.replicas if r < sim.n] or list(range(sim.n))
    blocks = any(record.commits.get(r) for r in replicas)
    return {
        **{f"hash_per_tx.{k}": v / done for k, v in by_kind.items()},
        "hashes_per_tx": (charged + mining) / done,
        "mining_hashes_per_tx": mining / done,
        "flops_per_tx": flops / done,
        "learn_ms_per_tx": flops * profile.unit_ns("flop") / 1e6 / done,
        "cpu_ms_per_tx": cpu_ns / 1e6 / done,
        "rewards_per_tx": money / done,
        "committed_blocks": blocks,
        "decisions": decisions,
        "finality_votes_min": votes_min,
        "validators": validators,
        "producers": ",".join(map(str, sorted(producers))),
        "signing_nodes": signers,
        "client_sig_signs_per_tx": client_signs / done,
        "client_sig_verifies_per_tx": client_verifies / done,
        **cpu_breakdown(record, client_signs, client_verifies, profile, done, mining),
    }


BREAKDOWN = (
    "sign_client",
    "sign_protocol",
    "verify_client",
    "verify_protocol",
    "hash",
    "flop",
    "message",
    "send",
    "mining",
)
"""CPU ms per committed transaction by operation (:func:`cpu_breakdown`), in report order."""


def cpu_breakdown(
    record: metrics.RunRecord,
    client_signs: int,
    client_verifies: int,
    profile: CostProfile,
    done: int,
    mining: int = 0,
) -> dict[str, float]:
    """CPU ms per committed transaction by operation, summed over every node (clients too).

    ``sign``/``verify`` are split into the client signatures on transactions (the same rule for
    every system: one signature per transaction, one check per transaction at each node that
    accepts it) and the protocol's own (PBFT's signed messages, block seals, audits);
    ``message`` is receiving and decoding, ``send`` encoding and sending; ``mining`` the
    modeled nonce trials (off the node's CPU, in the compute demand). Keys ``cpu_ms.<op>``, and
    ``cpu_ms_busiest_node`` for the busiest node's total.
    """
    by_op: dict[str, int] = {}
    busiest = 0
    for ops in record.cpu_ns.values():
        busiest = max(busiest, sum(ops.values()))
        for op, ns in ops.items():
            by_op[op] = by_op.get(op, 0) + ns
    per = max(1, done) * 1e6
    sign_c = client_signs * profile.unit_ns("sign")
    verify_c = client_verifies * profile.unit_ns("verify")
    out = {
        "sign_client": sign_c,
        "sign_protocol": by_op.get("sign", 0) - sign_c,
        "verify_client": verify_c,
        "verify_protocol": by_op.get("verify", 0) - verify_c,
        "hash": by_op.get("hash", 0),
        "flop": by_op.get("flop", 0),
        "message": by_op.get("message", 0),
        "send": by_op.get("send", 0),
        "mining": mining * profile.unit_ns("hash"),
    }
    known = {"sign", "verify", "hash", "flop", "message", "send"}
    other = sum(ns for op, ns in by_op.items() if op not in known)
    got = {f"cpu_ms.{k}": v / per for k, v in out.items()}
    got["cpu_ms.other"] = other / per
    got["cpu_ms_busiest_node"] = busiest / per
    return got


def _storage_and_chains(
    sim: Any, record: metrics.RunRecord, replicas: Sequence[int]
) -> dict[str, Any]:
    """Encoded bytes stored per live replica (mean, by category) and the chain re-check."""
    live = [r for r in replicas if sim.alive(r)] or list(replicas)
    cats: dict[str, int] = {}
    for r in live:
        for cat, b in record.storage.get(r, {}).items():
            cats[cat] = cats.get(cat, 0) + int(b)
    per = max(1, len(live))
    chain_blocks, chain_fault = _verify_chains(sim, replicas)
    return {
        "storage_kb_per_node": sum(cats.values()) / per / 1024,
        **{f"storage_kb.{c}": b / per / 1024 for c, b in sorted(cats.items())},
        "chain_blocks_min": chain_blocks,
        "chain_fault": chain_fault,
    }


def _verify_chains(sim: Any, replicas: Sequence[int]) -> tuple[int, str]:
    """Re-check every live replica's chain: (fewest blocks on one, first fault or "")."""
    fewest: int | None = None
    for r in replicas:
        verify = getattr(sim.nodes[r], "verify_chain", None)
        if not sim.alive(r) or not callable(verify):
            continue
        count, fault = verify()
        if fault is not None:
            return int(count), f"node {r}: {fault}"
        fewest = int(count) if fewest is None else min(fewest, int(count))
    return (fewest or 0), ""


def liveness_timeout_ms(first: Trial, n: int, crashed: int, s: Settings) -> int:
    """How long a run with ``crashed`` nodes down may take before liveness counts as lost.

    Four times the crash-free run's slowest latency, scaled by ``n / (n - crashed)`` (a
    proof-of-work network loses that share of its hash power), after the workload's span;
    never more than four times ``s.duration_ms``.
    """
    lat_ms = float(first.row.get("latency_ms_p99", 0.0) or 0.0)
    span_ms = 1000.0 * s.txs / s.rate_tps
    scale = n / max(1, n - crashed)
    return int(min(4 * s.duration_ms, span_ms + 4.0 * max(lat_ms, 100.0) * scale + 1000.0))


def quorum_bound(n: int, crash_live: int) -> int:
    """Byzantine faults a vote-quorum protocol survives, from its measured crash tolerance.

    A run stays live with ``crash_live`` replicas down, so ``q = n - crash_live`` votes make a
    decision; two such quorums share ``2q - n`` replicas, and safety against ``k`` Byzantine
    replicas needs ``2q - n >= k + 1`` (one honest replica in every intersection).
    """
    q = n - crash_live
    return max(0, min(crash_live, 2 * q - n - 1))


def faults_tolerated(
    system: System, n: int, options: Mapping[str, Any], s: Settings
) -> tuple[int, list[Trial]]:
    """Faults ``system`` tolerates with ``n`` nodes, and every trial.

    Crashes 0, 1, ... nodes until liveness is lost; for a vote-quorum protocol
    (``quorum_safety``) the answer is then capped by :func:`quorum_bound`. ``-1`` when even the
    crash-free run is not live.
    """
    trials: list[Trial] = []
    best = -1
    first: Trial | None = None
    for k in range(n + 1):
        run_s = s
        if first is not None and k > 0:
            run_s = replace(s, duration_ms=liveness_timeout_ms(first, n, k, s))
        t = measure(system, n, options, run_s, crashed=k)
        trials.append(t)
        if first is None:
            first = t
        if not t.live:
            break
        best = k
    if system.quorum_safety and best >= 0:
        best = quorum_bound(n, best)
    return best, trials


def nodes_needed(system: System, s: Settings) -> tuple[int | None, list[Trial]]:
    """The smallest ``n`` that starts, stays live and tolerates ``required_faults`` faults."""
    trials: list[Trial] = []
    for n in range(1, s.max_n + 1):
        if not system.required_faults:
            t = measure(system, n, system.paper_options, s)
            trials.append(t)
            if t.live:
                return n, trials
            continue
        k, ft = faults_tolerated(system, n, system.paper_options, s)
        for t in ft:
            t.tolerated = k
        trials.extend(ft)
        if k >= system.required_faults:
            return n, trials
    return None, trials


def vote_weights(system: System, s: Settings) -> tuple[bool | None, str]:
    """Whether the election outcome depends on per-member vote weights, and the evidence.

    Observed for a protocol with a weight parameter (MDSM): two runs at the common size with
    half the candidates' seats to fill, equal weights and weights favouring the upper half;
    "used" when the producers of the committed blocks differ. ``None`` (declared) for a protocol
    without a weight parameter: there is no weight to vary.
    """
    spec = REGISTRY.get(system.protocol)
    if spec is None or not spec.vote_weights:
        what = spec.system if spec is not None else system.name
        return None, f"{what}: no vote weight parameter, every member counts once (declared)"
    n = s.common_n
    auditors = max(1, n // 4)
    candidates = n - auditors
    opts = {"delegates": max(1, candidates // 2), "auditors": auditors}
    skewed = tuple(5 if candidates // 2 <= i < candidates else 1 for i in range(n))
    equal = measure(system, n, opts, s)
    heavy = measure(system, n, {**opts, "weights": skewed}, s)
    a, b = equal.row.get("producers", ""), heavy.row.get("producers", "")
    if not (equal.live and heavy.live and a and b):
        return False, "weights runs did not commit blocks: no evidence of use"
    return a != b, f"block producers {{{a}}} with equal weights, {{{b}}} with skewed weights"


def observed_family(row: Mapping[str, Any], weights_used: bool | None) -> tuple[str, str]:
    """The consensus family a run shows, and the evidence (PAPER.md §1.8's two families).

    PoX: the block producer is chosen by a lottery of work (mining trials were spent) or by
    stake (the election outcome follows vote weights). BFT: otherwise, every decision was backed
    by signed votes of more than two thirds of the identified validators. PoA: blocks sealed by
    identified authorities, final by depth. ``none``: no vote, no lottery, no seal.
    """
    mining = float(row.get("mining_hashes_per_tx", 0.0))
    decisions = int(row.get("decisions", 0))
    votes, validators = int(row.get("finality_votes_min", 0)), int(row.get("validators", 0))
    quorum = bool(decisions) and 3 * votes > 2 * validators > 0
    seen = (
        f"each of {decisions} decisions had >= {votes} of {validators} identified validators' votes"
    )
    if mining > 0:
        return "PoX", f"leader by work lottery: {mining:.3g} mining trials per committed tx"
    if weights_used:
        also = f"; finality by vote quorum too ({seen})" if quorum else ""
        return "PoX", f"producers elected by weighted (stake) votes{also}"
    if quorum:
        return "BFT", f"finality by vote quorum: {seen}"
    if int(row.get("signing_nodes", 0)) > 0:
        return "PoA", "blocks sealed by identified authorities; final by depth, no vote quorum"
    return "none", "no votes, no mining, no block seals: a relay"


@dataclass(slots=True)
class Row:
    """A measured Table 1 row with its evidence."""

    system: System
    cells: dict[str, str]
    extras: dict[str, Any]
    search: list[Trial]
    faults: list[Trial]
    common: Trial
    minimal: Trial
    common_faults: int = -1
    large_cpu_ms: float = 0.0  # the compute-demand threshold of the run's cost profile
    evidence: dict[str, str] = field(default_factory=dict)  # column -> how it was observed
    declared: set[str] = field(default_factory=set)  # columns declared, not measured


def measure_system(system: System, s: Settings) -> Row:
    """Every column of ``system``'s row (see the module docstring)."""
    needed, search = nodes_needed(system, s)
    n_min = needed if needed is not None else s.max_n
    fault_trials = [t for t in search if t.n == n_min and t.tolerated is not None]
    if fault_trials:
        tolerated = int(fault_trials[0].tolerated or 0)
    else:
        tolerated, fault_trials = faults_tolerated(system, n_min, system.paper_options, s)
        for t in fault_trials:
            t.tolerated = tolerated
    minimal = fault_trials[0]
    common = measure(system, s.common_n, system.options_for(s.common_n), s)
    ref = common if common.live else minimal
    r = ref.row
    hashes = float(r.get("hashes_per_tx", 0.0))
    cpu_ms = float(r.get("cpu_ms_per_tx", 0.0))
    weights, weights_why = vote_weights(system, s)
    family, family_why = observed_family(r, weights)
    linked = int(r.get("chain_blocks_min", 0)) > 0 and not r.get("chain_fault")
    cells = {
        "blockchain": "yes" if linked and r.get("chain", True) else "no",
        "consensus": system.consensus,
        "family": family,
        "pays_rewards": "yes" if float(r.get("rewards_per_tx", 0.0)) > 0 else "no",
        "nodes_needed": str(needed) if needed is not None else f">{s.max_n}",
        "compute_demand": compute_demand(cpu_ms, s.cost_profile()),
        "vote_weights": "yes" if weights else "no",
    }
    chain_why = (
        f"every live replica re-checked its chain: >= {r.get('chain_blocks_min', 0)} blocks, "
        "each naming its predecessor's ID and recomputing to its Merkle root and ID"
        if linked
        else f"chain check failed: {r.get('chain_fault') or 'no block committed'}"
    )
    evidence = {
        "blockchain": chain_why,
        "consensus": "declared: the protocol's name, not a measurement",
        "family": family_why,
        "vote_weights": weights_why,
        "storage_kb_per_node": "per live node after the run drained, encoded bytes: "
        + ", ".join(
            f"{k.removeprefix('storage_kb.')} {v:.3g} KB"
            for k, v in sorted(common.row.items())
            if k.startswith("storage_kb.")
        ),
    }
    declared = {"consensus"} | ({"vote_weights"} if weights is None else set())
    extras = {
        "faults_tolerated": tolerated,
        "throughput_tps": float(common.row.get("throughput_tps", 0.0)),
        "latency_ms_p50": float(common.row.get("latency_ms_p50", float("nan"))),
        "storage_kb_per_node": float(common.row.get("storage_kb_per_node", 0.0)),
        "hashes_per_tx": hashes,
        "cpu_ms_per_tx": cpu_ms,
        "learn_ms_per_tx": float(r.get("learn_ms_per_tx", 0.0)),
        "rewards_per_tx": float(r.get("rewards_per_tx", 0.0)),
    }
    return Row(
        system,
        cells,
        extras,
        search,
        fault_trials,
        common,
        minimal,
        large_cpu_ms=large_cpu_ms(s.cost_profile()),
        evidence=evidence,
        declared=declared,
    )


def available(systems: Sequence[System] = SYSTEMS) -> list[System]:
    """The systems whose protocol is registered in the simulator."""
    names = set(ex.protocols())
    return [s for s in systems if s.protocol in names]


def measure_table(
    s: Settings,
    systems: Sequence[System] = SYSTEMS,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Measure every available system (see :func:`measure_system`)."""
    rows = []
    for system in available(systems):
        if progress is not None:
            progress(system.name)
        rows.append(measure_system(system, s))
    return rows


def _paper_match(key: str, column: str, measured: str) -> bool:
    paper = PAPER[key][column]
    if column == "nodes_needed":
        if paper == "many":
            return False  # a number can never be "many"; the reason line says why
        if paper.startswith("few"):
            return measured.isdigit() and int(measured) == 4
    return measured == paper


def mismatch_reason(row: Row, column: str) -> str:
    """One line on why the measured cell differs from the paper's."""
    x = row.extras
    if column == "nodes_needed" and PAPER[row.system.key][column] == "many":
        return (
            f"{row.cells[column]} node(s) start and commit; the paper's 'many' is about "
            f"safety (honest hash-power majority), not about starting; tolerates "
            f"{x['faults_tolerated']} crash(es) at that size"
        )
    if column == "pays_rewards":
        return f"measured {x['rewards_per_tx']:.3g} units paid per committed transaction"
    if column == "compute_demand":
        return (
            f"measured {x['cpu_ms_per_tx']:.3g} CPU ms/tx ({x['hashes_per_tx']:.3g} hashes, "
            f"{x['learn_ms_per_tx']:.3g} ms learning) against the threshold "
            f"{row.large_cpu_ms:.3g} ms (the time of {LARGE_HASHES_PER_TX:.0e} hashes)"
        )
    return f"measured {row.cells[column]!r}, paper {PAPER[row.system.key][column]!r}"


@dataclass(slots=True)
class Comparison:
    """Measured cells beside the paper's: ``marks[key][column]`` and reasons for mismatches."""

    marks: dict[str, dict[str, bool]]
    reasons: dict[str, dict[str, str]]


def compare(rows: Sequence[Row]) -> Comparison:
    """Mark each measured paper cell as matched or not, with a reason for every mismatch.

    Declared cells (:attr:`Row.declared`) get no mark: they cannot fail.
    """
    marks: dict[str, dict[str, bool]] = {}
    reasons: dict[str, dict[str, str]] = {}
    for row in rows:
        if row.system.key not in PAPER:
            continue
        k = row.system.key
        marks[k] = {}
        reasons[k] = {}
        for col in COLUMNS:
            if col in row.declared:
                continue
            ok = _paper_match(k, col, row.cells[col])
            marks[k][col] = ok
            if not ok:
                reasons[k][col] = mismatch_reason(row, col)
    return Comparison(marks, reasons)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def markdown(rows: Sequence[Row], cmp: Comparison | None = None) -> str:
    """The measured table (match marks on paper rows), the paper's table and the reasons."""
    cmp = cmp if cmp is not None else compare(rows)
    head = ["System", *COLUMNS, *EXTRA_COLUMNS]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = []
        for col in COLUMNS:
            mark = ""
            if col in row.declared:
                mark = " (declared)"
            elif row.system.key in cmp.marks:
                mark = " ✓" if cmp.marks[row.system.key][col] else " ✗"
            cells.append(row.cells[col] + mark)
        extras = [_fmt(row.extras[c]) for c in EXTRA_COLUMNS]
        out.append("| " + " | ".join([row.system.name, *cells, *extras]) + " |")
    out.append("")
    out.append("Paper (PAPER.md §1.8):")
    out.append("")
    out.append("| System | " + " | ".join(COLUMNS) + " |")
    out.append("|" + "---|" * (len(COLUMNS) + 1))
    names = {s.key: s.name for s in SYSTEMS}
    for key, cells_ in PAPER.items():
        out.append("| " + " | ".join([names[key], *(cells_[c] for c in COLUMNS)]) + " |")
    out.append("")
    threshold = rows[0].large_cpu_ms if rows else large_cpu_ms(CostProfile.default())
    out.append(
        f"Compute demand is 'large' when the CPU time per committed transaction (cpu_ms_per_tx: "
        f"hashing, mining trials included at the profile's SHA-256 cost; signatures; message "
        f"handling; learning, learn_ms_per_tx) reaches {threshold:.3g} ms, the time of "
        f"{LARGE_HASHES_PER_TX:.0e} SHA-256 evaluations, else 'small'. hashes_per_tx counts "
        "every node's evaluations by one rule (transaction IDs, Merkle roots, block IDs, "
        "protocol digests, MACs, mining trials). Extra columns: faults_tolerated at the minimal "
        "configuration; throughput, latency and storage at the common configuration."
    )
    out.append("")
    out.append(
        "How the observed cells were measured ((declared) cells are the protocol's own "
        "description and carry no match mark):"
    )
    out.append("")
    for row in rows:
        for col, why in row.evidence.items():
            if col not in row.declared or col != "consensus":
                out.append(f"- {row.system.name} / {col}: {why}")
    out.append("")
    out.append("CPU per committed transaction by operation (common configuration):")
    out.append("")
    out.append(breakdown_markdown(rows).rstrip("\n"))
    mism = [
        f"- {names[k]} / {col}: {why}"
        for k, cols in cmp.reasons.items()
        for col, why in cols.items()
    ]
    if mism:
        out.append("")
        out.append("Mismatches:")
        out.extend(mism)
    return "\n".join(out) + "\n"


def breakdown_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """CPU ms per committed transaction by operation at the common configuration, per system.

    Summed over every node (PBFT's clients included), from :func:`cpu_breakdown`; with the
    signature operations per transaction behind the ``sign``/``verify`` columns, messages per
    transaction and the busiest node's total.
    """
    out = []
    for row in rows:
        r = row.common.row
        done = max(1, int(r.get("completed", 0)))
        counts: dict[str, int] = {}
        for node in row.common.nodes:
            for key, v in node.items():
                if key.startswith("count."):
                    counts[key[6:]] = counts.get(key[6:], 0) + int(v)
        client_v = float(r.get("client_sig_verifies_per_tx", 0.0))
        d: dict[str, Any] = {"system": row.system.name, "n": row.common.n}
        for op in BREAKDOWN:
            d[f"{op}_ms"] = float(r.get(f"cpu_ms.{op}", 0.0))
        d["total_ms"] = float(r.get("cpu_ms_per_tx", 0.0))
        d["busiest_node_ms"] = float(r.get("cpu_ms_busiest_node", 0.0))
        d["client_verifies_per_tx"] = client_v
        d["protocol_verifies_per_tx"] = counts.get("verify", 0) / done - client_v
        d["protocol_signs_per_tx"] = counts.get("sign", 0) / done - float(
            r.get("client_sig_signs_per_tx", 0.0)
        )
        d["msgs_per_tx"] = float(r.get("msgs_per_tx", 0.0))
        out.append(d)
    return out


def breakdown_markdown(rows: Sequence[Row]) -> str:
    """:func:`breakdown_rows` as a markdown table with a note on what each column charges."""
    flat = breakdown_rows(rows)
    if not flat:
        return ""
    head = list(flat[0])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in flat:
        out.append("| " + " | ".join(_fmt(d[k]) for k in head) + " |")
    out.append("")
    out.append(
        "CPU ms per committed transaction at the common configuration, summed over every node "
        "(PBFT's clients included). Client signatures follow one rule in every row: the client "
        "signs each transaction once (sign_client) and each node that accepts a block, or each "
        "PBFT replica, verifies it once (verify_client). sign/verify_protocol are the "
        "protocol's own signatures (PBFT signs every message, PAPER.md §1.1; MDSM signs blocks "
        "and audits; Clique seals blocks); message = receiving and decoding, send = encoding "
        "and sending; mining = modeled nonce trials (off the node's CPU)."
    )
    return "\n".join(out) + "\n"


def table_rows(rows: Sequence[Row], cmp: Comparison | None = None) -> list[dict[str, Any]]:
    """Flat rows (one per system) for CSV: cells, paper cells, marks, reasons, extras."""
    cmp = cmp if cmp is not None else compare(rows)
    flat = []
    for row in rows:
        d: dict[str, Any] = {"system": row.system.name, "protocol": row.system.protocol}
        for col in COLUMNS:
            d[col] = row.cells[col]
            d[f"paper_{col}"] = PAPER.get(row.system.key, {}).get(col, "")
            d[f"match_{col}"] = cmp.marks.get(row.system.key, {}).get(col, "")
            d[f"reason_{col}"] = cmp.reasons.get(row.system.key, {}).get(col, "")
            d[f"how_{col}"] = row.evidence.get(col, "measured")
            d[f"declared_{col}"] = col in row.declared
        d.update(row.extras)
        flat.append(d)
    return flat


def trial_summary(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """:func:`trial_rows` with each run of consecutive refusals folded into one row."""
    out: list[dict[str, Any]] = []
    for t in trial_rows(rows):
        last = out[-1] if out else None
        if (
            last is not None
            and not t["started"]
            and not last["started"]
            and last["system"] == t["system"]
            and last["search"] == t["search"]
        ):
            first = str(last["n"]).split("..")[0]
            last["n"] = f"{first}..{t['n']}"
            last["reason"] = str(last["reason"]).split("; got ")[0]
            continue
        out.append(dict(t))
    return out


def trial_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Every search and fault trial as a flat row (for CSV)."""
    out = []
    for row in rows:
        for kind, trials in (("nodes_needed", row.search), ("faults", row.faults)):
            for t in trials:
                if kind == "faults" and any(t is u for u in row.search):
                    continue  # the search already ran these at the minimal size
                out.append(
                    {
                        "system": row.system.name,
                        "search": kind,
                        "n": t.n,
                        "crashed": t.crashed,
                        "started": t.started,
                        "live": t.live,
                        "reason": t.reason,
                        "tolerated": "" if t.tolerated is None else t.tolerated,
                        "completed": t.row.get("completed", 0),
                        "latency_ms_p50": t.row.get("latency_ms_p50", ""),
                    }
                )
    return out


__all__ = [
    "BLOCK_WAIT_US",
    "BREAKDOWN",
    "COLUMNS",
    "EXTRA_COLUMNS",
    "LARGE_HASHES_PER_TX",
    "MEDICAL_CHAIN",
    "PAPER",
    "SYSTEMS",
    "Comparison",
    "Row",
    "Settings",
    "System",
    "Trial",
    "breakdown_markdown",
    "breakdown_rows",
    "compare",
    "compute_demand",
    "cpu_breakdown",
    "faults_tolerated",
    "large_cpu_ms",
    "markdown",
    "measure",
    "measure_system",
    "measure_table",
    "nodes_needed",
    "observed_family",
    "table_rows",
    "trial_rows",
    "trial_summary",
    "vote_weights",
    "wait_for_blocks",
]
