"""Raft in the simulator: the ``"raft"`` protocol factory of :mod:`medbench.experiments`.

Theory of operation
-------------------
:func:`build` turns a parameter dict into a :class:`~medbench.experiments.Deployment` with the
common workload, as PBFT's adapter does (:mod:`medbench.experiments.common`): nodes ``0..n-1``
(:class:`~medbench.consensus.raft.Replica`, some wrapped in
:class:`~medbench.consensus.raft.byzantine.LyingLeader`) and clients ``n..n+clients-1``
(:class:`~medbench.consensus.raft.Client`: it sends each request to the leader it knows — at
first the node ``c mod n`` at its own site, which forwards to the leader — and completes on the
leader's one reply), each wrapped in a :class:`SimNode`.

Raft needs an election before it serves: a node's first election timeout lies in
``[election_timeout_us, 2 * election_timeout_us)`` (:mod:`medbench.consensus.raft.election`), so
the workload's times are shifted by ``warmup_us``, by default ``2 * election_timeout_us`` (a
leader is in place in a fault-free run); PBFT and HotStuff have their first leader from time 0.
The election is still in every run's messages and notes.

:class:`SimNode` gives the simulator what PBFT's adapter gives it, by the same rules:

* Raft authenticates nothing (crash faults only): no protocol signature, MAC or tag is charged.
  **Client signatures are**, the rule Table 1 applies to every system (a medical record stays
  signed by its author): with ``client_signatures`` 1 (the default) a client is charged one
  ``sign`` per new request, and a node one ``verify`` per client request it appends to its log
  (the leader when it accepts it, a follower when it stores it). The signature's bytes are not on
  Raft's wire (its request carries no authenticator).
* hash work from the node's own counters (:meth:`Replica.counters`: one transaction ID per
  applied request, one chained state digest per applied entry, one hash per election-timeout
  draw), charged as ``hash``;
* ``storage_bytes()``: ``txs`` (encoded requests executed), ``log`` (the encoded records handed
  to stable storage: hard states, entries, truncations, snapshots); Raft has no blocks
  (``blocks`` 0: its log is the ledger);
* notes: ``election`` (a node starts an election) is renamed ``view_change`` and ``leader`` (it
  won) ``new_view``, the names :mod:`medbench.metrics` times view changes with.

Verdicts: :class:`~medbench.metrics.SafetyChecker` over the honest nodes (the commit key of an
index is the applied entry's term and request ID) and :class:`~medbench.metrics.LivenessChecker`.

Parameters (declared by :class:`RaftParams`, ``medbench params raft``; defaults of the
Raft-specific ones in :data:`RAFT_DEFAULTS`): ``n``, the common workload
(:mod:`medbench.experiments.load`), ``warmup_us`` (-1: ``2 * election_timeout_us``), ``batch``
(the most entries one AppendEntries carries), ``election_timeout_us``,
``heartbeat_interval_us``, ``snapshot_interval``, ``client_timeout_us``,
``client_signatures``, ``byzantine`` (``lying-leader``), ``byzantine_count``,
``byzantine_ids``, ``lies`` (how many entries each liar forges).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from pydantic import field_validator

from medbench.consensus.raft import Client, Config, Entry, Replica, Submit, encode_record
from medbench.consensus.raft.byzantine import BEHAVIOURS as _BEHAVIOURS
from medbench.consensus.raft.byzantine import LyingLeader
from medbench.experiments.common import (
    byzantine_ids,
    completion_key,
    int_param,
    workload_submissions,
)
from medbench.experiments.params import RunParams, param
from medbench.experiments.runner import Deployment, ExperimentError
from medbench.hashwork import HashTally
from medbench.metrics import LivenessChecker, SafetyChecker
from medbench.node import Note, Ready

RAFT_DEFAULTS: dict[str, Any] = {
    "batch": 64,
    "election_timeout_us": 300_000,
    "heartbeat_interval_us": 50_000,
    "snapshot_interval": 1_024,
    "client_timeout_us": 500_000,
    "client_signatures": 1,
    "warmup_us": -1,
    "byzantine": "",
    "byzantine_count": 0,
    "byzantine_ids": "",
    "lies": 1,
}
"""Defaults of the Raft-specific parameters."""

BEHAVIOURS: tuple[str, ...] = _BEHAVIOURS
"""Named Byzantine behaviours (:mod:`medbench.consensus.raft.byzantine`)."""

_D = RAFT_DEFAULTS


class RaftParams(RunParams):
    """The parameters of a ``raft`` run (see the module docstring)."""

    batch: int = param(_D["batch"], "most entries in one AppendEntries", "entries", ge=1)
    election_timeout_us: int = param(
        _D["election_timeout_us"], "base election timeout (each node's is in [T, 2T))", ge=1
    )
    heartbeat_interval_us: int = param(
        _D["heartbeat_interval_us"], "leader's heartbeat period to an idle follower", ge=1
    )
    snapshot_interval: int = param(
        _D["snapshot_interval"], "applied entries between snapshots (0: none)", "entries", ge=0
    )
    client_timeout_us: int = param(
        _D["client_timeout_us"], "client's timeout before it tries the next node", ge=1
    )
    client_signatures: int = param(
        _D["client_signatures"], "1: clients sign requests and nodes verify them (charged)",
        ge=0, le=1,
    )  # fmt: skip
    warmup_us: int = param(
        _D["warmup_us"],
        "workload shifted by this for the first election (-1: 2 x election_timeout_us)",
        ge=-1,
    )
    byzantine: str = param(_D["byzantine"], f"Byzantine behaviour: {', '.join(BEHAVIOURS)}")
    byzantine_count: int = param(_D["byzantine_count"], "lying nodes (0: 1)", "nodes", ge=0)
    byzantine_ids: str = param(
        _D["byzantine_ids"], "comma-separated lying node ids (default: the first ones)"
    )
    lies: int = param(_D["lies"], "entries each lying node forges", "entries", ge=0)

    @field_validator("byzantine")
    @classmethod
    def _known_behaviour(cls, value: str) -> str:
        if value and value not in BEHAVIOURS:
            raise ValueError(f"unknown byzantine behaviour; known: {', '.join(BEHAVIOURS)}")
        return value

    @classmethod
    def estimate(cls, p: Mapping[str, Any]) -> dict[str, float]:
        """Messages: per request ``2(n - 1) + 2`` (replication, request, reply)."""
        from medbench.experiments import size

        n, requests = int(p["n"]), int(p.get("requests", 0))
        return {
            "messages": float(requests * (2 * (n - 1) + 2)),
            "memory_bytes": size._memory(size._nodes(p, True), requests, 2 * n),
        }


PARAMS = RaftParams
"""The schema :func:`medbench.experiments.params.schema_for` finds for ``raft``."""

_RENAMED = {"election": "view_change", "leader": "new_view"}


class SimNode:
    """Adapter of a Raft node or client (possibly wrapped by a liar) for the simulator.

    ``step`` and ``tick`` are the wrapped node's own bound methods; :meth:`take_costs` turns the
    counters into operations (see the module docstring).
    """

    __slots__ = (
        "_client",
        "_h",
        "_persisted",
        "_sign",
        "_state",
        "_ts",
        "_work",
        "hashes",
        "inner",
        "node_id",
        "step",
        "tick",
        "tx_bytes",
        "verifies",
    )

    def __init__(self, inner: Any, client_signatures: bool, persisted: Sequence[Any] = ()) -> None:
        self.inner = inner
        self.node_id: int = inner.node_id
        self._state = self.replica
        self._client = isinstance(self._state, Client)
        self._sign = client_signatures
        self._work: dict[str, int] | None = getattr(self._state, "hash_work", None)
        self._h = sum(self._work.values()) if self._work is not None else 0
        self._ts = 0  # the client's last timestamp (a new one is a new signed request)
        self._persisted: list[Any] = list(persisted)
        self.hashes = HashTally()
        self.tx_bytes = 0
        self.verifies = 0  # client signatures checked (entries appended)
        self.step: Callable[[int, Any], Ready] = inner.step
        self.tick: Callable[[int], Ready] = inner.tick

    @property
    def replica(self) -> Any:
        """The honest state machine under any Byzantine wrapper."""
        node = self.inner
        while hasattr(node, "inner"):
            node = node.inner
        return node

    def take_costs(self) -> dict[str, int]:
        """Client-signature work and hash work since the last call (see the module docstring)."""
        state = self._state
        if self._client:
            ts = state.timestamp
            if ts != self._ts:
                signs = ts - self._ts
                self._ts = ts
                return {"sign": signs} if self._sign else {}
            return {}
        r = state._ready
        out: dict[str, int] = {}
        if r.persist:
            self._persisted.extend(r.persist)
            if self._sign:
                new = 0
                for rec in r.persist:
                    if type(rec) is Entry and rec.request is not None:
                        new += 1
                if new:
                    self.verifies += new
                    out["verify"] = new
        if r.committed:
            for c in r.committed:
                applied = c.payload
                if applied.executed:
                    self.tx_bytes += len(applied.request.encode())
        if r.notes:
            notes = r.notes
            for i, note in enumerate(notes):
                new_kind = _RENAMED.get(note.kind)
                if new_kind is not None:
                    notes[i] = Note(new_kind, note.detail)
        work = self._work
        if work is not None:
            h = sum(work.values())
            if h != self._h:
                out["hash"] = h - self._h
                self._h = h
        return out

    def storage_bytes(self) -> dict[str, int]:
        """Bytes this node stores, by category: blocks (none), transactions, protocol log."""
        if self._client:
            return {}
        log = 0
        for rec in self._persisted:
            log += len(encode_record(rec))
        return {"blocks": 0, "txs": self.tx_bytes, "log": log}

    def stats(self) -> dict[str, int]:
        """Hash work by category, the majority behind decisions, client signatures."""
        out = self.hashes.as_stats()
        state = self._state
        if self._client:
            out.update(
                blocks_stored=0,
                decisions=0,
                finality_votes_min=0,
                validators=0,
                client_sig_signs=state.timestamp if self._sign else 0,
                client_sig_verifies=0,
            )
            return out
        c = state.counters()
        for cat in ("tx_id", "digest"):
            out[f"hash.{cat}"] += int(c[f"hash_{cat}"])
        decisions = state.last_applied
        out.update(
            blocks_stored=0,
            decisions=decisions,
            # an entry commits once a majority stores it (no vote is signed: nothing to count)
            finality_votes_min=state.majority if decisions else 0,
            validators=int(state.n),
            client_sig_signs=0,
            client_sig_verifies=self.verifies,
        )
        return out

    def verify_chain(self) -> tuple[int, str | None]:
        """Raft keeps a log, not a chain of blocks: (applied entries, ``None``)."""
        if self._client:
            return 0, None
        return int(self._state.last_applied), None


def commit_key(applied: Any) -> Hashable:
    """An applied index is identified by its entry's term and request ID (``None``: no-op)."""
    req = getattr(applied, "request", None)
    term = getattr(applied, "term", None)
    if term is None:
        return applied  # type: ignore[no-any-return]
    return (term, None if req is None else req.digest())


def config_of(p: Mapping[str, Any], n: int, seed: bytes) -> Config:
    """The nodes' :class:`Config` from the run's parameters."""

    def i(key: str) -> int:
        return int_param(p, key, RAFT_DEFAULTS)

    try:
        return Config(
            n=n,
            election_timeout_us=i("election_timeout_us"),
            heartbeat_interval_us=i("heartbeat_interval_us"),
            max_entries_per_append=i("batch"),
            snapshot_interval=i("snapshot_interval"),
            seed=seed,
        )
    except ValueError as exc:
        raise ExperimentError(f"bad raft parameters: {exc}") from None


def build(params: Mapping[str, Any], rng: random.Random) -> Deployment:
    """The Raft deployment for ``params`` (see the module docstring for the parameters)."""
    p = RaftParams.resolve(params, "raft")

    def i(key: str) -> int:
        return int_param(p, key, RAFT_DEFAULTS)

    n, n_clients = i("n"), i("clients")
    config = config_of(p, n, rng.randbytes(16))
    _behaviour, faulty = byzantine_ids(p, BEHAVIOURS, n, RAFT_DEFAULTS)  # one behaviour
    honest = tuple(r for r in range(n) if r not in faulty)
    timeout = i("client_timeout_us")
    signs = bool(i("client_signatures"))
    lies = i("lies")
    warmup = i("warmup_us")
    if warmup < 0:
        warmup = 2 * config.election_timeout_us

    def node(r: int, records: Sequence[Any] | None = None) -> SimNode:
        if records is None:
            rep = Replica(r, config)
        else:
            rep, _first = Replica.recover(r, config, records)
        inner: Any = LyingLeader(rep, lies) if r in faulty else rep
        return SimNode(inner, signs, records or ())

    nodes: list[Any] = [node(r) for r in range(n)]
    client_ids = list(range(n, n + n_clients))
    for c in client_ids:
        client = Client(c, n, retransmit_timeout_us=timeout, leader=c % n)
        nodes.append(SimNode(client, signs))

    subs = workload_submissions(p, rng, client_ids, Submit, offset_us=warmup)

    def recover(node_id: int, persisted: list[Any]) -> Any:
        if node_id >= n:
            fresh = SimNode(
                Client(node_id, n, retransmit_timeout_us=timeout, leader=node_id % n), signs
            )
        else:
            fresh = node(node_id, persisted)
        nodes[node_id] = fresh
        return fresh

    checkers: list[Any] = [SafetyChecker(), LivenessChecker()]
    return Deployment(
        nodes=nodes,
        submissions=subs,
        replicas=honest,
        sites=[*range(n), *(j % n for j in range(n_clients))],
        recover=recover,
        completion_key=completion_key,
        commit_key=commit_key,
        checkers=checkers,
        params=p,
    )


__all__ = [
    "BEHAVIOURS",
    "PARAMS",
    "RAFT_DEFAULTS",
    "RaftParams",
    "SimNode",
    "build",
    "commit_key",
    "config_of",
]
