"""Executing committed HotStuff blocks: exactly-once, an agreed time, a chained state digest.

Theory of operation
-------------------
Algorithm 3's ``onCommit`` executes the commands of every committed block in height order.
:class:`Execution` does it deterministically, the same on every honest replica:

* each request runs at the block's *agreed time*, ``max(block timestamp, previous agreed
  time)``: the proposer's clock (checked by every voter against its own, :mod:`.replica`), made
  monotone, as PBFT's agreed time (TOCS §4.6);
* a request whose client timestamp is not newer than the client's last executed one is skipped
  (exactly-once: a request ordered twice, by two leaders or a faulty one, runs once); the last
  reply of each client is kept to answer retransmissions;
* ``state_digest`` chains every executed block, ``SHA-256(prev || height || block hash)`` with
  fixed-width fields, so equal digests at a height mean equal histories.

It returns the replies unsigned; the replica authenticates and sends them.

Medical Chain's two-level flow (docs/medical-chain.md §1.5: a rotating blocker packs accepted
transaction IDs and their Merkle root into a BLOCK that is ordered again) is not implemented for
HotStuff; this is where it would plug in, without touching consensus: the requests
:meth:`Execution.execute` runs, in order, are the accepted transactions a chain of blocks consumes
(as ``medbench.consensus.pbft.blocks.Chain.accept`` does); the blocker of the next height
(:func:`medbench.rotation.blocker_for`) would submit its BLOCK as a request to every mempool, and
``execute`` would check it deterministically when it commits (right height, previous block,
blocker, IDs accepted and not yet in a block) and append it — the same on every honest replica,
like PBFT's ``Chain.check``/``Chain.append``. An ``integrated`` mode is what ``ExecutedBlock``
already is: one block per committed HotStuff block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from medbench.consensus.hotstuff.messages import ZERO_HASH, Block, Reply, Request, own_reply
from medbench.hashing import sha256

Service = Callable[[Request, int], bytes]
"""``service(request, agreed_time_us) -> result``: execute one request at its block's agreed time
(identical on every honest replica)."""


def acknowledge(request: Request, agreed_time_us: int) -> bytes:
    """The default service: the result of a request is its transaction ID (its digest)."""
    return request.digest()


@dataclass(frozen=True, slots=True)
class ExecutedBlock:
    """One committed block as executed: the payload of ``Ready.committed``.

    ``requests`` are the requests that ran (a request already executed is skipped: exactly-once);
    ``state_digest`` chains every executed block, so equal digests mean equal histories.
    """

    height: int
    block: Block
    agreed_time: int
    requests: tuple[Request, ...]
    state_digest: bytes

    @property
    def block_hash(self) -> bytes:
        """The committed block's hash."""
        return self.block.hash


class Execution:
    """The executed state of one replica (see the module docstring)."""

    def __init__(self, node_id: int, service: Service = acknowledge) -> None:
        self.node_id = node_id
        self.service = service
        self.last_timestamp: dict[int, int] = {}
        self.last_reply: dict[int, Reply] = {}
        self.batch_time = 0  # agreed time of the last executed block
        self.state_digest = ZERO_HASH
        self.executed: list[ExecutedBlock] = []

    def execute(self, b: Block) -> tuple[ExecutedBlock, list[Reply]]:
        """Execute committed block ``b``; its record and the (unsigned) replies to send."""
        agreed = self.batch_time = max(self.batch_time, b.timestamp)
        ran: list[Request] = []
        replies: list[Reply] = []
        last = self.last_timestamp
        for req in b.batch:
            c = req.client
            ts = req.timestamp
            if ts <= last.get(c, 0):
                continue  # already executed: exactly-once by client timestamp
            result = self.service(req, agreed)
            last[c] = ts
            reply = own_reply(b.view, ts, c, self.node_id, result)
            self.last_reply[c] = reply
            replies.append(reply)
            ran.append(req)
        # fixed-width fields, so the concatenation is unambiguous: prev || height || block hash
        self.state_digest = sha256(self.state_digest + b.height.to_bytes(8, "big") + b.hash)
        record = ExecutedBlock(b.height, b, agreed, tuple(ran), self.state_digest)
        self.executed.append(record)
        return record, replies
