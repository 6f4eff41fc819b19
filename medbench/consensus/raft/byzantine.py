"""A Byzantine Raft node for experiments: the lying leader that Raft cannot detect.

Theory of operation
-------------------
Raft tolerates crashes, not lies (:mod:`.replica`): its messages carry no authenticator and a
well-formed message is believed. :class:`LyingLeader` wraps an honest node and tells ``lies``
lies about a client request's log entry, whichever role it holds:

* **as a follower** that sees the real leader replicate a request at index ``k`` not yet known
  committed, it claims to be the leader of a higher term and sends every other follower an
  AppendEntries that replaces entry ``k`` with a forged request of the same client and
  timestamp, declaring ``k`` committed (``leader_commit = k``). A higher term is exactly what a
  new leader has, so the followers step down to it, overwrite ``k`` and apply the forgery, while
  the real leader — which a majority had already acknowledged — commits and executes the
  original;
* **as the leader** (it is an honest node otherwise, so it may win an election), it sends the
  new entry ``k`` to half of its followers and a forged entry of the same term and index to the
  other half; both halves acknowledge index ``k`` (Log Matching checks terms, not contents), the
  leader commits it, and each half applies its own version.

Either way two honest nodes commit different entries at index ``k``, and the safety checker
reports it. The same kind of lie against PBFT or HotStuff is refused (an entry there needs
``n - f`` signed votes on its contents).

The wrapped node keeps running as an honest node otherwise (``inner``, which the simulator
adapter unwraps to read the state machine).
"""

from __future__ import annotations

from typing import Any

from medbench.consensus.raft.messages import AppendEntries, Entry, Request
from medbench.consensus.raft.replica import Replica, Role
from medbench.node import Ready, Send

BEHAVIOURS: tuple[str, ...] = ("lying-leader",)
"""The behaviours of this module."""


class LyingLeader:
    """A node that impersonates a new leader and rewrites an uncommitted-looking entry."""

    def __init__(self, inner: Replica, lies: int = 1) -> None:
        self.inner = inner
        self.node_id = inner.node_id
        self.lies_left = lies
        self.lies: list[tuple[int, int]] = []  # (index, forged term) of every lie told

    def step(self, src: int, msg: Any) -> Ready:
        """The honest step; an AppendEntries carrying a request may trigger the lie."""
        ready = self.inner.step(src, msg)
        if self.lies_left > 0:
            if type(msg) is AppendEntries and src == msg.leader:
                self._lie(msg, ready)
            elif ready.messages and self.inner.role is Role.LEADER:
                self._split(ready)
        return ready

    def tick(self, now: int) -> Ready:
        """The honest tick (a leader's heartbeat may carry the entry it lies about)."""
        ready = self.inner.tick(now)
        if self.lies_left > 0 and ready.messages and self.inner.role is Role.LEADER:
            self._split(ready)
        return ready

    def _split(self, ready: Ready) -> None:
        """As the leader: send half of the followers a forged twin of a new request entry."""
        out: list[Send] = []
        for send in ready.messages:
            msg = send.msg
            if self.lies_left <= 0 or type(msg) is not AppendEntries or len(send.dsts) < 2:
                out.append(send)
                continue
            k = next(
                (
                    j
                    for j, e in enumerate(msg.entries)
                    if e.request is not None and e.index > msg.leader_commit
                ),
                None,
            )
            if k is None:
                out.append(send)
                continue
            e = msg.entries[k]
            req = e.request
            assert req is not None
            forged = Request(req.client, req.timestamp, b"forged:" + req.operation[:32])
            entries = (*msg.entries[:k], Entry(e.term, e.index, forged), *msg.entries[k + 1 :])
            twin = AppendEntries(
                msg.term,
                msg.leader,
                msg.prev_log_index,
                msg.prev_log_term,
                entries,
                msg.leader_commit,
            )
            half = len(send.dsts) // 2
            out.append(Send(send.dsts[:half], msg))
            out.append(Send(send.dsts[half:], twin))
            self.lies_left -= 1
            self.lies.append((e.index, e.term))
        ready.messages = out

    def _lie(self, msg: AppendEntries, ready: Ready) -> None:
        target = next(
            (e for e in msg.entries if e.request is not None and e.index > msg.leader_commit),
            None,
        )
        if target is None:
            return
        r = self.inner
        prev = target.index - 1
        prev_term = r.log.term_at(prev)
        if prev_term is None:
            return
        req = target.request
        assert req is not None
        forged = Request(req.client, req.timestamp, b"forged:" + req.operation[:32])
        term = max(r.term, msg.term) + 1
        lie = AppendEntries(
            term, self.node_id, prev, prev_term, (Entry(term, target.index, forged),), target.index
        )
        victims = tuple(i for i in range(r.n) if i not in (self.node_id, msg.leader))
        if victims:
            ready.messages.append(Send(victims, lie))
            self.lies_left -= 1
            self.lies.append((target.index, term))


__all__ = ["BEHAVIOURS", "LyingLeader"]
