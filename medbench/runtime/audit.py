"""After a run: read every node's store and check safety, from the disks alone.

Theory of operation
-------------------
A stopped consortium's SQLite stores hold each replica's consensus log: its own pre-prepares,
prepares and commits, and the batches it executed (:mod:`medbench.consensus.pbft.persist`).
:func:`audit` decodes them and checks what the fault scenarios promise:

* **agreement** — at every sequence number, every node that executed a batch executed the same
  one (batch digest), and each node's executed sequence numbers have no gaps;
* **no double vote** — no replica's log holds two different digests for one (kind, view,
  sequence) among its own PRE-PREPAREs, PREPAREs and COMMITs;
* **nothing lost** — every request a client saw committed (f+1 matching replies) is in the
  executed batches of every node that executed up to the end of the run;
* **identical chains** (Medical Chain) — the ledger blocks every node stored are one chain: the
  same block ID at every height that two nodes both hold.

The report says which node executed how far, so a caller can tell "lagging" (a shorter prefix,
allowed for a node that was down at the end) from "diverging" (never allowed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.consensus.pbft import ExecutedBatch, MessageError, Request, decode_record
from medbench.consensus.pbft.messages import Commit, Prepare, PrePrepare
from medbench.store.node_store import NodeStore


@dataclass
class NodeLog:
    """What one node's store says."""

    node: int
    executed: dict[int, bytes] = field(default_factory=dict)  # sequence -> batch digest
    requests: set[bytes] = field(default_factory=set)  # digests of executed requests
    votes: dict[tuple[str, int, int], set[bytes]] = field(default_factory=dict)
    blocks: list[bytes] = field(default_factory=list)  # ledger block IDs by height (medchain)
    ledger_txs: set[bytes] = field(default_factory=set)
    corrupt: int = 0

    @property
    def last_executed(self) -> int:
        """Highest executed sequence number."""
        return max(self.executed, default=0)


@dataclass
class AuditReport:
    """The verdicts of :func:`audit`; ``ok`` when every check passed."""

    nodes: dict[int, NodeLog]
    problems: list[str]
    checked_requests: int = 0

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def summary(self) -> str:
        """One line per verdict."""
        ex = {i: log.last_executed for i, log in sorted(self.nodes.items())}
        head = f"executed up to {ex}; {self.checked_requests} client-committed requests checked"
        if self.ok:
            return head + "; agreement, no double vote, nothing lost, identical chains: ok"
        return head + "; PROBLEMS: " + "; ".join(self.problems[:10])


def read_node(node: int, path: Path) -> NodeLog:
    """Decode one node's store (read-only use; the node must be stopped)."""
    log = NodeLog(node)
    with NodeStore(path) as store:
        for entry in store.read_log():
            try:
                rec = decode_record(entry.record)
            except MessageError:
                log.corrupt += 1
                continue
            if isinstance(rec, ExecutedBatch):
                log.executed[rec.sequence] = rec.batch_digest
                for item in rec.items:
                    if isinstance(item, Request):
                        log.requests.add(item.digest())
            elif isinstance(rec, (PrePrepare, Prepare, Commit)) and rec.replica == node:
                key = (str(rec.kind), rec.view, rec.sequence)
                log.votes.setdefault(key, set()).add(rec.batch_digest)
        height = 1
        while True:
            block = store.get_block(height)
            if block is None:
                break
            log.blocks.append(block.block_id)
            log.ledger_txs.update(block.tx_ids)
            height += 1
    return log


def audit(
    stores: dict[int, Path],
    committed: Iterable[bytes] = (),
    *,
    complete: Iterable[int] | None = None,
    reader: Callable[[int, Path], NodeLog] | None = None,
) -> AuditReport:
    """Check the stores of the nodes ``stores`` (see the module docstring).

    ``committed``: digests of the requests clients saw committed; they must be in every node of
    ``complete`` (default: every node whose log reaches the highest executed sequence).
    ``reader`` decodes one store (default :func:`read_node`, PBFT's;
    :mod:`.protocols` has HotStuff's and Raft's).
    """
    read = reader or read_node
    logs = {i: read(i, p) for i, p in sorted(stores.items())}
    problems: list[str] = []
    chosen: dict[int, tuple[int, bytes]] = {}
    for i, log in logs.items():
        if log.corrupt:
            problems.append(f"node {i}: {log.corrupt} log records do not decode")
        seqs = sorted(log.executed)
        if seqs and seqs != list(range(seqs[0], seqs[-1] + 1)):
            problems.append(f"node {i}: executed sequence numbers have gaps")
        for s, d in log.executed.items():
            first = chosen.setdefault(s, (i, d))
            if first[1] != d:
                problems.append(
                    f"sequence {s}: nodes {first[0]} and {i} executed different batches"
                )
        for (kind, v, s), digests in sorted(log.votes.items()):
            if len(digests) > 1:
                problems.append(
                    f"node {i} sent {len(digests)} different {kind}s at view {v} seq {s}"
                )
    top = max((log.last_executed for log in logs.values()), default=0)
    full = list(complete) if complete is not None else [
        i for i, log in logs.items() if log.last_executed == top
    ]  # fmt: skip
    wanted = set(committed)
    for i in full:
        missing = wanted - logs[i].requests
        if missing:
            problems.append(f"node {i}: {len(missing)} client-committed requests not executed")
    chains = [(i, log.blocks) for i, log in logs.items() if log.blocks]
    for i, ids in chains:
        for j, other in chains:
            k = min(len(ids), len(other))
            if i < j and ids[:k] != other[:k]:
                problems.append(f"ledger chains of nodes {i} and {j} differ")
    return AuditReport(logs, problems, len(wanted))


def committed_digests(results: Iterable[dict[str, Any]]) -> set[bytes]:
    """Request digests the load generators saw committed (their ``completed_ids``)."""
    out: set[bytes] = set()
    for r in results:
        for h in r.get("completed_ids", []):
            out.add(bytes.fromhex(h))
    return out
