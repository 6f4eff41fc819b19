"""Chained HotStuff in the simulator: the ``"hotstuff"`` protocol factory of
:mod:`medbench.experiments`.

Theory of operation
-------------------
:func:`build` turns a parameter dict into a :class:`~medbench.experiments.Deployment` with the
common workload, as PBFT's adapter does (:mod:`medbench.experiments.common`): replicas ``0..n-1``
(:class:`~medbench.consensus.hotstuff.Replica`, some wrapped in a behaviour of
:mod:`medbench.consensus.hotstuff.byzantine`), clients ``n..n+clients-1``
(:class:`~medbench.consensus.hotstuff.Client`: a client broadcasts its request to every replica
and accepts ``f + 1`` matching replies), each wrapped in a :class:`SimNode`; in ``blocker`` mode
also one blocker per replica (:mod:`medbench.consensus.hotstuff.blocks`: client ids
``n + clients .. n + clients + n - 1``, blocker ``b`` at the site of its replica).

:class:`SimNode` gives the simulator what PBFT's adapter gives it, by the same rules so that CPU
per transaction compares:

* ``take_costs()`` from the keyring counters (every sign charged ``sign``, every check
  ``verify``; with ``macs`` every MAC computed or checked as two ``hash`` calls) and from the
  replica's own hash counters (:meth:`Replica.counters`: a block hash per proposal built or
  checked, a transaction ID per ordered request, a state digest per executed block; in blocker
  mode the Merkle roots and block IDs of the Medical Chain blocks), charged as ``hash``. A QC is
  ``strong_quorum(n)`` individually verified votes (the paper's threshold signature modeled as
  the ``n - f`` signatures it aggregates, :mod:`medbench.consensus.hotstuff.messages`); the
  shared :class:`~medbench.consensus.hotstuff.VerdictMemo` saves wall time only: each replica is
  still charged every verification it would make;
* ``storage_bytes()``: ``txs`` (encoded requests executed), ``blocks`` (each committed block as
  the chain keeps it: its encoding with every request replaced by its 32-byte ID; in blocker
  mode the Medical Chain blocks too) and ``log`` (the encoded records the replica handed to
  stable storage: blocks, votes, locks, proposals, NEW-VIEWs, commit records);
* notes: the pacemaker's ``view-change`` (a timeout) is renamed ``view_change``, and the adapter
  adds ``new_view`` when the replica next votes in or after that view (the view works again), the
  names :mod:`medbench.metrics` times view changes with;
* a replica rebuilt after a crash (:meth:`Replica.recover`) returns a first output (its block
  sync request); the adapter hands it to the driver with the next tick.

Verdicts: :class:`~medbench.metrics.SafetyChecker` over the honest replicas (the commit key of a
height is the committed block's hash), :class:`LockstepChecker` (the honest replicas' state
digests agree at every common height) and :class:`~medbench.metrics.LivenessChecker`.

Parameters (declared by :class:`HotStuffParams`, ``medbench params hotstuff``; defaults of the
HotStuff-specific ones in :data:`HOTSTUFF_DEFAULTS`): ``n``, the common workload
(:mod:`medbench.experiments.load`), ``batch`` (max requests per block),
``batch_delay_us``, ``view_timeout_us`` (the pacemaker's base timeout), ``max_view_timeout_us``,
``certificate_grace_us``, ``client_timeout_us``, ``auth`` (``signatures`` | ``macs`` |
``modeled``; empty: ``modeled`` when ``crypto`` is ``modeled``, else ``signatures``),
``block_mode`` (``integrated``: every committed HotStuff block is a chain block; ``blocker``: the
two-level Medical Chain flow), ``block_size``, ``block_interval_us``, ``blocker_turn_us``,
``byzantine`` (a name of :data:`BEHAVIOURS`), ``byzantine_count``, ``byzantine_ids``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal

from pydantic import field_validator

from medbench.consensus.auth import Keyring, ModeledKeyring, Scheme
from medbench.consensus.hotstuff import (
    Block,
    Client,
    Config,
    LockRecord,
    NewView,
    Proposal,
    Replica,
    Submit,
    VerdictMemo,
    Vote,
)
from medbench.consensus.hotstuff.blocks import Blocker, ChainService
from medbench.consensus.hotstuff.byzantine import BEHAVIOURS as _BEHAVIOURS
from medbench.consensus.hotstuff.byzantine import Byzantine
from medbench.consensus.hotstuff.persist import encode_record
from medbench.experiments.common import (
    byzantine_ids,
    completion_key,
    int_param,
    workload_submissions,
)
from medbench.experiments.params import RunParams, param
from medbench.experiments.pbft import shared_keyrings
from medbench.experiments.runner import Deployment, ExperimentError
from medbench.hashwork import HashTally
from medbench.metrics import LivenessChecker, RunRecord, SafetyChecker, Verdict
from medbench.node import Note, Ready

HOTSTUFF_DEFAULTS: dict[str, Any] = {
    "batch": 16,
    "batch_delay_us": 0,
    "view_timeout_us": 500_000,
    "max_view_timeout_us": 60_000_000,
    "certificate_grace_us": 5_000,
    "client_timeout_us": 500_000,
    "auth": "",
    "block_mode": "integrated",
    "block_size": 100,
    "block_interval_us": 1_000_000,
    "blocker_turn_us": 1_000_000,
    "byzantine": "",
    "byzantine_count": 0,
    "byzantine_ids": "",
}
"""Defaults of the HotStuff-specific parameters."""

BEHAVIOURS: tuple[str, ...] = _BEHAVIOURS
"""Named Byzantine behaviours (:mod:`medbench.consensus.hotstuff.byzantine`)."""

_D = HOTSTUFF_DEFAULTS


class HotStuffParams(RunParams):
    """The parameters of a ``hotstuff`` run (see the module docstring)."""

    batch: int = param(_D["batch"], "most requests in one block", "requests", ge=1)
    batch_delay_us: int = param(
        _D["batch_delay_us"], "how long a leader waits to fill a block", ge=0
    )
    view_timeout_us: int = param(
        _D["view_timeout_us"], "pacemaker's base view timeout (doubles until a commit)", ge=1
    )
    max_view_timeout_us: int = param(
        _D["max_view_timeout_us"], "cap of the backed-off view timeout", ge=1
    )
    certificate_grace_us: int = param(
        _D["certificate_grace_us"], "how long a leader waits for a QC before a timeout cert", ge=0
    )
    client_timeout_us: int = param(
        _D["client_timeout_us"], "client's timeout before it broadcasts its request again", ge=1
    )
    auth: Literal["", "signatures", "sig", "macs", "modeled"] = param(
        _D["auth"], "signatures | macs | modeled (empty: modeled when crypto is modeled)"
    )
    block_mode: Literal["integrated", "blocker"] = param(
        _D["block_mode"], "integrated (each HotStuff block) or blocker (Medical Chain's BLOCKs)"
    )
    block_size: int = param(_D["block_size"], "blocker: most transactions per block", "txs", ge=1)
    block_interval_us: int = param(
        _D["block_interval_us"], "blocker: time from a block until the next is due", ge=0
    )
    blocker_turn_us: int = param(
        _D["blocker_turn_us"], "blocker: agreed time after which the turn passes on", ge=1
    )
    byzantine: str = param(_D["byzantine"], f"Byzantine behaviour: {', '.join(BEHAVIOURS)}")
    byzantine_count: int = param(
        _D["byzantine_count"], "Byzantine replicas (0: 1)", "replicas", ge=0
    )
    byzantine_ids: str = param(
        _D["byzantine_ids"], "comma-separated Byzantine replica ids (default: the first ones)"
    )

    @field_validator("byzantine")
    @classmethod
    def _known_behaviour(cls, value: str) -> str:
        if value and value not in BEHAVIOURS:
            raise ValueError(f"unknown byzantine behaviour; known: {', '.join(BEHAVIOURS)}")
        return value

    @classmethod
    def estimate(cls, p: Mapping[str, Any]) -> dict[str, float]:
        """Messages: per request ``2n`` (broadcast request, replies), per block ``2(n - 1)``."""
        from medbench.experiments import size

        n, requests, batch = int(p["n"]), int(p.get("requests", 0)), int(p["batch"])
        blocks = -(-requests // batch) + 3
        return {
            "messages": float(requests * 2 * n + blocks * 2 * (n - 1)),
            "memory_bytes": size._memory(size._nodes(p, True), requests, 2 * n),
        }


PARAMS = HotStuffParams
"""The schema :func:`medbench.experiments.params.schema_for` finds for ``hotstuff``."""

_ID = 32  # bytes of a transaction ID (SHA-256)


class SimNode:
    """Adapter of a HotStuff replica or client (possibly Byzantine-wrapped) for the simulator.

    ``step`` and ``tick`` are the wrapped node's own bound methods (no extra call on the hot
    path); :meth:`take_costs`, which the simulator calls after every ``step`` and ``tick``,
    turns the counters into operations, keeps the persisted records for :meth:`storage_bytes`
    and renames the notes.
    """

    __slots__ = (
        "_h",
        "_macs",
        "_p",
        "_pending",
        "_persisted",
        "_s",
        "_state",
        "_v",
        "_vc",
        "_work",
        "_x",
        "extra_hashes",
        "hashes",
        "inner",
        "keyring",
        "node_id",
        "sizes",
        "step",
        "tick",
    )

    def __init__(
        self,
        inner: Any,
        keyring: Keyring,
        pending: Ready | None = None,
        persisted: Sequence[Any] = (),
    ) -> None:
        self.inner = inner
        self.node_id: int = inner.node_id
        self.keyring = keyring
        self._macs = keyring.scheme is Scheme.MACS
        self._s = keyring.signs
        self._v = keyring.verifies
        self._p = keyring.primitives
        self._pending = pending
        self._state = self.replica
        self._work: dict[str, int] | None = getattr(self._state, "hash_work", None)
        self._h = sum(self._work.values()) if self._work is not None else 0
        self._persisted: list[Any] = list(persisted)
        self._vc = 0  # the view a timeout moved this replica to, until it votes there
        self.hashes = HashTally()  # MAC work (replica hash work is read from the replica)
        self.extra_hashes: HashTally | None = None  # blocker mode: the chain's Merkle and IDs
        self._x = 0  # chain hashes already charged
        self.sizes: dict[int, tuple[Any, int]] = {}  # record sizes, shared by a deployment
        self.step: Callable[[int, Any], Ready] = inner.step
        self.tick: Callable[[int], Ready] = inner.tick if pending is None else self._first_tick

    @property
    def replica(self) -> Any:
        """The honest state machine under any Byzantine wrapper."""
        node = self.inner
        while hasattr(node, "inner"):
            node = node.inner
        return node

    def _first_tick(self, now: int) -> Ready:
        """The first tick after a recovery: the recovery's output, then the tick's."""
        first, self._pending = self._pending, None
        self.tick = self.inner.tick
        ready: Ready = self.inner.tick(now)
        if first is not None:
            ready = first.extend(ready)
            self._state._ready = ready  # take_costs reads the merged output
        return ready

    def take_costs(self) -> dict[str, int]:
        """Authentication and hash operations since the last call (see the module docstring)."""
        state = self._state
        r = state._ready
        if r.persist:
            self._persisted.extend(r.persist)
        if r.notes or self._vc:
            self._notes(state, r.notes)
        hashes = 0
        work = self._work
        if work is not None:
            h = sum(work.values())
            if h != self._h:
                hashes = h - self._h
                self._h = h
        extra = self.extra_hashes
        if extra is not None:
            x = extra.charged()
            if x != self._x:
                hashes += x - self._x
                self._x = x
        k = self.keyring
        out: dict[str, int] = {}
        if self._macs:
            p = k.primitives
            done = p - self._p
            if done:
                self._p = p
                self.hashes.counts["mac"] += 2 * done
                hashes += 2 * done
        else:
            s = k.signs
            v = k.verifies
            if s != self._s:
                out["sign"] = s - self._s
                self._s = s
            if v != self._v:
                out["verify"] = v - self._v
                self._v = v
        if hashes:
            out["hash"] = hashes
        return out

    def _notes(self, state: Any, notes: list[Note]) -> None:
        for i, note in enumerate(notes):
            if note.kind == "view-change":
                notes[i] = Note("view_change", note.detail)
                self._vc = max(self._vc, int(note.detail))
        safety = getattr(state, "safety", None)
        if self._vc and safety is not None and safety.last_voted_view >= self._vc:
            notes.append(Note("new_view", self._vc))
            self._vc = 0

    def unblocked(self) -> int:
        """Transactions this replica accepted that no block holds yet (0 without blocks)."""
        chain = getattr(getattr(self._state, "service", None), "chain", None)
        return len(chain.unblocked) if chain is not None else 0

    def storage_bytes(self) -> dict[str, int]:
        """Bytes this node stores, by category: blocks, transactions, protocol log."""
        executed = getattr(self._state, "executed", None)
        if executed is None:
            return {}
        txs = blocks = 0
        for e in executed:
            b = e.block
            if b.height == 0:
                continue
            req_bytes = 0
            for q in b.batch:
                req_bytes += len(q.encode())
            blocks += len(b.body()) - req_bytes + _ID * len(b.batch)
            for q in e.requests:
                txs += len(q.encode())
        log = 0
        sizes = self.sizes
        for rec in self._persisted:
            log += record_size(rec, sizes)
        out = {"blocks": blocks, "txs": txs, "log": log}
        chain = getattr(self._state.service, "chain", None)
        if chain is not None:
            out["blocks"] += chain.stored_bytes()
        return out

    def stats(self) -> dict[str, int]:
        """Hash work by category, blocks stored, the votes behind decisions, client signatures."""
        state = self._state
        counters = getattr(state, "counters", None)
        out = self.hashes.as_stats()
        if callable(counters) and hasattr(state, "tree"):
            c = counters()
            for cat in ("tx_id", "digest", "block_id"):
                out[f"hash.{cat}"] += int(c[f"hash_{cat}"])
            if self.extra_hashes is not None:
                for cat in ("merkle", "block_id"):
                    out[f"hash.{cat}"] += self.extra_hashes.counts[cat]
            executed = [e for e in state.executed if e.block.height > 0]
            qcs = [len(e.block.justify.votes) for e in executed if e.block.justify.view > 0]
            chain = getattr(state.service, "chain", None)
            n = int(state.n)
            out.update(
                blocks_stored=(len(chain.blocks) - 1) if chain is not None else len(executed),
                decisions=len(executed),
                finality_votes_min=min(qcs) if qcs else 0,
                validators=n,
                client_sig_signs=0,
                client_sig_verifies=int(getattr(self.keyring, "client_verifies", 0)),
            )
        else:
            client = isinstance(state, Client)
            out.update(
                blocks_stored=0,
                decisions=0,
                finality_votes_min=0,
                validators=0,
                client_sig_signs=self.keyring.signs if client else 0,
                client_sig_verifies=0,
            )
        return out

    def verify_chain(self) -> tuple[int, str | None]:
        """Re-check this replica's ledger: (blocks after genesis, first broken link or ``None``).

        Every executed block must name its predecessor's hash and sit one height above it; in
        blocker mode the Medical Chain blocks are re-checked too (Merkle roots, IDs, links).
        """
        executed = getattr(self._state, "executed", None)
        if executed is None:
            return 0, None
        prev = None
        for e in executed:
            b = e.block
            if prev is not None and (b.parent != prev.hash or b.height != prev.height + 1):
                return prev.height, f"block {b.height} does not extend block {prev.height}"
            prev = b
        chain = getattr(self._state.service, "chain", None)
        if chain is not None:
            blocks, fault = chain.verify()
            return int(blocks), fault
        return (prev.height if prev is not None else 0), None


def _bin_size(length: int) -> int:
    """Bytes of a MessagePack ``bin`` of ``length`` bytes (header included)."""
    return length + (2 if length < 0x100 else 3 if length < 0x10000 else 5)


def record_size(rec: Any, cache: dict[int, tuple[Any, int]]) -> int:
    """``len(encode_record(rec))`` (:mod:`medbench.consensus.hotstuff.persist`), computed from
    the cached encodings: ``encode((tag, bytes))`` is a 2-element array, a one-byte tag and a
    ``bin``. A lock record's size is remembered per QC object in ``cache`` (the same QC is locked
    by every replica), holding the object so that its id stays its own."""
    t = type(rec)
    if t is Block:
        return 2 + _bin_size(len(rec.body()))
    if t is Vote or t is Proposal or t is NewView:
        return 2 + _bin_size(len(rec.encode()))
    if t is LockRecord:
        got = cache.get(id(rec.qc))
        if got is None:
            got = cache[id(rec.qc)] = (rec.qc, len(encode_record(rec)))
        return got[1]
    return len(encode_record(rec))


class LockstepChecker:
    """The honest replicas executed the same history: equal state digests at common heights."""

    name = "chain"

    def __init__(self, nodes: Sequence[Any], honest: Sequence[int]) -> None:
        self.nodes = nodes
        self.honest = tuple(honest)

    def check(self, record: RunRecord) -> Verdict:
        """Compare each honest replica's executed digests with the longest history's."""
        histories: list[tuple[int, dict[int, bytes]]] = []
        for i in self.honest:
            executed = self.nodes[i].replica.executed
            histories.append((i, {e.height: e.state_digest for e in executed}))
        if not histories:
            return Verdict(self.name, True)
        ref_i, ref = max(histories, key=lambda h: len(h[1]))
        for i, digests in histories:
            for height, digest in digests.items():
                other = ref.get(height)
                if other is not None and other != digest:
                    return Verdict(
                        self.name,
                        False,
                        f"height {height}: states of replicas {i} and {ref_i} differ",
                    )
        return Verdict(self.name, True)


def commit_key(executed: Any) -> Hashable:
    """A committed height is identified by the committed block's hash."""
    return getattr(executed, "block_hash", executed)  # type: ignore[no-any-return]


def _scheme(p: Mapping[str, Any]) -> Scheme:
    auth = str(p.get("auth") or ("modeled" if p.get("crypto", "modeled") == "modeled" else "sig"))
    if auth == "sig":
        auth = "signatures"
    try:
        return Scheme(auth)
    except ValueError:
        raise ExperimentError(f"unknown auth scheme {auth!r}") from None


def config_of(p: Mapping[str, Any], n: int) -> Config:
    """The replicas' :class:`Config` from the run's parameters."""

    def i(key: str) -> int:
        return int_param(p, key, HOTSTUFF_DEFAULTS)

    try:
        return Config(
            n=n,
            max_batch_size=i("batch"),
            max_batch_delay_us=i("batch_delay_us"),
            view_timeout_us=i("view_timeout_us"),
            max_view_timeout_us=max(i("max_view_timeout_us"), i("view_timeout_us")),
            certificate_grace_us=i("certificate_grace_us"),
        )
    except ValueError as exc:
        raise ExperimentError(f"bad hotstuff parameters: {exc}") from None


def build(params: Mapping[str, Any], rng: random.Random) -> Deployment:
    """The HotStuff deployment for ``params`` (see the module docstring for the parameters)."""
    p = HotStuffParams.resolve(params, "hotstuff")

    def i(key: str) -> int:
        return int_param(p, key, HOTSTUFF_DEFAULTS)

    n, n_clients = i("n"), i("clients")
    mode = str(p["block_mode"])
    if mode == "blocker" and n < 2:
        raise ExperimentError("the blocker rotation needs n >= 2")
    config = config_of(p, n)
    scheme = _scheme(p)
    client_ids = list(range(n, n + n_clients))
    blocker_ids = list(range(n + n_clients, n + n_clients + n)) if mode == "blocker" else []
    seed = rng.randbytes(32)
    keyrings = shared_keyrings(scheme, n, client_ids + blocker_ids, seed=seed)
    if scheme is Scheme.MODELED:
        # A client checks replies nobody else checks: the shared memo would only grow. Its own
        # modeled keyring gives the same tags, verdicts and counters.
        for c in client_ids + blocker_ids:
            keyrings[c] = ModeledKeyring(c, n, seed)
    memo = None if scheme is Scheme.MACS else VerdictMemo(scheme)
    behaviour, faulty = byzantine_ids(p, BEHAVIOURS, n, HOTSTUFF_DEFAULTS)
    honest = tuple(r for r in range(n) if r not in faulty)
    timeout = i("client_timeout_us")

    services: list[ChainService | None] = [None] * n
    if mode == "blocker":
        sizes_ = (i("block_size"), i("block_interval_us"), i("blocker_turn_us"))
        try:
            services = [ChainService(n, blocker_ids, *sizes_) for _ in range(n)]
        except ValueError as exc:
            raise ExperimentError(f"bad blocker parameters: {exc}") from None

    def replica(r: int, records: Sequence[Any] | None = None) -> tuple[Any, Ready | None]:
        service = services[r]
        kw: dict[str, Any] = {"memo": memo}
        if service is not None:
            kw["service"] = service
        if records is None:
            rep, first = Replica(r, config, keyrings[r], **kw), None
        else:
            rep, first = Replica.recover(r, config, keyrings[r], records, **kw)
        inner: Any = Byzantine(rep, behaviour) if r in faulty else rep
        return inner, first

    sizes: dict[int, tuple[Any, int]] = {}
    nodes: list[Any] = []
    for r in range(n):
        inner, _ = replica(r)
        node = SimNode(inner, keyrings[r])
        node.sizes = sizes
        service = services[r]
        if service is not None:
            node.extra_hashes = service.hashes
        nodes.append(node)
    for c in client_ids:
        nodes.append(SimNode(Client(c, n, keyrings[c], retransmit_timeout_us=timeout), keyrings[c]))

    def blocker(r: int) -> SimNode:
        service = services[r]
        assert service is not None
        b = blocker_ids[r]
        return SimNode(Blocker(b, r, n, keyrings[b], service, timeout), keyrings[b])

    nodes.extend(blocker(r) for r in range(len(blocker_ids)))

    subs = workload_submissions(p, rng, client_ids, Submit)

    def recover(node_id: int, persisted: list[Any]) -> Any:
        if node_id in blocker_ids:
            fresh = blocker(node_id - blocker_ids[0])
        elif node_id >= n:
            client = Client(node_id, n, keyrings[node_id], retransmit_timeout_us=timeout)
            fresh = SimNode(client, keyrings[node_id])
        else:
            service = services[node_id]
            if service is not None:
                service.reset()  # the chain is rebuilt by executing the ledger again
            inner, first = replica(node_id, persisted)
            fresh = SimNode(inner, keyrings[node_id], first, persisted)
            fresh.sizes = sizes
            if service is not None:
                fresh.extra_hashes = service.hashes
        nodes[node_id] = fresh
        return fresh

    checkers: list[Any] = [SafetyChecker(), LockstepChecker(nodes, honest), LivenessChecker()]
    sites = [*range(n), *(j % n for j in range(n_clients)), *range(len(blocker_ids))]
    return Deployment(
        nodes=nodes,
        submissions=subs,
        replicas=honest,
        sites=sites,
        recover=recover,
        completion_key=completion_key,
        commit_key=commit_key,
        checkers=checkers,
        params=p,
    )


__all__ = [
    "BEHAVIOURS",
    "HOTSTUFF_DEFAULTS",
    "PARAMS",
    "HotStuffParams",
    "LockstepChecker",
    "SimNode",
    "build",
    "commit_key",
    "config_of",
]
