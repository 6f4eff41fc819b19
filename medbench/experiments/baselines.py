"""The baselines in the simulator: ``pow``, ``poa``, ``dpos``, ``poi`` and ``central`` deployments.

Theory of operation
-------------------
:func:`build` is the protocol factory of :mod:`medbench.experiments` for every baseline of
:data:`medbench.consensus.baselines.REGISTRY`; the registry name is the run's ``protocol``
parameter. It builds ``n`` nodes with the baseline's own factory, each wrapped in a
:class:`SimBaseline`, and the common workload of :mod:`medbench.experiments.load`
(``requests`` of ``payload_bytes`` bytes at ``rate_tps`` in the ``load`` shape; the old names
``txs``, ``tx_bytes`` are deprecated aliases), request ``i`` handed to eligible node
``i mod clients`` as the local :class:`~medbench.consensus.baselines.common.Submit` (every node
is eligible except the central server of ``central``; ``clients`` is capped at the number of
eligible nodes). The protocol's own parameters (``delegates``, ``auditors``, ``block_time_us``,
``poison``, ...) are declared by :func:`params_schema`, built from the protocol's parameter
class, and only those given are passed on (the class keeps its defaults).

Time: a baseline node asks for its next tick through ``next_deadline()``; the simulator ticks
every node that has that method at its deadline (see :mod:`medbench.sim.engine`, "Deadline
ticks"), so ``tick_us=0`` is the natural setting (the periodic tick also works, timers firing up
to one period late, at the price of ticking every node every period).

Costs. The wrapper turns the node's exact counters into simulator operations through
``take_costs``: block and Merkle hashes, one ID hash per distinct committed transaction (the rule
of :mod:`medbench.hashwork`, shared with PBFT) and really executed nonce trials as ``hash``,
signature operations as ``sign``/``verify`` (the protocol's own, and the client signatures of
:mod:`medbench.consensus.baselines.common`: one sign per transaction at its submitting node, one
verify per transaction at every node that accepts a block holding it), and PoI's training and
validation FLOPs as ``flop`` (learning runs on the node's CPU). *Modeled* mining hashes are not
charged to the node's CPU (a miner hashes on separate hardware while its CPU keeps validating);
they stay in ``stats()`` as ``hash_mining`` and :func:`compute` adds them to the compute demand.

Storage: ``storage_bytes()`` measures, when asked, the canonical encoding of every block the node
keeps (final ones, and the others it knows: orphans, blocks not yet deep enough) and of the
distinct transactions of its final blocks (their gossip messages, bodies included), which every
full node keeps. ``verify_chain()`` re-checks the final chain's hash links, Merkle roots and IDs.

Crashes: baseline nodes keep no stable storage; a recovered node is a fresh node with the same
ID and keys (it resynchronises from its peers, where the protocol can).
"""

from __future__ import annotations

import dataclasses
import random
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import create_model

from medbench.consensus import baselines
from medbench.consensus.baselines import REGISTRY, Environment
from medbench.consensus.baselines.central import CentralParams
from medbench.consensus.baselines.common import CommittedBlock, Submit, TxGossip
from medbench.consensus.baselines.dpos import DposParams
from medbench.consensus.baselines.poa import PoaParams
from medbench.consensus.baselines.poi import PoiParams
from medbench.consensus.baselines.pow import PowParams
from medbench.experiments import load, size
from medbench.experiments.learning import LogisticTask
from medbench.experiments.params import RunParams, param
from medbench.experiments.runner import Deployment, ExperimentError, Submission
from medbench.experiments.streams import NumpyRng, node_rng
from medbench.hashwork import HashTally
from medbench.node import Node, Ready

WORKLOAD_DEFAULTS: dict[str, Any] = dict(load.WORKLOAD_DEFAULTS)
"""The workload defaults (the common ones of :mod:`medbench.experiments.load`)."""

OPTION_HELP: dict[str, tuple[str, str]] = {
    "hashrate": ("hash/s", "hash rate of each miner"),
    "hashrates": ("hash/s", "hash rate per miner, one per node (overrides hashrate)"),
    "difficulty": ("hashes", "expected hashes per block (default: from block_time_us)"),
    "block_time_us": ("us", "mean time between blocks"),
    "confirmations": ("blocks", "depth at which a block is final"),
    "block_reward": ("gwei", "reward per block"),
    "gas_price": ("gwei/gas", "fee per unit of gas"),
    "gas_limit": ("gas", "gas per block"),
    "real_hashing": ("", "really hash nonces (slow) instead of modeling the mining"),
    "period_us": ("us", "Clique block period"),
    "wiggle_us": ("us", "largest random delay of an out-of-turn signer"),
    "authorities": ("nodes", "the first k nodes sign (default: every node)"),
    "modeled_signatures": ("", "model signatures instead of computing real ones"),
    "delegates": ("nodes", "block-producing delegates"),
    "auditors": ("nodes", "auditors that finalise blocks"),
    "slot_us": ("us", "a delegate's production slot"),
    "audit_threshold": ("audits", "audits that finalise a block (default: 2/3 of auditors)"),
    "weights": ("", "vote weight per institution (node id)"),
    "ballots": ("", "approval ballot per node id"),
    "max_block_txs": ("txs", "most transactions per block"),
    "features": ("", "features of the logistic model"),
    "local_samples": ("samples", "local training samples per site"),
    "validation_samples": ("samples", "consortium validation samples"),
    "learning_rate": ("", "gradient step size"),
    "local_steps": ("steps", "local gradient steps per block"),
    "tolerance": ("", "validation loss increase a block may bring"),
    "poison": ("", "node ids that publish poisoned updates"),
    "center": ("node", "the central server's node id"),
    "block_interval_us": ("us", "time between blocks"),
    "attacker": ("node", "this miner mines privately (the 51% attack); -1: none"),
    "release_depth": ("blocks", "the attacker releases its branch this far past the fork "
                      "(default: confirmations + 1)"),
}  # fmt: skip
"""Unit and help of the baselines' own parameters (for ``medbench params``)."""

_OPTION_CLASSES: dict[str, tuple[type, ...]] = {
    "pow": (PowParams,),
    "poa": (PoaParams,),
    "dpos": (DposParams,),
    "poi": (PoiParams, PowParams),
    "central": (CentralParams,),
}
_EXTRA_OPTIONS: dict[str, dict[str, tuple[Any, Any]]] = {
    "pow": {"attacker": (int, -1), "release_depth": (int | None, None)},
}
_SCHEMA_CACHE: dict[str, type[RunParams]] = {}


def params_schema(name: str) -> type[RunParams]:
    """The parameter schema of baseline ``name``: the common ones and its parameter class's."""
    got = _SCHEMA_CACHE.get(name)
    if got is not None:
        return got
    if name not in _OPTION_CLASSES:
        raise ExperimentError(f"{name!r} is not a baseline; choose from {sorted(REGISTRY)}")
    fields: dict[str, Any] = {}
    for cls in _OPTION_CLASSES[name]:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            unit, help_ = OPTION_HELP.get(f.name, ("", f"see {cls.__name__}"))
            fields[f.name] = (hints[f.name], param(f.default, help_, unit))
    for key, (typ, default) in _EXTRA_OPTIONS.get(name, {}).items():
        unit, help_ = OPTION_HELP[key]
        fields[key] = (typ, param(default, help_, unit))
    model: Any = create_model(
        f"{name.capitalize()}Params",
        __base__=BaselineParams,
        __doc__=f"The parameters of a ``{name}`` run.",
        **fields,
    )
    model.OPTIONS = frozenset(fields)
    _SCHEMA_CACHE[name] = model
    return model  # type: ignore[no-any-return]


class BaselineParams(RunParams):
    """Base of the baselines' schemas (:func:`params_schema`)."""

    OPTIONS: typing.ClassVar[frozenset[str]] = frozenset()
    """Names of the protocol's own parameters (passed to its parameter class)."""

    @classmethod
    def estimate(cls, p: Mapping[str, Any]) -> dict[str, float]:
        """A baseline's messages and memory (:func:`medbench.experiments.size.baseline`)."""
        return size.baseline(p)


class SimBaseline:
    """A baseline node as the simulator sees it: costs, storage and stats (see module doc)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.node_id: int = node.node_id
        self._charged = (0, 0, 0, 0)
        self.tx_ids: set[bytes] = set()  # distinct committed transactions (one ID hash each)
        self.producers: set[int] = set()  # producers of the blocks this node committed

    def step(self, src: int, msg: Any) -> Ready:
        """Delegate to the node; account for committed blocks."""
        ready: Ready = self.node.step(src, msg)
        if ready.committed:
            self._account(ready)
        return ready

    def tick(self, now_us: int) -> Ready:
        """Delegate to the node; account for committed blocks."""
        ready: Ready = self.node.tick(now_us)
        if ready.committed:
            self._account(ready)
        return ready

    def next_deadline(self) -> int | None:
        """The node's next timer (the simulator ticks it then)."""
        dl: int | None = self.node.next_deadline()
        return dl

    def _account(self, ready: Ready) -> None:
        for c in ready.committed:
            b = c.payload
            if isinstance(b, CommittedBlock):
                self.producers.add(b.producer)
                self.tx_ids.update(t[0] for t in b.txs)

    def take_costs(self) -> dict[str, int]:
        """Hash, signature and learning operations since the last call (modeled mining excluded).

        Protocol and client signatures are both charged as ``sign``/``verify`` (the counters
        keep them apart: ``sign_ops`` vs ``tx_sign_ops``). PoI's training and validation FLOPs
        are charged as ``flop``: ModelChain's "compute = hashing + learning" runs on the
        node's CPU.
        """
        c = self.node.counters
        hashes = c.hash_block + c.hash_merkle + c.hash_mining_real + len(self.tx_ids)
        signs = c.sign_ops + c.tx_sign_ops
        verifies = c.verify_ops + c.tx_verify_ops
        now = (hashes, signs, verifies, c.train_flops + c.validate_flops)
        before = self._charged
        self._charged = now
        out = {}
        for op, a, b in zip(("hash", "sign", "verify", "flop"), now, before, strict=True):
            if a != b:
                out[op] = a - b
        return out

    def storage_bytes(self) -> dict[str, int]:
        """Encoded bytes this node keeps: final blocks, other known blocks, transactions.

        Blocks are measured by their canonical wire encoding (:mod:`medbench.codec`); a
        transaction by its encoded gossip message (ID, size, time and body), once per distinct
        transaction of the final blocks.
        """
        final = other = txs = 0
        seen: set[bytes] = set()
        for block, is_final in self.node.stored_blocks():
            size = len(block.encode())
            if not is_final:
                other += size
                continue
            final += size
            for tx in block.txs:
                if tx[0] not in seen:
                    seen.add(tx[0])
                    txs += len(TxGossip(tx[0], tx[1], tx[2]).encode())
        return {"blocks": final, "blocks_other": other, "txs": txs}

    def stats(self) -> dict[str, int]:
        """The baseline node's exact counters (:meth:`BaselineNode.stats`) and hash work."""
        out: dict[str, int] = self.node.stats()
        c = self.node.counters
        tally = HashTally()
        tally.add_all(
            {
                "tx_id": len(self.tx_ids),
                "merkle": c.hash_merkle,
                "block_id": c.hash_block,
                "mining": c.hash_mining,
            }
        )
        out.update(tally.as_stats())
        return out

    def verify_chain(self) -> tuple[int, str | None]:
        """The node's own re-check of its final chain (:meth:`BaselineNode.verify_chain`)."""
        got: tuple[int, str | None] = self.node.verify_chain()
        return got


def protocol_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """The protocol's own parameters given in ``params`` (checked; defaults left out)."""
    name = str(params["protocol"])
    schema = params_schema(name)
    given = schema.translate(params, name)
    full = schema.resolve(params, name)
    return {k: full[k] for k in given if k in schema.OPTIONS}


def eligible_clients(name: str, n: int, options: Mapping[str, Any]) -> list[int]:
    """Nodes that accept client transactions (all but the central server for ``central``)."""
    if name == "central":
        center = int(options.get("center", 0))
        return [i for i in range(n) if i != center]
    return list(range(n))


def build(params: Mapping[str, Any], rng: random.Random) -> Deployment:
    """The deployment of baseline ``params["protocol"]`` (see the module docstring).

    Raises :class:`~medbench.consensus.baselines.common.MembershipError` when the protocol's
    rules refuse ``n`` members, and :class:`~medbench.experiments.ExperimentError` for an
    unknown protocol or a bad workload.
    """
    name = str(params["protocol"])
    spec = REGISTRY.get(name)
    if spec is None:
        raise ExperimentError(f"{name!r} is not a baseline; choose from {sorted(REGISTRY)}")
    p = params_schema(name).resolve(params, name)
    n = int(p["n"])
    w = load.workload(p)
    options = protocol_options(params)
    seed = rng.getrandbits(63)
    nodes: list[Node] = [
        SimBaseline(node) for node in spec.make_nodes(n, dict(options), seed, environment(seed))
    ]
    clients = eligible_clients(name, n, options)[: w.clients]
    if not clients:
        raise ExperimentError("no node accepts client transactions")
    subs: list[Submission] = []
    ids: list[bytes] = []
    for a in load.arrivals(w, rng):
        tx_id = rng.randbytes(32)
        ids.append(tx_id)
        node = clients[a.index % len(clients)]
        after = ids[a.after] if a.after is not None else None
        subs.append(
            Submission(a.at_us, node, Submit(tx_id, w.payload_bytes, a.at_us), tx_id, after)
        )

    def recover(node_id: int, persisted: list[Any]) -> Node:
        # Baselines keep no stable storage: the node restarts empty with its keys.
        fresh: Node = SimBaseline(
            spec.make_nodes(n, dict(options), seed, environment(seed))[node_id]
        )
        return fresh

    return Deployment(
        nodes=nodes,
        submissions=subs,
        replicas=tuple(range(n)),
        recover=recover,
        commit_key=lambda block: block.block_id,
        params=p,
    )


def environment(seed: int) -> Environment:
    """The random streams and learning tasks of a baseline run seeded ``seed``."""

    def rng(*labels: int) -> NumpyRng:
        return node_rng(seed, *labels)

    def learner(node_id: int, params: PoiParams) -> LogisticTask:
        return LogisticTask.for_site(seed, node_id, params)

    return Environment(rng, learner)


def make_nodes(name: str, n: int, params: dict[str, Any], seed: int) -> list[Node]:
    """The nodes of baseline ``name`` for a run seeded ``seed`` (numpy streams, logistic task)."""
    return baselines.make_nodes(name, n, params, seed, environment(seed))


def compute(stats: Mapping[str, int]) -> dict[str, int]:
    """Hash evaluations of one node's ``stats()``, split into mining and validation."""
    return {
        "hash_mining": int(stats.get("hash_mining", 0)),
        "hash_validation": int(stats.get("hash_block", 0)) + int(stats.get("hash_merkle", 0)),
        "flops": int(stats.get("train_flops", 0)) + int(stats.get("validate_flops", 0)),
    }


__all__ = [
    "WORKLOAD_DEFAULTS",
    "BaselineParams",
    "SimBaseline",
    "build",
    "compute",
    "eligible_clients",
    "environment",
    "make_nodes",
    "params_schema",
]
