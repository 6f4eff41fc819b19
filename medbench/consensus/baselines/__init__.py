"""The systems Medical Chain is compared with (docs/medical-chain.md §1.8, §2), behind one node
interface.

Theory of operation
-------------------
:data:`REGISTRY` maps a name (``"pow"``, ``"poa"``, ``"dpos"``, ``"poi"``, ``"central"``) to a
:class:`ProtocolSpec`: the system it stands for, its consensus family, a uniform factory
``make_nodes(n, params, seed, env) -> list[Node]`` (node IDs ``0..n-1``; keys derive from
``seed``; random streams and ModelChain's learning task come from the :class:`Environment` the
driver's side injects, :func:`medbench.experiments.baselines.environment`), its minimal
configuration (the smallest membership that starts and stays live under its own rules, and the
faults it then tolerates) and :meth:`ProtocolSpec.describe`, the text of its rules.

Clients submit a transaction by stepping the local message
:class:`~medbench.consensus.baselines.common.Submit` ``(tx_id: 32 bytes, size, submit_time)``
into the node they are attached to, with ``src == node_id``. Final blocks come back as
``Ready.committed`` entries whose payload is a
:class:`~medbench.consensus.baselines.common.CommittedBlock`; a transaction submitted at a node is
reported once in that node's ``Ready.completed`` as a
:class:`~medbench.consensus.baselines.common.TxCompleted` when final. Every node exposes
``next_deadline()`` (when to tick it next) and ``stats()`` (exact counters: hash evaluations,
signature operations, rewards and fees paid, blocks, orphans, rejections by reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medbench.consensus.baselines import attack, central, dpos, poa, poi, pow
from medbench.consensus.baselines.common import (
    BaselineNode,
    CommittedBlock,
    MembershipError,
    Rng,
    Submit,
    TxCompleted,
)
from medbench.consensus.baselines.poi import LearnerFactory
from medbench.consensus.baselines.signing import make_signers
from medbench.node import Node


@dataclass(frozen=True, slots=True)
class Environment:
    """What a deployment needs from outside the core: random streams and a learning task.

    ``rng(*labels)`` returns the seeded stream ``labels`` of the run (each node its own);
    ``learner(node_id, params)`` the learning task of a ModelChain site.
    """

    rng: Callable[..., Rng]
    learner: LearnerFactory


def make_pow(n: int, params: dict[str, Any], seed: int, env: Environment) -> list[Node]:
    """``n`` PoW miners (MedRec 2016).

    ``attacker`` (a node ID) makes that miner an :class:`~attack.PrivateMiner` (the 51% attack)
    that releases its branch once the public chain is ``release_depth`` blocks past the fork
    (default: one more than ``confirmations``, so released branches revert commits).
    """
    rest = dict(params)
    attacker = int(rest.pop("attacker", -1))
    depth = rest.pop("release_depth", None)
    p = pow.PowParams.from_dict(rest, n)
    if attacker >= n:
        raise ValueError(f"attacker {attacker} is not a node ID of 0..{n - 1}")
    release = int(depth) if depth is not None else p.confirmations + 1
    return [
        attack.PrivateMiner(i, n, p, env.rng(1, i), release)
        if i == attacker
        else pow.PowNode(i, n, p, env.rng(1, i))
        for i in range(n)
    ]


def make_poa(n: int, params: dict[str, Any], seed: int, env: Environment) -> list[Node]:
    """``n`` Clique nodes (MedRec 2.0); the first ``authorities`` sign."""
    p = poa.PoaParams.from_dict(params)
    signers = make_signers(n, seed, b"medbench-poa", p.modeled_signatures)
    keys = tuple(s.public_key for s in signers)
    return [poa.PoaNode(i, n, p, signers[i], keys, env.rng(2, i)) for i in range(n)]


def make_dpos(n: int, params: dict[str, Any], seed: int, env: Environment) -> list[Node]:
    """``n`` MDSM members; raises :class:`MembershipError` below ``delegates + auditors``."""
    p = dpos.DposParams.from_dict(params)
    dpos.check_membership(n, p)
    signers = make_signers(n, seed, b"medbench-dpos", p.modeled_signatures)
    keys = tuple(s.public_key for s in signers)
    return [dpos.DposNode(i, n, p, signers[i], keys) for i in range(n)]


def make_poi(n: int, params: dict[str, Any], seed: int, env: Environment) -> list[Node]:
    """``n`` ModelChain sites (PoW + online logistic regression)."""
    learn, mine = poi.PoiParams.split(params, n)
    return [poi.PoiNode(i, n, mine, learn, env.rng(4, i), env.learner(i, learn)) for i in range(n)]


def make_central(n: int, params: dict[str, Any], seed: int, env: Environment) -> list[Node]:
    """One central server (node ``center``) and ``n - 1`` node servers."""
    p = central.CentralParams.from_dict(params)
    if n < 2:
        raise MembershipError("the central relay needs the centre and at least one node server")
    if not 0 <= p.center < n:
        raise ValueError("center must be a node ID")
    return [
        central.CentralServer(i, n, p) if i == p.center else central.NodeServer(i, n, p)
        for i in range(n)
    ]


@dataclass(frozen=True, slots=True)
class MinimalConfig:
    """The smallest membership that starts and stays live, and what it then tolerates."""

    n: int
    params: dict[str, Any]
    crash_faults_tolerated: int
    byzantine_tolerated: str
    why: str


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """One baseline: what it is, how to build it, and its minimal configuration."""

    name: str
    system: str
    consensus: str
    family: str
    pays_rewards: bool
    vote_weights: bool
    make_nodes: Callable[[int, dict[str, Any], int, Environment], list[Node]]
    minimal: MinimalConfig
    node_class: type[BaselineNode]

    def describe(self) -> str:
        """The rules this implementation follows (its module's theory of operation)."""
        return self.node_class.describe()


REGISTRY: dict[str, ProtocolSpec] = {
    "pow": ProtocolSpec(
        "pow",
        "MedRec (Azaria et al. 2016)",
        "PoW",
        "PoX",
        True,
        False,
        make_pow,
        MinimalConfig(
            1,
            {},
            0,
            "attackers below half the hash power (51% attack)",
            "one miner extends the chain alone; each extra miner adds one tolerated "
            "crash, but safety needs the honest majority of hash power, hence 'many'",
        ),
        pow.PowNode,
    ),
    "poa": ProtocolSpec(
        "poa",
        "MedRec 2.0 (Clique PoA)",
        "PoA (Clique)",
        "PoA",
        False,
        False,
        make_poa,
        MinimalConfig(
            1,
            {},
            0,
            "fewer than half of the authorities",
            "one authority seals every block; with N authorities at least N//2 + 1 "
            "must be live (recent-signer limit), so ceil(N/2) - 1 crashes are tolerated",
        ),
        poa.PoaNode,
    ),
    "dpos": ProtocolSpec(
        "dpos",
        "MDSM (Xue et al. 2017)",
        "improved DPoS",
        "PoX",
        False,
        True,
        make_dpos,
        MinimalConfig(
            121,
            {"delegates": 101, "auditors": 20},
            6,
            "auditors: fewer than 2t - A equivocating (t = 14 of A = 20)",
            "refuses to start below 101 delegates + 20 auditors; finality needs "
            "14 of 20 audits, so 6 auditor crashes are tolerated (and up to 100 "
            "delegate crashes, at lower throughput)",
        ),
        dpos.DposNode,
    ),
    "poi": ProtocolSpec(
        "poi",
        "ModelChain (Kuo et al.)",
        "PoI (PoW + online learning)",
        "PoX",
        True,
        False,
        make_poi,
        MinimalConfig(
            1,
            {},
            0,
            "attackers below half the hash power; poisoned updates rejected",
            "as PoW: one site mines alone; safety needs an honest hash majority",
        ),
        poi.PoiNode,
    ),
    "central": ProtocolSpec(
        "central",
        "Medical Blockchain with a central server (docs/medical-chain.md §2)",
        "none (relay)",
        "centralised",
        False,
        False,
        make_central,
        MinimalConfig(
            2,
            {},
            0,
            "none: a Byzantine centre rewrites history undetected",
            "the centre and one node server; a centre crash halts everything",
        ),
        central.NodeServer,
    ),
}


def make_nodes(
    name: str, n: int, params: dict[str, Any], seed: int, env: Environment
) -> list[Node]:
    """Build the nodes of baseline ``name`` (a key of :data:`REGISTRY`)."""
    try:
        spec = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; choose from {sorted(REGISTRY)}") from None
    return spec.make_nodes(n, params, seed, env)


__all__ = [
    "REGISTRY",
    "CommittedBlock",
    "Environment",
    "MembershipError",
    "MinimalConfig",
    "ProtocolSpec",
    "Submit",
    "TxCompleted",
    "attack",
    "make_nodes",
]
