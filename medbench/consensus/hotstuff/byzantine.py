"""Byzantine HotStuff replicas for experiments: wrappers that rewrite an honest replica's output.

Theory of operation
-------------------
A faulty replica is an honest :class:`~.replica.Replica` (``inner``) whose outgoing messages a
wrapper rewrites before the driver sees them. It signs what it alters with its *own* key (it
cannot forge another replica's signature), so everything it sends is authentic and well formed;
only the protocol's rules can refuse it. The behaviours a simulator run can select
(:data:`BEHAVIOURS`):

* ``silent-leader`` — never proposes (in its views the others time out), but votes;
* ``equivocating-leader`` — as leader, sends its block to half of the other replicas and a
  different block of the same view (an empty twin, also signed) to the other half, so no block
  of that view can gather ``n - f`` votes from the honest replicas alone;
* ``double-voter`` — sends with each vote a second, signed vote of the same view for a block
  nobody proposed (the next leader reports the equivocation and counts neither twice).

The wrapper keeps the wrapped replica as ``inner`` (the simulator adapter unwraps it to read the
honest state machine). ``tests/hotstuff`` has more behaviours for the protocol's own tests.
"""

from __future__ import annotations

from typing import Any

from medbench.consensus.hotstuff.messages import Block, Proposal, Vote
from medbench.consensus.hotstuff.replica import Replica
from medbench.hashing import sha256
from medbench.node import Ready, Send

BEHAVIOURS: tuple[str, ...] = ("silent-leader", "equivocating-leader", "double-voter")
"""The behaviours :class:`Byzantine` implements (see the module docstring)."""


def _seal(replica: Replica, msg: Any) -> Any:
    """``msg`` signed with ``replica``'s own key."""
    return msg.with_auth(replica.keyring.sign(msg.body()))


class Byzantine:
    """A faulty replica: forwards to ``inner`` and rewrites its outgoing sends."""

    def __init__(self, inner: Replica, behaviour: str) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; known: {BEHAVIOURS}")
        self.inner = inner
        self.node_id = inner.node_id
        self.behaviour = behaviour
        self.altered = 0  # messages rewritten or added

    def step(self, src: int, msg: Any) -> Ready:
        """The honest step, then the rewrite."""
        return self._filter(self.inner.step(src, msg))

    def tick(self, now: int) -> Ready:
        """The honest tick, then the rewrite."""
        return self._filter(self.inner.tick(now))

    def _filter(self, ready: Ready) -> Ready:
        if ready.messages:
            out: list[Send] = []
            for send in ready.messages:
                out.extend(self._outgoing(send))
            ready.messages = out
        return ready

    def _outgoing(self, send: Send) -> list[Send]:
        m = send.msg
        r = self.inner
        kind = self.behaviour
        if kind == "silent-leader" and type(m) is Proposal:
            self.altered += 1
            return []
        if kind == "equivocating-leader" and type(m) is Proposal and len(send.dsts) > 1:
            b = m.block
            other = Block(b.view, b.height, b.parent, b.justify, b.timestamp + 1, (), b.proposer)
            twin = _seal(r, Proposal(other, m.timeout_cert, m.replica))
            half = len(send.dsts) // 2
            self.altered += 1
            return [Send(send.dsts[:half], m), Send(send.dsts[half:], twin)]
        if kind == "double-voter" and type(m) is Vote:
            fake = _seal(r, Vote(m.view, sha256(m.block_hash), m.replica))
            self.altered += 1
            return [send, Send(send.dsts, fake)]
        return [send]


__all__ = ["BEHAVIOURS", "Byzantine"]
