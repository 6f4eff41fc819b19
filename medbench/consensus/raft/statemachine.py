"""The state Raft replicates: the exactly-once table and a digest of everything applied.

Theory of operation
-------------------
Every node applies committed entries in index order (Figure 2: "apply log[lastApplied] to state
machine"). For each client request it runs the *service* unless the client's timestamp is not
newer than the last one it executed for that client — then the stored result answers instead
(§8: "the state machine tracks the latest serial number processed for each client, along with the
associated response"). No-op entries change nothing but the digest.

``state_digest`` chains every applied entry, ``SHA-256(prev || index || term || request ID)``
(fixed-width fields, so the concatenation is unambiguous), so two nodes with equal digests at one
index applied the same entries. :meth:`StateMachine.snapshot` captures the whole state for
compaction and InstallSnapshot (§7); :meth:`StateMachine.restore` loads one.
"""

from __future__ import annotations

from collections.abc import Callable

from medbench.consensus.raft.messages import Entry, Request, Snapshot
from medbench.hashing import sha256

Service = Callable[[Request], bytes]
"""``service(request) -> result``: execute one request (deterministic)."""

_NOOP = bytes(32)


def acknowledge(request: Request) -> bytes:
    """The default service: the result of a request is its transaction ID (its digest)."""
    return request.digest()


class StateMachine:
    """The replicated state of one node (see the module docstring)."""

    def __init__(self, service: Service = acknowledge) -> None:
        self.service = service
        self.state_digest = bytes(32)
        self.applied = 0  # requests executed
        self.last: dict[int, tuple[int, bytes]] = {}  # client -> (timestamp, result)

    def apply(self, entry: Entry) -> tuple[bool, bytes]:
        """Apply one committed entry; ``(executed, result)`` (a stale request is answered with
        the stored result of its client, or nothing, and not executed)."""
        req = entry.request
        rid = _NOOP if req is None else req.digest()
        self.state_digest = sha256(
            self.state_digest + entry.index.to_bytes(8, "big") + entry.term.to_bytes(8, "big") + rid
        )
        if req is None:
            return False, b""
        last = self.last.get(req.client)
        if last is not None and req.timestamp <= last[0]:
            return False, last[1] if req.timestamp == last[0] else b""
        result = self.service(req)
        self.last[req.client] = (req.timestamp, result)
        self.applied += 1
        return True, result

    def snapshot(self, last_index: int, last_term: int) -> Snapshot:
        """The state as a :class:`~.messages.Snapshot` ending at ``(last_index, last_term)``."""
        clients = tuple((c, t, r) for c, (t, r) in sorted(self.last.items()))
        return Snapshot(last_index, last_term, self.state_digest, self.applied, clients)

    def restore(self, snap: Snapshot) -> None:
        """Load a snapshot (everything applied before is replaced)."""
        self.state_digest = snap.state_digest
        self.applied = snap.applied
        self.last = {c: (t, r) for c, t, r in snap.clients}
