"""The compared systems of Table 1 and the records of a measurement (:mod:`medbench.study.table1`).

:class:`System` is one row (the simulator protocol that implements a system and how to configure
it), :data:`SYSTEMS` the rows in the paper's order, :data:`PAPER` the paper's cells,
:class:`Settings` the workload and search bounds, :class:`Trial` one run of a search and
:class:`Row` a measured row with its evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    # Byzantine behaviours (the protocol's ``byzantine`` option) that ``required_faults``
    # replicas play in the "nodes needed" search; every one must leave the run safe and live.
    byzantine_behaviours: tuple[str, ...] = ()

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


PBFT_BEHAVIOURS: tuple[str, ...] = (
    "split-brain",  # with one replica: a primary equivocating in every phase
    "equivocating-primary",
    "silent-primary",
    "dropping-primary",
    "altering-primary",
    "bad-voter",
    "bad-voter-view",
    "bad-voter-sequence",
    "replayer",
    "crashed",
)
"""The kit's PBFT Byzantine behaviours (:data:`medbench.experiments.pbft.BEHAVIOURS`), the most
damaging first: the "nodes needed" search stops at the first one a membership does not survive."""

MEDICAL_CHAIN: dict[str, Any] = {
    "block_mode": "blocker",
    "block_size": 100,
    "block_interval_us": 1_000_000,
}
"""Medical Chain as docs/medical-chain.md §1.5 builds it: PBFT accepts transactions, then the
blocker ``B = L mod (N - 1)`` packs up to ``block_size`` accepted IDs into a BLOCK that PBFT orders
again. The paper blocks "after a while (e.g. 10 minutes)"; the interval is 1 s here so that a
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
        byzantine_behaviours=PBFT_BEHAVIOURS,
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
        byzantine_behaviours=PBFT_BEHAVIOURS,
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
        byzantine_behaviours=PBFT_BEHAVIOURS,
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
"""docs/medical-chain.md §1.8 Table 1, cell by cell."""


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
    behaviour: str = ""  # the Byzantine behaviour of the run's faulty replicas ("" = none)
    safe: bool | None = None  # the run's safety verdict (None: not judged)
    nodes: list[dict[str, Any]] = field(default_factory=list)  # metrics.node_table of the run


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
