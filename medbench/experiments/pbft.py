"""PBFT in the simulator: the ``"pbft"`` protocol factory of :mod:`medbench.experiments`.

Theory of operation
-------------------
:func:`build` turns a parameter dict into a :class:`~medbench.experiments.Deployment`: replicas
``0..n-1`` (honest :class:`~medbench.consensus.pbft.replica.Replica` objects, some of them wrapped
in a Byzantine behaviour of :mod:`medbench.consensus.pbft.byzantine`) and clients ``n..n+clients-1``
(:class:`~medbench.consensus.pbft.client.Client`), each wrapped in a :class:`SimNode` adapter.
Client ``j`` sits at the site of replica ``j mod n`` (a hospital runs a replica and its clients).

The workload is the common one of :mod:`medbench.experiments.load` (``clients``, ``requests``,
``rate_tps``, ``payload_bytes``, ``load``, ...): request ``i`` goes to client node
``n + i mod clients`` at the time the load shape gives it. A PBFT client orders one request at a
time, so under an open load a request's latency includes the time it waits behind its client's
earlier requests (``load = "closed"`` sends a client's next request only when one is answered).
The k-th operation given to client ``c`` gets client timestamp ``k``: its transaction name is
``(c, k)``, which is also the key of its :class:`~medbench.consensus.pbft.client.Completion`.

:class:`SimNode` adds what the simulator wants and the sans-IO nodes do not do themselves:

* ``take_costs()`` from the keyring counters: with ``signatures`` and ``modeled`` (a model *of*
  signatures) every sign is charged as ``sign`` and every check as ``verify``; with ``macs``
  every MAC computed or checked (the keyring's ``primitives``) is charged as two ``hash`` calls
  (HMAC-SHA256 is two SHA-256 passes), and with ``client_signatures`` the clients' signed
  requests (:class:`SignedRequestMacKeyring`) as ``sign``/``verify``;
* client-signature work, the one rule Table 1 applies to every system: a client signs each
  request, each replica verifies it once (the replica caches acceptances by digest).
  ``stats()`` reports it apart from the protocol's own signatures (``client_sig_signs`` at a
  client, ``client_sig_verifies`` at a replica);
* the hash work of every executed batch, counted by the rule of :mod:`medbench.hashwork`
  (transaction IDs, batch and state digests, Merkle root and block ID of each appended block)
  and charged as ``hash``; ``stats()`` gives it by category;
* ``storage_bytes()``: encoded blocks, executed requests and protocol log records, per node;
  ``verify_chain()`` re-checks the hash links and IDs of the replica's chain;
* the replica's ``view-change``/``new-view`` notes are renamed ``view_change``/``new_view``, the
  names :mod:`medbench.metrics` times view changes with;
* a replica rebuilt after a crash (:meth:`Replica.recover`) returns a first output (its FETCH);
  the adapter hands it to the driver with the next tick.

Verdicts (:attr:`Deployment.checkers`): :class:`~medbench.metrics.SafetyChecker` over the honest
replicas with a batch's digest as the commit key (honest replicas commit identical batches at each
sequence number), :class:`ChainChecker` (the honest replicas' chains of blocks agree on their
common prefix) and :class:`~medbench.metrics.LivenessChecker` (every request completed).

Parameters (declared by :class:`PbftParams`, ``medbench params pbft``; defaults of the
PBFT-specific ones in :data:`PBFT_DEFAULTS`): ``n``, the workload, ``batch`` (max batch size),
``batch_delay_us``, ``checkpoint_interval``, ``log_window``
(0: ``max(64, 4 * checkpoint_interval)``),
``view_change_timeout_us``, ``client_timeout_us``, ``block_mode`` (``blocker`` | ``integrated``),
``block_size``, ``block_interval_us``, ``auth`` (``signatures`` | ``macs`` | ``modeled``; empty:
``modeled`` when ``crypto`` is ``modeled``, else ``signatures``), ``client_signatures`` (with
``macs``: 1, the default, makes clients sign their requests, modeled or Ed25519 after
``crypto``, while the replicas keep MAC authenticators among themselves — Aardvark's defence
against one faulty client's partial authenticator, :class:`medbench.consensus.auth.
SignedRequestMacKeyring`; 0 keeps plain MACs on requests too, to show that attack), ``byzantine`` (a
name of
:data:`BEHAVIOURS`, empty for none), ``byzantine_count`` (0: 1, or f+1 for ``split-brain``) and
``byzantine_ids`` (comma-separated replica ids; default the first ``byzantine_count`` replicas,
so the primaries of the first views). The common parameters (``topology``, ``faults``, ...) are
handled by :func:`medbench.experiments.run`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal

from pydantic import field_validator

from medbench import codec
from medbench.consensus.auth import (
    Keyring,
    ModeledKeyring,
    Scheme,
    SignatureKeyring,
    SignedRequestMacKeyring,
    make_keyrings,
)
from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft.blocker import BlockMode
from medbench.consensus.pbft.client import Client, Completion
from medbench.consensus.pbft.log import COMMIT_PHASE, ExecutedBatch
from medbench.consensus.pbft.messages import Block, Submit
from medbench.consensus.pbft.replica import Config, Replica
from medbench.experiments import load
from medbench.experiments.params import RunParams, param
from medbench.experiments.runner import Deployment, ExperimentError, Submission
from medbench.hashwork import HashTally, block_hashes
from medbench.metrics import LivenessChecker, RunRecord, SafetyChecker, Verdict
from medbench.node import Note, Ready, Send

PBFT_DEFAULTS: dict[str, Any] = {
    "batch": 16,
    "batch_delay_us": 0,
    "checkpoint_interval": 16,
    "log_window": 0,
    "view_change_timeout_us": 500_000,
    "client_timeout_us": 500_000,
    "block_mode": "integrated",
    "block_size": 100,
    "block_interval_us": 1_000_000,
    "auth": "",
    "client_signatures": 1,
    "byzantine": "",
    "byzantine_count": 0,
    "byzantine_ids": "",
}
"""Defaults of the PBFT-specific parameters."""

BEHAVIOURS: tuple[str, ...] = (
    "silent-primary",
    "dropping-primary",
    "altering-primary",
    "equivocating-primary",
    "bad-voter",
    "bad-voter-view",
    "bad-voter-sequence",
    "replayer",
    "crashed",
    "split-brain",
)
"""Named Byzantine behaviours (:mod:`medbench.consensus.pbft.byzantine`); ``split-brain`` is a
coalition (f+1 by default; ``byzantine_count=1`` is a primary that equivocates in every phase)."""

_RENAMED = {"view-change": "view_change", "new-view": "new_view"}

_D = PBFT_DEFAULTS


class PbftParams(RunParams):
    """The parameters of a ``pbft`` run (see the module docstring)."""

    batch: int = param(_D["batch"], "most requests in one batch", "requests", ge=1)
    batch_delay_us: int = param(
        _D["batch_delay_us"], "how long the primary waits to fill a batch", ge=0
    )
    checkpoint_interval: int = param(
        _D["checkpoint_interval"], "sequence numbers between checkpoints", "batches", ge=1
    )
    log_window: int = param(
        _D["log_window"], "log window (0: max(64, 4 x checkpoint_interval))", "batches", ge=0
    )
    view_change_timeout_us: int = param(
        _D["view_change_timeout_us"], "backup's timeout before it asks for a view change", ge=1
    )
    client_timeout_us: int = param(
        _D["client_timeout_us"], "client's timeout before it retransmits to every replica", ge=1
    )
    block_mode: Literal["integrated", "blocker"] = param(
        _D["block_mode"], "blocks: integrated (in each batch) or blocker (BLOCK rounds)"
    )
    block_size: int = param(_D["block_size"], "most transactions per block", "txs", ge=1)
    block_interval_us: int = param(_D["block_interval_us"], "blocker: time between blocks", ge=1)
    auth: Literal["", "signatures", "sig", "macs", "modeled"] = param(
        _D["auth"], "signatures | macs | modeled (empty: modeled when crypto is modeled)"
    )
    client_signatures: int = param(
        _D["client_signatures"], "macs: 1 = clients sign requests (Aardvark), 0 = plain MACs",
        ge=0, le=1,
    )  # fmt: skip
    byzantine: str = param(_D["byzantine"], f"Byzantine behaviour: {', '.join(BEHAVIOURS)}")
    byzantine_count: int = param(
        _D["byzantine_count"], "Byzantine replicas (0: 1, or f+1 for split-brain)", "replicas",
        ge=0,
    )  # fmt: skip
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
        """PBFT's messages and memory (:func:`medbench.experiments.size.pbft`)."""
        from medbench.experiments import size

        return size.pbft(p)


PARAMS = PbftParams
"""The schema :func:`medbench.experiments.params.schema_for` finds for ``pbft``."""


class SimNode:
    """Adapter of a PBFT replica or client (possibly Byzantine-wrapped) for the simulator.

    See the module docstring. ``step`` and ``tick`` are the wrapped node's own bound methods (no
    extra call on the hot path); notes are renamed in :meth:`take_costs`, which the simulator
    calls after every ``step`` and ``tick`` and before it reads the output. The same call
    accounts for the batches the honest machine executed in that step (:meth:`_account`): their
    hash work, the bytes the replica now stores, and the commit votes behind each decision.
    """

    __slots__ = (
        "_macs",
        "_p",
        "_pending",
        "_s",
        "_seen",
        "_signer",
        "_ss",
        "_state",
        "_sv",
        "_v",
        "block_bytes",
        "blocks_stored",
        "decisions",
        "finality_votes_min",
        "hashes",
        "inner",
        "keyring",
        "log_bytes",
        "node_id",
        "step",
        "tick",
        "tx_bytes",
    )

    def __init__(self, inner: Any, keyring: Keyring, pending: Ready | None = None) -> None:
        self.inner = inner
        self.node_id: int = inner.node_id
        self.keyring = keyring
        self._macs = keyring.scheme is Scheme.MACS
        self._s = keyring.signs
        self._v = keyring.verifies
        self._p = keyring.primitives
        # MAC authenticators with signed client requests: the signatures' own keyring
        self._signer: Keyring | None = getattr(keyring, "signer", None)
        self._ss = self._sv = 0
        self._pending = pending
        self._state = self.replica  # the honest machine whose ``_ready`` holds the notes
        self._seen: Ready | None = None  # the output last accounted (a wrapper may not step)
        self.step: Callable[[int, Any], Ready] = inner.step
        self.tick: Callable[[int], Ready] = inner.tick if pending is None else self._first_tick
        self.hashes = HashTally()
        self.tx_bytes = 0  # encoded requests executed (every replica keeps the bodies)
        self.block_bytes = 0  # encoded blocks appended to the chain (header + tx IDs)
        self.blocks_stored = 0
        self.log_bytes = 0  # encoded protocol records handed to stable storage
        self.decisions = 0  # batches committed through a COMMIT quorum
        self.finality_votes_min = 0  # fewest distinct COMMIT voters behind one decision

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
        _rename_notes(ready.notes)
        return ready

    def take_costs(self) -> dict[str, int]:
        """Authentication operations and hash work since the last call (see the class doc)."""
        r = self._state._ready
        notes = r.notes
        if notes:
            _rename_notes(notes)
        hashes = 0
        if (r.committed or r.persist) and r is not self._seen:
            # A Byzantine wrapper may answer without stepping the machine: count an output once.
            self._seen = r
            hashes = self._account(r)
        k = self.keyring
        if self._macs:
            p = k.primitives
            done = p - self._p
            self._p = p
            if done:
                self.hashes.counts["mac"] += 2 * done
                hashes += 2 * done
            macs_out = {"hash": hashes} if hashes else {}
            sig = self._signer
            if sig is not None:
                ss, sv = sig.signs - self._ss, sig.verifies - self._sv
                self._ss, self._sv = sig.signs, sig.verifies
                if ss:
                    macs_out["sign"] = ss
                if sv:
                    macs_out["verify"] = sv
            return macs_out
        s = k.signs
        v = k.verifies
        ds = s - self._s
        dv = v - self._v
        out: dict[str, int]
        if ds:
            self._s = s
            if dv:
                self._v = v
                out = {"sign": ds, "verify": dv}
            else:
                out = {"sign": ds}
        elif dv:
            self._v = v
            out = {"verify": dv}
        elif not hashes:
            return {}
        else:
            out = {}
        if hashes:
            out["hash"] = hashes
        return out

    def _account(self, ready: Ready) -> int:
        """Hash work, storage and commit votes of one output; returns the hashes to charge.

        Per executed batch (docs/medical-chain.md §1.5 blocks, TOCS §4.2 digests), at this replica:
        one hash per item (a request's digest is its transaction ID; a blocker's BLOCK message's
        digest is a protocol digest), the batch digest (built by the primary, recomputed by a
        backup), the chained state digest, and per appended block the Merkle root and block ID twice
        (``Chain.append`` builds the block, then validates it).
        Executed requests and appended blocks are stored; other persisted records (pre-prepares,
        prepares, commits, checkpoints, view changes) are the protocol log.
        """
        total = 0
        counts = self.hashes.counts
        for c in ready.committed:
            batch = c.payload
            items = getattr(batch, "items", None)
            if items is None:
                continue
            n_items = len(items)
            # (an ordered BLOCK that the chain skipped was still hashed as an item)
            n_blocks = sum(1 for item in items if type(item) is Block)
            counts["tx_id"] += n_items - n_blocks
            counts["digest"] += 2 + n_blocks
            total += n_items + 2
            for block in batch.blocks:
                work = block_hashes(len(block.tx_ids))
                counts["merkle"] += 2 * work["merkle"]
                counts["block_id"] += 2 * work["block_id"]
                total += 2 * (work["merkle"] + work["block_id"])
                self.block_bytes += _block_size(block)
                self.blocks_stored += 1
            for req in batch.requests:
                self.tx_bytes += len(req.encode())
            self._note_votes(batch)
        for rec in ready.persist:
            if not isinstance(rec, ExecutedBatch):
                enc = getattr(rec, "encode", None)
                if enc is not None:
                    self.log_bytes += len(enc())
        return total

    def _note_votes(self, batch: ExecutedBatch) -> None:
        """Distinct COMMIT voters the replica held for ``batch`` (none after a state transfer)."""
        state = self._state
        log = getattr(state, "log", None)
        slot = log.get(batch.sequence) if log is not None else None
        if slot is None or slot.pre_prepare is None:
            return  # fetched by state transfer: its proof is a checkpoint certificate
        got = state.votes.count(COMMIT_PHASE, slot.view, batch.sequence, batch.batch_digest)
        if got <= 0:
            return
        self.decisions += 1
        if self.finality_votes_min == 0 or got < self.finality_votes_min:
            self.finality_votes_min = got

    def unblocked(self) -> int:
        """Transactions this replica accepted that no block holds yet (0 for a client)."""
        chain = getattr(self._state, "chain", None)
        return len(chain.unblocked) if chain is not None else 0

    def storage_bytes(self) -> dict[str, int]:
        """Bytes this node stores, by category: blocks, transactions, protocol log."""
        return {"blocks": self.block_bytes, "txs": self.tx_bytes, "log": self.log_bytes}

    def stats(self) -> dict[str, int]:
        """Hash work by category, blocks stored, the votes behind decisions, client signatures."""
        out = self.hashes.as_stats()
        n = int(getattr(self._state, "n", 0))
        sig = self._signer if self._signer is not None else self.keyring
        # Plain MAC mode authenticates requests with MACs: no client signature at all.
        client = self.node_id >= self.keyring.n_replicas and sig.scheme is not Scheme.MACS
        out.update(
            blocks_stored=self.blocks_stored,
            decisions=self.decisions,
            finality_votes_min=self.finality_votes_min,
            validators=n,
            # Clients sign nothing but requests; replicas count the requests they verified.
            client_sig_signs=sig.signs if client else 0,
            client_sig_verifies=(
                0 if sig.scheme is Scheme.MACS else int(getattr(sig, "client_verifies", 0))
            ),
        )
        return out

    def verify_chain(self) -> tuple[int, str | None]:
        """Re-check this replica's chain: (blocks after genesis, first broken link or ``None``).

        Every block must name its predecessor's ID and recompute to its own Merkle root and ID
        (the block format's ``validate``). Clients hold no chain: ``(0, None)``.
        """
        chain = getattr(self._state, "chain", None)
        if chain is None:
            return 0, None
        blocks, ids, fmt = chain.blocks, chain.ids, chain.format
        for h in range(1, len(blocks)):
            if blocks[h].header.prev_id != ids[h - 1]:
                return h - 1, f"block {h} does not name block {h - 1} as its predecessor"
            why = fmt.validate(blocks[h])
            if why is not None or fmt.block_id(blocks[h]) != ids[h]:
                return h - 1, f"block {h}: {why or 'stored ID differs'}"
        return len(blocks) - 1, None


def _block_size(block: Any) -> int:
    """Encoded size of a chain block: its own encoding, or header plus transaction IDs."""
    enc = getattr(block, "encode", None)
    if callable(enc):
        return len(enc())
    return len(codec.encode((block.header.encode(), tuple(block.tx_ids))))


class SharedModeledKeyring(ModeledKeyring):
    """The ``modeled`` keyring with one verification memo shared by every node of a run.

    A modeled tag check is a pure function of ``(sender, body, auth)`` (every node of the model
    knows every secret), and in the simulator the n - 1 receivers of a broadcast check the very
    same bytes. The first check computes the tag; the others find the verdict in the memo (the
    body's hash is cached by Python on the shared bytes object). Counters are unchanged (each
    check still counts one ``verifies``), so the charged CPU time and every result are the same
    as with :class:`ModeledKeyring`; only wall time drops. The memo is bounded (cleared when
    full), which changes nothing but wall time either.
    """

    MEMO_LIMIT = 200_000

    def __init__(self, node_id: int, n_replicas: int, seed: bytes, memo: dict[Any, bool]) -> None:
        super().__init__(node_id, n_replicas, seed)
        self._memo = memo
        self.client_verifies = 0  # checks of a client's tag (its signed request)

    def verify(self, sender: int, body: bytes, auth: Any) -> bool:
        """Recompute ``sender``'s tag (or recall the verdict) and compare."""
        if type(auth) is not bytes or type(body) is not bytes or type(sender) is not int:
            self.verifies += 1
            self.primitives += 1
            return False
        if sender >= self.n_replicas:
            self.client_verifies += 1
        key = (sender, body, auth)
        memo = self._memo
        ok = memo.get(key)
        if ok is None:
            ok = super().verify(sender, body, auth)
            if len(memo) >= self.MEMO_LIMIT:
                memo.clear()
            memo[key] = ok
            return ok
        self.verifies += 1
        self.primitives += 1
        return ok


class ClientCountingSignatureKeyring(SignatureKeyring):
    """:class:`SignatureKeyring` that also counts the checks of client signatures."""

    def __init__(self, base: SignatureKeyring) -> None:
        # Adopt the keys and counters of a keyring built by :func:`make_keyrings`.
        self.__dict__.update(base.__dict__)
        self.client_verifies = 0

    def verify(self, sender: int, body: bytes, auth: Any) -> bool:
        """Check the Ed25519 signature; count it when ``sender`` is a client."""
        if type(sender) is int and sender >= self.n_replicas:
            self.client_verifies += 1
        return super().verify(sender, body, auth)


def shared_keyrings(
    scheme: Scheme,
    n_replicas: int,
    node_ids: Sequence[int],
    seed: bytes,
    client_signer: Scheme | None = None,
) -> dict[int, Keyring]:
    """:func:`make_keyrings`, with :class:`SharedModeledKeyring` for the ``modeled`` scheme.

    Keyrings of every scheme count ``client_verifies``. With ``scheme`` ``macs`` and a
    ``client_signer`` scheme (``modeled`` or ``signatures``), clients sign their requests in
    that scheme (:class:`SignedRequestMacKeyring`).
    """
    if scheme is Scheme.MACS and client_signer is not None:
        if client_signer is Scheme.MACS:
            raise ValueError("client requests are signed with signatures or their model")
        signers = shared_keyrings(client_signer, n_replicas, node_ids, seed)
        return {
            i: SignedRequestMacKeyring(i, n_replicas, seed, signer) for i, signer in signers.items()
        }
    if scheme is Scheme.SIGNATURES:
        rings = make_keyrings(scheme, n_replicas, node_ids, seed=seed)
        return {
            i: ClientCountingSignatureKeyring(k)
            for i, k in rings.items()
            if isinstance(k, SignatureKeyring)
        }
    if scheme is not Scheme.MODELED:  # MACS without a client signer: plain MACs everywhere
        return make_keyrings(scheme, n_replicas, node_ids, seed=seed, client_signatures=False)
    memo: dict[Any, bool] = {}
    ids = sorted(set(node_ids) | set(range(n_replicas)))
    return {i: SharedModeledKeyring(i, n_replicas, seed, memo) for i in ids}


def _rename_notes(notes: list[Note]) -> None:
    for i, note in enumerate(notes):
        new = _RENAMED.get(note.kind)
        if new is not None:
            notes[i] = Note(new, note.detail)


class ChainChecker:
    """The honest replicas' chains of blocks agree on their common prefix (read at the end)."""

    name = "chain"

    def __init__(self, nodes: Sequence[SimNode], honest: Sequence[int]) -> None:
        self.nodes = nodes
        self.honest = tuple(honest)

    def check(self, record: RunRecord) -> Verdict:
        """Compare every honest chain with the longest one."""
        chains = [(i, self.nodes[i].replica.chain.ids) for i in self.honest]
        if not chains:
            return Verdict(self.name, True)
        ref_i, ref = max(chains, key=lambda c: len(c[1]))
        for i, ids in chains:
            if ids != ref[: len(ids)]:
                k = next(h for h, (a, b) in enumerate(zip(ids, ref, strict=False)) if a != b)
                return Verdict(
                    self.name, False, f"height {k}: chains of replicas {i} and {ref_i} differ"
                )
        return Verdict(self.name, True)


def completion_key(item: Any) -> Hashable:
    """A client's completion is named ``(client, timestamp)``, as its submission was."""
    if isinstance(item, Completion):
        return (item.client, item.timestamp)
    return item  # type: ignore[no-any-return]


def commit_key(batch: Any) -> Hashable:
    """A committed batch is identified by its batch digest."""
    return getattr(batch, "batch_digest", batch)  # type: ignore[no-any-return]


def _int(params: Mapping[str, Any], key: str) -> int:
    value = params.get(key, PBFT_DEFAULTS.get(key))
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ExperimentError(f"parameter {key} must be an integer, not {value!r}") from None


def _byzantine_ids(params: Mapping[str, Any], behaviour: str, n: int, f: int) -> list[int]:
    if not behaviour:
        return []
    if behaviour not in BEHAVIOURS:
        raise ExperimentError(f"unknown byzantine behaviour {behaviour!r}; known: {BEHAVIOURS}")
    count = _int(params, "byzantine_count")
    if count <= 0:
        count = f + 1 if behaviour == "split-brain" else 1
    raw = str(params.get("byzantine_ids", "") or "")
    ids = [int(x) for x in raw.split(",") if x.strip()] if raw else list(range(count))
    if len(set(ids)) != len(ids) or any(not 0 <= i < n for i in ids):
        raise ExperimentError(f"byzantine_ids {ids} must be distinct replicas of 0..{n - 1}")
    if behaviour == "split-brain" and 0 not in ids:
        # one member is a primary equivocating in every phase (it votes both batches)
        raise ExperimentError("split-brain needs a coalition including replica 0 (the primary)")
    return ids


def _wrap(
    behaviour: str,
    replica: Replica,
    clients: Sequence[int],
    coalition: Sequence[int],
    keyrings: dict[int, Keyring],
    outbox: dict[int, list[Send]],
) -> Any:
    if behaviour == "silent-primary":
        return faults.SilentPrimary(replica)
    if behaviour == "dropping-primary":
        return faults.DroppingPrimary(replica, clients)
    if behaviour == "altering-primary":
        return faults.AlteringPrimary(replica)
    if behaviour == "equivocating-primary":
        return faults.EquivocatingPrimary(replica)
    if behaviour.startswith("bad-voter"):
        field = behaviour.removeprefix("bad-voter").removeprefix("-") or "digest"
        return faults.BadVoter(replica, field)
    if behaviour == "replayer":
        return faults.Replayer(replica)
    if behaviour == "crashed":
        node = faults.Crashable(replica)
        node.crash()
        return node
    return faults.SplitBrain(replica, coalition, keyrings, outbox)


def build(params: Mapping[str, Any], rng: random.Random) -> Deployment:
    """The PBFT deployment for ``params`` (see the module docstring for the parameters)."""
    p = PbftParams.resolve(params, "pbft")
    n = _int(p, "n")
    n_clients = _int(p, "clients")
    k = _int(p, "checkpoint_interval")
    window = _int(p, "log_window") or max(64, 4 * k)
    auth = str(p.get("auth") or ("modeled" if p.get("crypto", "modeled") == "modeled" else "sig"))
    if auth == "sig":
        auth = "signatures"
    try:
        scheme = Scheme(auth)
        mode = BlockMode(str(p["block_mode"]))
        config = Config(
            n=n,
            checkpoint_interval=k,
            log_window=window,
            max_batch_size=_int(p, "batch"),
            max_batch_delay_us=_int(p, "batch_delay_us"),
            view_change_timeout_us=_int(p, "view_change_timeout_us"),
            block_mode=mode,
            block_size=_int(p, "block_size"),
            block_interval_us=_int(p, "block_interval_us"),
        )
    except ValueError as exc:
        raise ExperimentError(f"bad pbft parameters: {exc}") from None
    client_ids = list(range(n, n + n_clients))
    signer: Scheme | None = None
    if scheme is Scheme.MACS and _int(p, "client_signatures"):
        signer = Scheme.MODELED if p.get("crypto", "modeled") == "modeled" else Scheme.SIGNATURES
    keyrings = shared_keyrings(scheme, n, client_ids, seed=rng.randbytes(32), client_signer=signer)
    behaviour = str(p.get("byzantine") or "")
    faulty = _byzantine_ids(p, behaviour, n, config.f)
    honest = tuple(i for i in range(n) if i not in faulty)
    outbox: dict[int, list[Send]] = {}
    timeout = _int(p, "client_timeout_us")

    nodes: list[SimNode] = []
    for i in range(n):
        replica = Replica(i, config, keyrings[i])
        inner: Any = replica
        if i in faulty:
            inner = _wrap(behaviour, replica, client_ids, faulty, keyrings, outbox)
        nodes.append(SimNode(inner, keyrings[i]))
    for c in client_ids:
        client = Client(c, n, keyrings[c], retransmit_timeout_us=timeout)
        nodes.append(SimNode(client, keyrings[c]))

    size = _int(p, "payload_bytes")
    subs: list[Submission] = []
    issued = dict.fromkeys(client_ids, 0)
    names: list[tuple[int, int]] = []
    for a in load.arrivals(load.workload(p), rng):
        c = client_ids[a.client]
        issued[c] += 1
        names.append((c, issued[c]))
        op = rng.randbytes(size)
        after = names[a.after] if a.after is not None else None
        subs.append(Submission(a.at_us, c, Submit(op), names[-1], after))

    def recover(node_id: int, persisted: list[Any]) -> SimNode:
        if node_id >= n:
            fresh = SimNode(
                Client(node_id, n, keyrings[node_id], retransmit_timeout_us=timeout),
                keyrings[node_id],
            )
        else:
            old = nodes[node_id]
            base = old.replica
            replica, first = Replica.recover(node_id, config, keyrings[node_id], persisted)
            replica.validator, replica.service = base.validator, base.service
            inner: Any = replica
            if node_id in faulty:
                inner = _wrap(behaviour, replica, client_ids, faulty, keyrings, outbox)
            fresh = SimNode(inner, keyrings[node_id], first)
        nodes[node_id] = fresh
        return fresh

    checkers: list[Any] = [SafetyChecker(), ChainChecker(nodes, honest), LivenessChecker()]
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
