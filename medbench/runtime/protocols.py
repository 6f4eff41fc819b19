"""Chained HotStuff and Raft on the cluster runtime: their nodes, their host and their audit.

Theory of operation
-------------------
A consortium file may name ``consensus = "hotstuff"`` or ``"raft"`` (:mod:`.config`; null
service only, the Medical Chain service runs on PBFT). Every other part of the runtime is
shared with PBFT: the transport and its mutual TLS, the frames (each protocol has its frame
type, :mod:`.framing`), the driver's rounds with one store group and persist-before-send
(:mod:`.driver`), the SQLite consensus log, metrics and signals (:mod:`.node`). What differs is
the node the driver steps:

* :class:`HotStuffNode` — a :class:`medbench.consensus.hotstuff.Replica` signing with the
  member's validator key (Ed25519, like PBFT on the runtime). Its ``Ready.persist`` records —
  its own votes (the highest voted view), lock records (the locked QC), admitted blocks, its
  own proposals and NEW-VIEWs, commit records (:mod:`medbench.consensus.hotstuff.persist`) —
  are appended to the store's consensus log in the round's commit, before the round's messages
  leave (Yin et al., PODC 2019, §4.3: a replica must never vote twice in a view). After a crash
  :meth:`Replica.recover` rebuilds it from them and its first output asks the peers for the
  blocks it missed;
* :class:`RaftNode` — a :class:`medbench.consensus.raft.Replica`; its records are Figure 2's
  persistent state (``currentTerm``, ``votedFor``, the log: hard states, entries, truncations)
  "updated on stable storage before responding to RPCs" (Ongaro & Ousterhout, 2014), restored
  by :meth:`Replica.recover`. Raft authenticates nothing (crash faults only), so a Raft node
  signs and checks no message; the links are still mutual TLS. Snapshots are off by default
  (``snapshot_interval = 0``): the log on disk is then the whole committed order, which the
  audit reads back.

:class:`ProtocolHost` is :class:`~.node.NodeHost` with these nodes instead of PBFT's
(:meth:`~.node.NodeHost.null_service`) and their own status: ``view`` is HotStuff's pacemaker
view or Raft's term, ``primary`` the view's leader or the leader the Raft node knows (-1: none),
``last_executed`` the committed height or the last applied log index, ``view_changes`` the view
timeouts or elections started. :func:`run_node` is ``medbench node run`` for every protocol.

:func:`audit_stores` checks a stopped consortium's stores as :func:`.audit.audit` does for PBFT:
the committed order (HotStuff: committed block hash per height, rebuilt from the stored blocks
below the highest commit record; Raft: term and request per committed log index) is identical
on every node that reached a position, without gaps; no node voted twice (HotStuff: two
different blocks in one view; Raft: two different candidates in one term); and every request a
client saw committed is in the committed order of every node that reached the top.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from medbench.consensus import hotstuff, raft
from medbench.consensus.auth import Keyring
from medbench.consensus.raft.recovery import replay as raft_replay
from medbench.node import Ready
from medbench.runtime import node as node_mod
from medbench.runtime.audit import AuditReport, NodeLog, audit
from medbench.runtime.config import NodeConfig
from medbench.runtime.transport import stats_of
from medbench.store.node_store import NodeStore

RAFT_NOOP = b"raft-noop"
"""What the audit records for the leader's no-op entry of a term (§8) in place of a request."""


def _records(
    store: NodeStore, decode: Callable[[bytes], Any], error: type[Exception]
) -> tuple[list[Any], int]:
    """The store's consensus log decoded with ``decode``; records that do not decode are
    counted, never replayed (a changed vote must not come back)."""
    out: list[Any] = []
    corrupt = 0
    for entry in store.read_log():
        try:
            out.append(decode(entry.record))
        except error:
            corrupt += 1
    return out, corrupt


def _append(
    store: NodeStore, outputs: list[tuple[int, Ready]], encode: Callable[[Any], bytes]
) -> None:
    """Every record of the round, in order, in one append (inside the round's commit)."""
    entries = []
    for _, ready in outputs:
        for rec in ready.persist:
            # a position and a view/term to index the record by (the log keeps every record)
            seq = getattr(rec, "height", getattr(rec, "index", 0))
            view = getattr(rec, "view", getattr(rec, "term", 0))
            entries.append((int(seq), int(view), encode(rec)))
    if entries:
        store.append_log_batch(entries)


class HotStuffNode(node_mod.RestoredReplica):
    """A chained HotStuff replica of empty operations, persisted by the runtime (module doc)."""

    def __init__(
        self, node_id: int, config: hotstuff.Config, keyring: Keyring, store: NodeStore, now: int
    ) -> None:
        self.node_id = node_id
        self.store = store
        records, self.corrupt = _records(store, hotstuff.decode_record, hotstuff.MessageError)
        if records:
            self.replica, self.first = hotstuff.Replica.recover(
                node_id, config, keyring, records, now=now
            )
        else:
            self.replica, self.first = hotstuff.Replica(node_id, config, keyring), Ready()
        self.recovered = len(records)

    def persist(self, outputs: list[tuple[int, Ready]]) -> None:
        """Every record of the round in the consensus log (votes and locks before they leave)."""
        _append(self.store, outputs, hotstuff.encode_record)

    @property
    def view(self) -> int:
        """The pacemaker's view."""
        return int(self.replica.pacemaker.view)

    @property
    def leader(self) -> int:
        """The leader of the current view (round robin, §5)."""
        return int(self.replica.pacemaker.leader(self.view))

    @property
    def last_executed(self) -> int:
        """Height of the highest committed block."""
        return int(self.replica.tree.height)

    @property
    def height(self) -> int:
        """Committed blocks after genesis."""
        return self.last_executed

    @property
    def pending(self) -> int:
        """Requests in the mempool."""
        return len(self.replica.mempool)


class RaftNode(node_mod.RestoredReplica):
    """A Raft node of empty operations, persisted by the runtime (see the module docstring)."""

    def __init__(self, node_id: int, config: raft.Config, store: NodeStore, now: int) -> None:
        self.node_id = node_id
        self.store = store
        records, self.corrupt = _records(store, raft.decode_record, raft.MessageError)
        # recover() also for a fresh node: it starts the election timer from ``now``, not from
        # time 0 (which would make every member stand for election at its first tick)
        self.replica, self.first = raft.Replica.recover(node_id, config, records, now=now)
        self.recovered = len(records)

    def persist(self, outputs: list[tuple[int, Ready]]) -> None:
        """Every record of the round (term, vote, entries) before any answer leaves."""
        _append(self.store, outputs, raft.encode_record)

    @property
    def view(self) -> int:
        """The current term."""
        return int(self.replica.term)

    @property
    def leader(self) -> int:
        """The leader this node knows (itself when it leads; -1: none)."""
        return int(self.replica.leader)

    @property
    def last_executed(self) -> int:
        """The last applied log index."""
        return int(self.replica.last_applied)

    @property
    def height(self) -> int:
        """Committed log entries (no-ops included)."""
        return int(self.replica.commit_index)

    @property
    def pending(self) -> int:
        """Requests the leader appended and has not committed yet."""
        return len(self.replica.pending)


class ProtocolHost(node_mod.NodeHost):
    """A node process running HotStuff or Raft (see the module docstring)."""

    def null_service(self, store: NodeStore, now: int) -> Any:
        """The consortium's protocol node instead of PBFT's."""
        cons = self.cons
        if cons.consensus == "hotstuff":
            return HotStuffNode(self.cfg.id, cons.consensus_config, self.keyring, store, now)
        if cons.consensus == "raft":
            return RaftNode(self.cfg.id, cons.consensus_config, store, now)
        raise ValueError(f"no runtime node for consensus {cons.consensus!r}")

    def position(self) -> tuple[int, int]:
        """``(view or term, last executed)``."""
        return self.service.view, self.service.last_executed

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        # the node's records of a round are one append (one transaction), as PBFT's null node
        yield

    def persist(self, outputs: list[tuple[int, Ready]]) -> None:
        self.service.persist(outputs)

    def output(self, node_id: int, ready: Ready) -> None:
        if ready.committed:
            for c in ready.committed:
                p = c.payload
                if isinstance(p, hotstuff.ExecutedBlock):
                    self.committed_batches += 1
                    self.committed_requests += len(p.requests)
                elif isinstance(p, raft.AppliedEntry):
                    self.committed_batches += 1
                    self.committed_requests += int(p.executed and p.request is not None)
            self.last_executed = self.service.last_executed
        if ready.completed:
            self.completed += len(ready.completed)

    def snapshot(self) -> dict[str, Any]:
        """What ``cluster status`` and ``/metrics`` show (the PBFT keys that apply)."""
        svc = self.service
        changes = "view-change" if self.cons.consensus == "hotstuff" else "election"
        out: dict[str, Any] = {
            "node": self.cfg.id,
            "consensus": self.cons.consensus,
            "view": svc.view,
            "primary": svc.leader,
            "last_executed": svc.last_executed,
            "height": svc.height,
            "committed_batches": self.committed_batches,
            "committed_requests": self.committed_requests,
            "view_changes": self.notes.get(changes, 0),
            "rounds": self.rounds,
            "steps": self.steps,
            "round_steps_max": self.round_steps_max,
            "pending_requests": svc.pending,
            "rejections": dict(self.rejections),
            "notes": dict(self.notes),
            "sent_msgs": dict(self.sent_msgs),
            "sent_bytes": dict(self.sent_bytes),
            "timing": dict(self.timing),
        }
        net = self.net
        if net is not None:
            out.update({f"net_{k}": v for k, v in stats_of(net).items()})
            out["out_queue_bytes"] = sum(net.queue_bytes().values())
            out["inbox_frames"] = sum(len(c.inbox) for c in [*net.nodes.values(), *net.clients])
        return out


def host_for(cfg: NodeConfig) -> node_mod.NodeHost:
    """The host of the consortium's protocol: PBFT's :class:`~.node.NodeHost` or ours."""
    if cfg.consortium.consensus == "pbft":
        return node_mod.NodeHost(cfg)
    return ProtocolHost(cfg)


def run_node(path: str | Path) -> int:
    """``medbench node run`` for every protocol (:func:`.node.run_node` with :func:`host_for`)."""
    return node_mod.run_node(path, host_for)


# --- the audit of the stores ---------------------------------------------------------------------


def read_hotstuff(node: int, path: Path) -> NodeLog:
    """One HotStuff node's committed order, votes and executed requests from its store."""
    log = NodeLog(node)
    blocks: dict[bytes, hotstuff.Block] = {}
    top: hotstuff.CommitRecord | None = None
    with NodeStore(path) as store:
        records, log.corrupt = _records(store, hotstuff.decode_record, hotstuff.MessageError)
    for rec in records:
        t = type(rec)
        if t is hotstuff.Block:
            blocks[rec.hash] = rec
        elif t is hotstuff.Proposal and rec.replica == node:
            blocks[rec.block.hash] = rec.block
        elif t is hotstuff.Vote and rec.replica == node:
            log.votes.setdefault(("vote", rec.view, 0), set()).add(rec.block_hash)
        elif t is hotstuff.CommitRecord and (top is None or rec.height > top.height):
            top = rec
    b = None if top is None else blocks.get(top.block_hash)
    while b is not None and b.height > 0:  # down the committed branch to genesis
        log.executed[b.height] = b.hash
        log.requests.update(r.digest() for r in b.batch)
        b = blocks.get(b.parent)
    if top is not None and len(log.executed) != top.height:
        log.executed[0] = b"missing block below the commit record"  # a gap the audit reports
    return log


def read_raft(node: int, path: Path) -> NodeLog:
    """One Raft node's committed log entries and votes from its store."""
    log = NodeLog(node)
    with NodeStore(path) as store:
        records, log.corrupt = _records(store, raft.decode_record, raft.MessageError)
    for rec in records:
        if type(rec) is raft.HardState and rec.voted_for != raft.NO_NODE:
            log.votes.setdefault(("vote", rec.term, 0), set()).add(str(rec.voted_for).encode())
    state = raft_replay(records)
    first = state.log.snapshot_index + 1
    for index in range(first, min(state.commit, state.log.last_index) + 1):
        entry = state.log.entry(index)
        if entry is None:
            break
        req = entry.request
        what = RAFT_NOOP if req is None else req.digest()
        log.executed[index] = entry.term.to_bytes(8, "big") + what
        if req is not None:
            log.requests.add(what)
    return log


def audit_stores(
    consensus: str,
    stores: dict[int, Path],
    committed: Iterable[bytes] = (),
    *,
    complete: Iterable[int] | None = None,
) -> AuditReport:
    """:func:`.audit.audit` with the reader of ``consensus`` (see the module docstring)."""
    reader = {"hotstuff": read_hotstuff, "raft": read_raft}.get(consensus)
    if reader is None:
        return audit(stores, committed, complete=complete)
    return audit(stores, committed, complete=complete, reader=reader)
