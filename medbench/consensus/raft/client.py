"""The Raft client: a sans-IO node that sends requests to the leader and trusts its one reply.

Theory of operation
-------------------
§8 of the paper: a client sends its request to the leader; a server that is not the leader
forwards it to the leader it knows or answers with a not-leader reply carrying its hint, and the
client retries there. A client that hears nothing within its timeout tries the next server in
turn (doubling the timeout). Raft is crash-fault-tolerant: a reply is believed from whoever sends
it, so the client completes on the *first* successful reply — one faulty server could answer
anything (compare the f + 1 matching replies of the BFT clients).

One request is outstanding at a time (a closed loop); the application queues operations with the
local event :class:`~.messages.Submit`. Timestamps are a per-client counter from 1: with the
state machine's table they make execution exactly-once however often the client retries.
Accepted requests are reported in ``Ready.completed`` as :class:`Completion`.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from medbench.consensus.raft.messages import LOCAL_KINDS, Reply, Request, Submit
from medbench.node import Note, Ready, Send


@dataclass(frozen=True, slots=True)
class Completion:
    """A request finished at its client: the leader answered ``result``."""

    client: int
    timestamp: int
    request_id: bytes
    result: bytes
    submitted_us: int
    completed_us: int
    retransmissions: int


class Client:
    """A Raft client node (see the module docstring)."""

    def __init__(
        self,
        node_id: int,
        n: int,
        retransmit_timeout_us: int = 1_000_000,
        max_retransmit_timeout_us: int = 60_000_000,
        leader: int = 0,
    ) -> None:
        if node_id < n:
            raise ValueError("client ids must not collide with node ids 0..n-1")
        self.node_id = node_id
        self.n = n
        self.leader = leader % n
        self.retransmit_timeout_us = retransmit_timeout_us
        self.max_retransmit_timeout_us = max_retransmit_timeout_us
        self.now = 0
        self.timestamp = 0
        self.queue: deque[bytes] = deque()
        self.outstanding: Request | None = None
        self.sent_at = 0
        self.deadline = 0
        self.timeout = retransmit_timeout_us
        self.retransmissions = 0
        self.rejections: Counter[str] = Counter()
        self._ready = Ready()

    def step(self, src: int, msg: Any) -> Ready:
        """Handle a local SUBMIT or a REPLY from a server; never raises on peer input."""
        ready = self._ready = Ready()
        if type(msg) is Submit:
            if src != self.node_id:
                self._reject(msg, "local kind from the network")
            else:
                self.queue.append(msg.operation)
                self._maybe_send()
        elif type(msg) is Reply:
            self._handle_reply(src, msg)
        elif getattr(msg, "KIND", None) in LOCAL_KINDS:
            self._reject(msg, "local kind from the network")
        else:
            self._reject(msg, "unexpected message")
        return ready

    def tick(self, now: int) -> Ready:
        """No answer in time: try the next server."""
        ready = self._ready = Ready()
        if now > self.now:
            self.now = now
        req = self.outstanding
        if req is not None and now >= self.deadline:
            self.retransmissions += 1
            self.leader = (self.leader + 1) % self.n
            self.timeout = min(2 * self.timeout, self.max_retransmit_timeout_us)
            self.deadline = now + self.timeout
            ready.messages.append(Send((self.leader,), req))
            ready.notes.append(Note("retransmit", (self.node_id, req.timestamp)))
        return ready

    @property
    def idle(self) -> bool:
        """True when nothing is outstanding or queued."""
        return self.outstanding is None and not self.queue

    def _reject(self, msg: Any, reason: str) -> None:
        self.rejections[reason] += 1
        kind = getattr(msg, "KIND", type(msg).__name__)
        self._ready.notes.append(Note("reject", (str(kind), reason)))

    def _maybe_send(self) -> None:
        if self.outstanding is not None or not self.queue:
            return
        self.timestamp += 1
        req = Request(self.node_id, self.timestamp, self.queue.popleft())
        self.outstanding = req
        self.sent_at = self.now
        self.timeout = self.retransmit_timeout_us
        self.deadline = self.now + self.timeout
        self.retransmissions = 0
        self._ready.messages.append(Send((self.leader,), req))

    def _handle_reply(self, src: int, reply: Reply) -> None:
        req = self.outstanding
        if src != reply.replica or not 0 <= src < self.n:
            self._reject(reply, "forged sender")
            return
        if reply.client != self.node_id:
            self._reject(reply, "reply for another client")
            return
        if req is None or reply.timestamp != req.timestamp:
            return  # a late or duplicate answer
        if not reply.ok:
            hint = reply.leader
            if 0 <= hint < self.n and hint != self.leader:
                self.leader = hint  # redirected: retry there at once
                self._ready.messages.append(Send((hint,), req))
            return  # no leader known: the timer will try the next server
        self.leader = src
        self._ready.completed.append(
            Completion(
                self.node_id,
                req.timestamp,
                req.digest(),
                reply.result,
                self.sent_at,
                self.now,
                self.retransmissions,
            )
        )
        self.outstanding = None
        self._maybe_send()
