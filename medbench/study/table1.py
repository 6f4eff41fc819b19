"""Table 1 of Medical Chain (docs/medical-chain.md §1.8), filled from simulator measurements.

Theory of operation
-------------------
Each compared system is a :class:`System`: the simulator protocol that implements it (MDSM ->
``dpos``, MedRec -> ``pow``, ModelChain -> ``poi``, Medical Chain -> ``pbft``, plus the central
relay of docs/medical-chain.md §2 -> ``central`` and MedRec 2.0's Clique -> ``poa`` as extra rows),
its paper configuration (MDSM: 101 delegates + 20 auditors; Medical Chain: tolerate ``f = 1``,
two-level blocks of :data:`MEDICAL_CHAIN`), and the order in which a fault search crashes its nodes
(the most damaging first where the roles differ: MDSM's auditors, the relay's central server).
*Variant* rows change one setting of Medical Chain: MAC authenticators between replicas
(requests still signed by their clients), and integrated blocks (each PBFT batch is a block).

Medical Chain's row runs as docs/medical-chain.md §1.5 builds it (``block_mode = blocker``): a
client's reply comes once PBFT accepted its transaction, and the rotating blocker's BLOCK is ordered
by PBFT later. So a run goes on after its last reply until every accepted transaction is in a block
(:func:`wait_for_blocks`, at most :data:`BLOCK_WAIT_US`), and its messages, hashes, CPU and
storage include that second level; a run whose transactions never reach a block is not live.

Compute fairness: every system pays the same client-signature work, one signature per
transaction and one check per transaction at every node that accepts it (a block holding it, or
a PBFT request); :func:`cpu_breakdown` keeps that apart from the protocol's own signatures.

Every column comes from runs of :func:`medbench.experiments.build_simulator`:

* **nodes needed** — :func:`nodes_needed` tries ``n = 1, 2, ...``: the smallest ``n`` that
  *starts* (the protocol's own rules accept ``n`` members: MDSM refuses fewer than 121), is
  *live* (every submitted transaction completes, crash-free) and, for a system whose paper
  configuration must tolerate ``required_faults`` Byzantine replicas (Medical Chain: f = 1, the
  paper's "at least 4"), stays *safe and live* with that many replicas playing each of the kit's
  Byzantine behaviours in turn (:data:`~medbench.study.systems.PBFT_BEHAVIOURS`, the most
  damaging first; the search moves on at the first behaviour a membership does not survive).
  Crash-free, PBFT is live at n = 2 and 3 too; what those memberships lack is tolerance of one
  Byzantine replica, and the trials show it. Every trial is kept.
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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from medbench import experiments as ex
from medbench.consensus.baselines import REGISTRY
from medbench.study.measure import (
    BREAKDOWN,
    cpu_breakdown,
    measure,
    run_params,
    wait_for_blocks,
)
from medbench.study.systems import (
    BLOCK_WAIT_US,
    COLUMNS,
    EXTRA_COLUMNS,
    LARGE_HASHES_PER_TX,
    MEDICAL_CHAIN,
    PAPER,
    PBFT_BEHAVIOURS,
    SYSTEMS,
    Row,
    Settings,
    System,
    Trial,
    compute_demand,
    large_cpu_ms,
)
from medbench.study.table1_text import (
    NODES_NEEDED_DEFINITION,
    Comparison,
    breakdown_markdown,
    breakdown_rows,
    compare,
    markdown,
    measured_where,
    mismatch_reason,
    table_rows,
    trial_rows,
    trial_summary,
)


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


BYZANTINE_GRACE_MS = 30_000
"""How long after the workload's span a Byzantine trial may take before liveness counts as lost
(60 of PBFT's 0.5 s view-change timeouts)."""


BYZANTINE_TXS = 50
"""Transactions of a Byzantine trial (the workload's first ones, at its rate): the trial asks
whether the membership stays safe and live, which 50 transactions through several views show."""


def byzantine_trials(system: System, n: int, s: Settings) -> list[Trial]:
    """``system.required_faults`` replicas of ``n`` play each Byzantine behaviour in turn.

    Stops at the first run that is not both safe and live (that membership does not survive).
    A run offers the workload's first :data:`BYZANTINE_TXS` transactions and has
    :data:`BYZANTINE_GRACE_MS` after their span to finish.
    """
    trials: list[Trial] = []
    txs = min(s.txs, BYZANTINE_TXS)
    span_ms = 1000.0 * txs / s.rate_tps
    run_s = replace(s, txs=txs, duration_ms=int(min(s.duration_ms, span_ms + BYZANTINE_GRACE_MS)))
    for behaviour in system.byzantine_behaviours:
        opts = {
            **system.paper_options,
            "byzantine": behaviour,
            "byzantine_count": system.required_faults,
        }
        t = measure(system, n, opts, run_s)
        t.behaviour = behaviour
        t.safe = bool(t.row.get("safety", False)) if t.started else None
        if t.started and not t.safe:
            t.reason = "safety lost: " + str(t.row.get("safety_reason", ""))[:60]
        trials.append(t)
        if not (t.live and t.safe):
            break
    return trials


def survives(trials: Sequence[Trial]) -> bool:
    """Every trial started, stayed live and (where judged) safe."""
    return bool(trials) and all(t.started and t.live and t.safe is not False for t in trials)


def nodes_needed(system: System, s: Settings) -> tuple[int | None, list[Trial]]:
    """The smallest ``n`` that starts and stays live (crash-free) and, with
    ``system.required_faults`` Byzantine replicas, stays safe and live under every behaviour of
    ``system.byzantine_behaviours`` (see the module docstring)."""
    trials: list[Trial] = []
    for n in range(1, s.max_n + 1):
        t = measure(system, n, system.paper_options, s)
        t.safe = bool(t.row.get("safety", False)) if t.started else None
        trials.append(t)
        if not (t.live and t.safe is not False):
            continue
        if not (system.required_faults and system.byzantine_behaviours):
            return n, trials
        byz = byzantine_trials(system, n, s)
        trials.extend(byz)
        if survives(byz):
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
    """The consensus family a run shows, and the evidence (docs/medical-chain.md §1.8's two
    families).

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


def measure_system(system: System, s: Settings) -> Row:
    """Every column of ``system``'s row (see the module docstring)."""
    needed, search = nodes_needed(system, s)
    n_min = needed if needed is not None else s.max_n
    fault_trials = [
        t for t in search if t.n == n_min and t.tolerated is not None and not t.behaviour
    ]
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


__all__ = [
    "BLOCK_WAIT_US",
    "BREAKDOWN",
    "BYZANTINE_GRACE_MS",
    "BYZANTINE_TXS",
    "COLUMNS",
    "EXTRA_COLUMNS",
    "LARGE_HASHES_PER_TX",
    "MEDICAL_CHAIN",
    "NODES_NEEDED_DEFINITION",
    "PAPER",
    "PBFT_BEHAVIOURS",
    "SYSTEMS",
    "Comparison",
    "Row",
    "Settings",
    "System",
    "Trial",
    "available",
    "breakdown_markdown",
    "breakdown_rows",
    "byzantine_trials",
    "compare",
    "compute_demand",
    "cpu_breakdown",
    "faults_tolerated",
    "large_cpu_ms",
    "liveness_timeout_ms",
    "markdown",
    "measure",
    "measure_system",
    "measure_table",
    "measured_where",
    "mismatch_reason",
    "nodes_needed",
    "observed_family",
    "quorum_bound",
    "run_params",
    "survives",
    "table_rows",
    "trial_rows",
    "trial_summary",
    "vote_weights",
    "wait_for_blocks",
]
