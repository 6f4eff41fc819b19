"""The PBFT client: a sans-IO node that submits requests and accepts f+1 matching replies.

Theory of operation
-------------------
TOCS 2002 §4.1: a client sends ``<REQUEST, o, t, c>`` to the replica it believes is the primary
and waits for f+1 replies with the same timestamp and result from distinct replicas (at least one
of them honest, so the result is right; docs/medical-chain.md §1.1 writes this (n+2)/3). A replica
that refuses the request (its validator) replies with a typed refusal instead, and matching refusals
from 2f+1 replicas (in general n + f + 1 minus the strong quorum) complete the request as refused
(:attr:`Completion.refusal`). A refusal is decided at admission, before any ordering, so honest
replicas may disagree (a lagging state, a clock at the edge of a window): f+1 refusals would
leave room for the request to commit elsewhere, while 2f+1 include f+1 honest refusers, who
persist the refusal and never prepare that request, so it can never gather a prepared
certificate. Refusals of different reasons count together once no single reason can still reach
the quorum (or the retransmission timer ran out with a quorum in hand): every honest refusal,
whatever its reason, is kept and rules the request out alike; the reported reason is the most
frequent. f faulty replicas can neither fake a result nor make a request look refused. To try
again the application submits anew: a new timestamp, judged afresh. If replies do not arrive
within the retransmission timeout the client broadcasts the request to every replica (backups
relay it to the primary and start their view-change timers) and doubles the timeout. The client
learns the current view from the replies, but only a view that f+1 of them report: one faulty
replica cannot choose the primary every later request goes to.

The client has one request outstanding at a time (a closed loop, as in the paper); the
application queues operations with the local event :class:`~.messages.Submit` (``step(own id,
Submit(op))``). Timestamps are a per-client counter starting at 1, so they are totally ordered and
identical across runs. Accepted requests are reported in ``Ready.completed`` as :class:`Completion`.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from medbench.consensus.auth import Keyring
from medbench.consensus.pbft.messages import LOCAL_KINDS, Reply, Request, Submit
from medbench.node import Note, Ready, Send
from medbench.quorum import strong_quorum


@dataclass(frozen=True, slots=True)
class Completion:
    """A request finished at its client: f+1 replicas answered ``result``, or 2f+1 refused it
    with the typed reason ``refusal`` (then ``result`` is empty)."""

    client: int
    timestamp: int
    request_id: bytes
    result: bytes
    submitted_us: int
    completed_us: int
    retransmissions: int
    refusal: str = ""


class Client:
    """A PBFT client node (see the module docstring)."""

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
        # refusals that prove a request can never commit: at least f+1 more than the n - quorum
        # replicas that could never take part in a prepared certificate (2f+1 at n = 3f+1)
        self.refusal_quorum = n + self.f - strong_quorum(n) + 1
        self.keyring = keyring
        self.retransmit_timeout_us = retransmit_timeout_us
        self.max_retransmit_timeout_us = max_retransmit_timeout_us
        self.view = 0
        self.now = 0
        self.timestamp = 0
        self.queue: deque[bytes] = deque()
        self.outstanding: Request | None = None
        self.sent_at = 0
        self.deadline = 0
        self.timeout = retransmit_timeout_us
        self.retransmissions = 0
        self.replies: dict[int, Reply] = {}
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
        """Retransmit the outstanding request to every replica when its timer expires."""
        ready = self._ready = Ready()
        if now > self.now:
            self.now = now
        req = self.outstanding
        if req is not None and now >= self.deadline and self._decide(timed_out=True):
            return ready
        req = self.outstanding
        if req is not None and now >= self.deadline:
            self.retransmissions += 1
            self.timeout = min(2 * self.timeout, self.max_retransmit_timeout_us)
            self.deadline = now + self.timeout
            ready.messages.append(Send(tuple(range(self.n)), req))
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
        self.sent_at = self.now
        self.timeout = self.retransmit_timeout_us
        self.deadline = self.now + self.timeout
        self.retransmissions = 0
        self._ready.messages.append(Send((self.view % self.n,), req))

    def _vouched_view(self) -> int:
        """The highest view that f+1 of the replies received report (or exceed): at least one
        of them is honest, so one faulty replica cannot steer the client to a view nobody is
        in (every later request would go to a primary of its choosing)."""
        views = sorted((r.view for r in self.replies.values()), reverse=True)
        return views[self.f] if len(views) > self.f else 0

    def _mixed_refusals(
        self, votes: Counter[tuple[bytes, str]], timed_out: bool
    ) -> list[tuple[bytes, str]]:
        """A refusal quorum whose reasons differ: the most frequent reason (ties: the first in
        order), once no single reason can still reach a quorum or the retransmission timer ran
        out. Each honest refuser, whatever its reason, never prepares the request, so the
        quorum's f+1 honest refusers still rule a commit out; without this a split between a
        validator's reason and replicas that gave the request up
        (:data:`.viewchange.UNORDERED`) would leave the client waiting forever."""
        refusals = [(count, answer) for answer, count in votes.items() if answer[1]]
        if sum(count for count, _ in refusals) < self.refusal_quorum:
            return []
        unheard = self.n - len(self.replies)
        best = max(count for count, _ in refusals)
        if best + unheard >= self.refusal_quorum and not timed_out:
            return []  # one reason may still reach a quorum: wait for it
        return [min(refusals, key=lambda x: (-x[0], x[1][1]))[1]]

    def _handle_reply(self, src: int, reply: Reply) -> None:
        req = self.outstanding
        if src != reply.replica or not 0 <= reply.replica < self.n:
            self._reject(reply, "forged sender")
            return
        if reply.client != self.node_id:
            self._reject(reply, "reply for another client")
            return
        if req is None or reply.timestamp != req.timestamp:
            self._reject(reply, "stale reply")
            return
        if reply.replica in self.replies:
            return
        if not self.keyring.verify(reply.replica, reply.body(), reply.auth):
            self._reject(reply, "not authentic")
            return
        self.replies[reply.replica] = reply
        self._decide(timed_out=False)

    def _decide(self, timed_out: bool) -> bool:
        """Complete the outstanding request if the replies decide it (True when they did)."""
        req = self.outstanding
        assert req is not None
        votes = Counter((r.result, r.refusal) for r in self.replies.values())
        decided = [
            answer
            for answer, count in votes.items()
            if count >= (self.refusal_quorum if answer[1] else self.f + 1)
        ]
        if not decided:
            decided = self._mixed_refusals(votes, timed_out)
        if not decided:
            return False
        # at most one result can reach f+1 (one honest replica in it, and all honest compute the
        # same), and a refusal quorum leaves fewer than f+1 replicas for a result
        (result, refusal) = decided[0]
        self.view = max(self.view, self._vouched_view())
        self._ready.completed.append(
            Completion(
                self.node_id,
                req.timestamp,
                req.digest(),
                result,
                self.sent_at,
                self.now,
                self.retransmissions,
                refusal,
            )
        )
        self.outstanding = None
        self.replies = {}
        self._maybe_send()
        return True
