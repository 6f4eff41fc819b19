"""The HotStuff client: a sans-IO node that broadcasts requests and accepts f+1 matching replies.

Theory of operation
-------------------
Every view of chained HotStuff has a different leader (§5), so a client cannot aim at "the
primary": it broadcasts ``<REQUEST, o, t, c>`` to every replica, each of which keeps it in its
mempool until some leader proposes it (:mod:`.replica`). Every replica executes the committed
request and replies; the client accepts a result once ``f + 1`` distinct replicas sent the same
one (at least one of them is honest, and every honest replica computes the same result: the
order is agreed). If the result does not arrive within the retransmission timeout, the client
broadcasts the request again (a replica that executed it answers from its reply cache) and
doubles the timeout.

The client has one request outstanding at a time (a closed loop); the application queues
operations with the local event :class:`~.messages.Submit`. Timestamps are a per-client counter
from 1, so they are totally ordered and identical across runs. Accepted requests are reported in
``Ready.completed`` as :class:`Completion`.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from medbench.consensus.auth import Keyring
from medbench.consensus.hotstuff.messages import LOCAL_KINDS, Reply, Request, Submit
from medbench.node import Note, Ready, Send


@dataclass(frozen=True, slots=True)
class Completion:
    """A request finished at its client: ``f + 1`` replicas answered ``result``."""

    client: int
    timestamp: int
    request_id: bytes
    result: bytes
    submitted_us: int
    completed_us: int
    retransmissions: int


class Client:
    """A HotStuff client node (see the module docstring)."""

    def __init__(
        self,
        node_id: int,
        n: int,
        keyring: Keyring,
        retransmit_timeout_us: int = 1_000_000,
        max_retransmit_timeout_us: int = 60_000_000,
    ) -> None:
        if node_id < n:
            raise ValueError("client ids must not collide with replica ids 0..n-1")
        self.node_id = node_id
        self.n = n
        self.f = (n - 1) // 3
        self.replicas: tuple[int, ...] = tuple(range(n))
        self.keyring = keyring
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
        self.replies: dict[int, Reply] = {}
        self.tally: dict[bytes, int] = {}  # result -> distinct replicas that sent it
        self.rejections: Counter[str] = Counter()
        self._ready = Ready()

    def step(self, src: int, msg: Any) -> Ready:
        """Handle a local SUBMIT or a REPLY from a replica; never raises on peer input."""
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
        """Broadcast the outstanding request again when its timer expires."""
        ready = self._ready = Ready()
        if now > self.now:
            self.now = now
        req = self.outstanding
        if req is not None and now >= self.deadline:
            self.retransmissions += 1
            self.timeout = min(2 * self.timeout, self.max_retransmit_timeout_us)
            self.deadline = now + self.timeout
            ready.messages.append(Send(self.replicas, req))
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
        object.__setattr__(req, "auth", self.keyring.sign(req.body()))
        self.outstanding = req
        self.replies = {}
        self.tally = {}
        self.sent_at = self.now
        self.timeout = self.retransmit_timeout_us
        self.deadline = self.now + self.timeout
        self.retransmissions = 0
        self._ready.messages.append(Send(self.replicas, req))

    def _handle_reply(self, src: int, reply: Reply) -> None:
        req = self.outstanding
        if src != reply.replica or not 0 <= reply.replica < self.n:
            self._reject(reply, "forged sender")
            return
        if reply.client != self.node_id:
            self._reject(reply, "reply for another client")
            return
        if req is None or reply.timestamp != req.timestamp:
            return  # a late reply to a request already completed: harmless
        if reply.replica in self.replies:
            return
        if not self.keyring.verify(reply.replica, reply.body(), reply.auth):
            self._reject(reply, "not authentic")
            return
        self.replies[reply.replica] = reply
        # only this reply's result gained a vote, so only it can have reached f + 1
        result = reply.result
        count = self.tally.get(result, 0) + 1
        self.tally[result] = count
        if count < self.f + 1:
            return
        self._ready.completed.append(
            Completion(
                self.node_id,
                req.timestamp,
                req.digest(),
                result,
                self.sent_at,
                self.now,
                self.retransmissions,
            )
        )
        self.outstanding = None
        self.replies = {}
        self.tally = {}
        self._maybe_send()
