"""Byzantine HotStuff replicas for the tests: wrappers around an honest replica.

A faulty replica is an honest :class:`~medbench.consensus.hotstuff.Replica` (``inner``) whose
outputs a wrapper rewrites: it swallows, alters, duplicates or redirects messages and signs what
it alters with its *own* keys (it cannot forge another replica's signature). The behaviours:

* ``silent`` — never proposes (a crashed leader that still votes);
* ``equivocating`` — as leader, sends one block to half of the replicas and a different block
  for the same view to the other half (both signed);
* ``double-voting`` — sends, with each vote, a second vote for a block nobody proposed;
* ``bad-qc`` — as leader, proposes blocks whose justify QC repeats one vote (too few voters);
* ``replaying`` — replays messages it sent earlier and forwards others' as its own;
* ``stale-new-view`` — sends NEW-VIEWs with the genesis QC and a vote for a made-up block;
* ``late-equivocating`` — as leader, keeps offering every replica fresh conflicting blocks for
  views it already proposed in (an honest replica refuses: it voted in that view; one that
  forgot its vote on a restart would vote twice);
* ``forking-<d>`` (:data:`FORKING`; d = 1, 2, 3) — as leader, sends its honest proposal to one
  replica and to the others a block that forks ``d`` blocks below it: a sibling of the ``d``-th
  ancestor of its block, justified by that ancestor's parent's QC, with the votes of the
  previous view it collected as a timeout certificate (they prove a quorum left that view, and
  carry no QC: the certificate does not contradict the stale justify). Chained HotStuff's locks
  refuse depth 3 and make depths 1 and 2 harmless (Yin et al., PODC 2019, §4.2: the locked block
  sits two below a certified block); a replica that commits on a two-chain, or votes without
  the lock, is forked away from what it committed;
* ``forged-qc`` (in :data:`FORKING`) — the depth-3 fork, justified instead by a QC of the
  previous view made of its own vote for the fork's parent, repeated: an honest replica refuses
  the QC (one voter, not a quorum); one that counts a voter twice follows it past its lock.
"""

from __future__ import annotations

from typing import Any

from medbench.consensus.hotstuff import GENESIS_QC, QC, Block, NewView, Proposal, Replica, Vote
from medbench.hashing import sha256
from medbench.node import Ready, Send

BEHAVIOURS = (
    "silent",
    "equivocating",
    "double-voting",
    "bad-qc",
    "replaying",
    "stale-new-view",
    "late-equivocating",
)

FORKING = ("forking-1", "forking-2", "forking-3", "forged-qc")
"""The stale-QC leaders (kept apart from :data:`BEHAVIOURS`: the random draws stay as they were)."""


def seal(replica: Replica, msg: Any) -> Any:
    """``msg`` signed with ``replica``'s own key."""
    return msg.with_auth(replica.keyring.sign(msg.body()))


class Byzantine:
    """Base wrapper: forwards to ``inner`` and rewrites outgoing sends with :meth:`outgoing`."""

    def __init__(self, inner: Replica, kind: str) -> None:
        self.inner = inner
        self.node_id = inner.node_id
        self.kind = kind
        self.sent: list[Any] = []
        self.ticks = 0

    def step(self, src: int, msg: Any) -> Ready:
        return self._filter(self.inner.step(src, msg))

    def tick(self, now: int) -> Ready:
        ready = self._filter(self.inner.tick(now))
        if self.kind == "late-equivocating" and self.sent:
            self.ticks += 1
            r = self.inner
            others = tuple(i for i in range(r.n) if i != r.node_id)
            for old in self.sent[-3:]:
                b = old.block
                twin = Block(
                    b.view, b.height, b.parent, b.justify, b.timestamp + self.ticks, (), b.proposer
                )
                forged = seal(r, Proposal(twin, old.timeout_cert, old.replica))
                ready.messages.append(Send(others, forged))
        return ready

    def _filter(self, ready: Ready) -> Ready:
        out: list[Send] = []
        for send in ready.messages:
            out.extend(self.outgoing(send))
        ready.messages = out
        return ready

    def outgoing(self, send: Send) -> list[Send]:
        r = self.inner
        m = send.msg
        kind = self.kind
        if kind == "silent" and isinstance(m, Proposal):
            return []
        if kind == "equivocating" and isinstance(m, Proposal):
            b = m.block
            other = Block(b.view, b.height, b.parent, b.justify, b.timestamp + 1, (), b.proposer)
            twin = seal(r, Proposal(other, m.timeout_cert, m.replica))
            half = len(send.dsts) // 2
            return [Send(send.dsts[:half], m), Send(send.dsts[half:], twin)]
        if kind == "double-voting" and isinstance(m, Vote):
            fake = seal(r, Vote(m.view, sha256(m.block_hash), m.replica))
            return [send, Send(send.dsts, fake)]
        if kind == "bad-qc" and isinstance(m, Proposal) and m.block.justify.votes:
            b = m.block
            votes = b.justify.votes
            bad = QC(b.justify.view, b.justify.block_hash, (votes[0],) * len(votes))
            blk = Block(b.view, b.height, b.parent, bad, b.timestamp, b.batch, b.proposer)
            return [Send(send.dsts, seal(r, Proposal(blk, m.timeout_cert, m.replica)))]
        if kind in FORKING and isinstance(m, Proposal) and len(send.dsts) > 1:
            fork = self.fork(m, 3) if kind == "forged-qc" else self.fork(m, int(kind[-1]))
            if fork is not None:
                return [Send(send.dsts[:1], m), Send(send.dsts[1:], fork)]
            return [send]
        if kind == "late-equivocating" and isinstance(m, Proposal):
            self.sent.append(m)
            return [send]
        if kind == "replaying":
            out = [send]
            if self.sent:
                old = self.sent[len(self.sent) // 2]
                out.append(Send(send.dsts, old))
            self.sent.append(m)
            del self.sent[:-32]
            return out
        if kind == "stale-new-view" and isinstance(m, NewView):
            vote = seal(r, Vote(m.view - 1, sha256(b"made up"), m.replica))
            return [Send(send.dsts, seal(r, NewView(m.view, GENESIS_QC, vote, True, m.replica)))]
        return [send]

    def fork(self, m: Proposal, depth: int) -> Proposal | None:
        """The proposal forking ``depth`` blocks below ``m``'s block (module docstring), or
        ``None`` if the inner replica lacks the blocks or a timeout certificate of votes."""
        r = self.inner
        b = m.block
        v = b.view
        child = r.tree.get(b.parent)  # walk down: child's justify certifies its parent
        for _ in range(depth - 1):
            if child is None or child.height == 0:
                return None
            child = r.tree.get(child.parent)
        if child is None or child.height == 0:
            return None
        qc = child.justify
        base = r.tree.get(qc.block_hash)
        if base is None:
            return None
        if self.kind == "forged-qc":  # one vote of the previous view, counted quorum times
            own = seal(r, Vote(v - 1, base.hash, r.node_id))
            forged = QC(v - 1, base.hash, (own,) * r.quorum)
            ts = max(b.timestamp, base.timestamp)
            blk = Block(v, base.height + 1, base.hash, forged, ts, (), b.proposer)
            return seal(r, Proposal(blk, (), m.replica))
        votes = [r.collector.first.get((v - 1, i)) for i in range(r.n)]
        tc = tuple(x for x in votes if x is not None)[: r.quorum]
        if len(tc) < r.quorum:
            return None
        blk = Block(
            v, base.height + 1, base.hash, qc, max(b.timestamp, base.timestamp), (), b.proposer
        )
        return seal(r, Proposal(blk, tc, m.replica))
