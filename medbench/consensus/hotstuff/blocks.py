"""Medical Chain's two-level flow on chained HotStuff: a rotating blocker packs accepted
transaction IDs into blocks that HotStuff orders again (docs/medical-chain.md §1.5, §4.3).

Theory of operation
-------------------
PBFT's blocker mode (``medbench.consensus.pbft.blocker``) first orders *transactions*, then a
*blocker* packs the IDs of accepted transactions and their Merkle root into a BLOCK that PBFT
orders a second time. Here the same flow sits on top of HotStuff without touching consensus,
where :mod:`.execution` says it plugs in:

* :class:`ChainService` is the replica's *service* (``Replica(service=...)``): HotStuff executes
  committed requests in order on every honest replica, and the service turns each client request
  into an *accepted transaction* (its ID, the request digest, waits for a block) and each BLOCK
  request into the next block of the chain, after the deterministic check of :meth:`Chain.check`
  — the same on every honest replica, like PBFT's ``Chain.check`` / ``Chain.append``;
* :class:`Blocker` is the hospital's blocker process (docs/medical-chain.md §1.5: each node runs
  a client, a validator and a blocker), a node of its own with a client identity: it reads its
  own replica's chain (the same hospital), and when its turn comes it broadcasts a BLOCK request
  to every replica, as a client does (any leader may propose it), and waits for ``f + 1``
  matching replies.

**The blocker rule** is :func:`medbench.rotation.blocker_for` with PBFT's reading of
``B = L mod (N - 1)``: the ``B``-th replica after a reference replica, never the reference
itself. PBFT's reference is the primary of the view the blocker computed its turn in; chained
HotStuff has a new leader every view and no primary carrying the client traffic, so the
reference is the *turn* ``k``: the blocker of height ``L`` in turn ``k`` is
``blocker_for(L, k, N)``. Turn 0 (reference ``VA_0``) is PBFT's fault-free rotation
(``VA_1, VA_2, ...``); a block is *due* once ``block_interval_us`` passed since the previous
block's time or ``block_size`` accepted IDs wait (whichever comes first, in agreed time), and
every ``turn_us`` of agreed time after that passes the turn on (turn ``k`` names another replica
as blocker), so a crashed or silent blocker delays a block by ``turn_us``, as PBFT's view change
moves its blocker on. A BLOCK names its turn; :meth:`Chain.check` accepts it when its blocker is
that turn's and the turn has come at the agreed time of the HotStuff block that orders it
(``turn <= turns(t)``), its height and predecessor are the chain's next, and its IDs are accepted
and not yet in a block. A faulty blocker can therefore only make a valid block of its own turn,
or have its BLOCK refused (the reply says why).

A block's time is the agreed time of the HotStuff block that ordered its BLOCK (monotone, set by
the leader and checked by every voter within the clock skew), so no blocker dates the chain.
Blocks hold IDs only (the header: height, previous ID, blocker, Merkle root, time; ID = SHA-256 of
the header), as in PBFT's :class:`DefaultBlockFormat`.

Hash work (:mod:`medbench.hashwork`) counted in :attr:`ChainService.hashes`: per appended block the
Merkle root over its IDs and the block ID, twice (built, then validated), as PBFT's chain does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medbench import codec, merkle
from medbench.consensus.auth import Keyring
from medbench.consensus.hotstuff.client import Client
from medbench.consensus.hotstuff.messages import Request, Submit
from medbench.hashing import sha256
from medbench.hashwork import HashTally, block_hashes
from medbench.node import Ready
from medbench.rotation import blocker_for

BLOCK_TAG = "medchain-block"
"""First field of a BLOCK request's operation."""
ZERO_ID = bytes(32)
NO_BLOCKER = -1
"""The blocker field of the genesis block."""


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The paper's header (docs/medical-chain.md §1.2) with the height made explicit."""

    height: int
    prev_id: bytes
    blocker: int
    merkle_root: bytes
    timestamp: int

    def encode(self) -> bytes:
        """Canonical bytes of the header."""
        return codec.encode(
            (self.height, self.prev_id, self.blocker, self.merkle_root, self.timestamp)
        )


@dataclass(frozen=True, slots=True)
class ChainBlock:
    """A header, the transaction IDs it lists and its ID (SHA-256 of the header)."""

    header: BlockHeader
    tx_ids: tuple[bytes, ...]
    id: bytes

    def encode(self) -> bytes:
        """What a replica stores: ``encode((header bytes, tx IDs))``."""
        return codec.encode((self.header.encode(), self.tx_ids))


def make_block(
    height: int, prev_id: bytes, blocker: int, tx_ids: tuple[bytes, ...], timestamp: int
) -> ChainBlock:
    """Build a block and compute its Merkle root and ID."""
    header = BlockHeader(height, prev_id, blocker, merkle.root(list(tx_ids)), timestamp)
    return ChainBlock(header, tx_ids, sha256(header.encode()))


def validate(block: ChainBlock) -> str | None:
    """``None`` when the Merkle root and the ID match the contents, else why not."""
    if merkle.root(list(block.tx_ids)) != block.header.merkle_root:
        return "merkle root does not match the transaction IDs"
    if sha256(block.header.encode()) != block.id:
        return "block ID does not match the header"
    return None


@dataclass(frozen=True, slots=True)
class BlockCommand:
    """The operation of a BLOCK request: blocker ``blocker`` proposes the block of ``height``
    after ``prev_id`` listing ``tx_ids``, in turn ``turn``."""

    height: int
    prev_id: bytes
    blocker: int
    turn: int
    tx_ids: tuple[bytes, ...]

    def encode(self) -> bytes:
        """``encode((BLOCK_TAG, height, prev_id, blocker, turn, tx_ids))``."""
        return codec.encode(
            (BLOCK_TAG, self.height, self.prev_id, self.blocker, self.turn, self.tx_ids)
        )

    @staticmethod
    def parse(operation: bytes) -> BlockCommand | None:
        """The command in a request's operation, or ``None`` if it is not a well-formed one."""
        try:
            v = codec.decode(operation)
        except codec.DecodeError:
            return None
        if type(v) is not list or len(v) != 6 or v[0] != BLOCK_TAG:
            return None
        _, height, prev_id, blocker, turn, tx_ids = v
        if not all(type(x) is int and x >= 0 for x in (height, blocker, turn)):
            return None
        if type(prev_id) is not bytes or len(prev_id) != 32 or type(tx_ids) is not list:
            return None
        if not all(type(t) is bytes and len(t) == 32 for t in tx_ids):
            return None
        return BlockCommand(height, prev_id, blocker, turn, tuple(tx_ids))


class Chain:
    """One replica's chain of ID-only blocks and its accepted-but-unblocked transactions.

    Deterministic: every honest replica executes the same requests in the same order at the same
    agreed times, so its chain is the same.
    """

    def __init__(self, n: int, block_size: int, interval_us: int, turn_us: int) -> None:
        if n < 2:
            raise ValueError("the blocker rotation needs at least 2 replicas")
        if block_size < 1 or interval_us < 0 or turn_us < 1:
            raise ValueError("need block_size >= 1, interval_us >= 0 and turn_us >= 1")
        self.n = n
        self.block_size = block_size
        self.interval_us = interval_us
        self.turn_us = turn_us
        genesis = make_block(0, ZERO_ID, NO_BLOCKER, (), 0)
        self.blocks: list[ChainBlock] = [genesis]
        self.ids: list[bytes] = [genesis.id]
        self.head_time = 0
        self.full_at: int | None = None  # agreed time at which block_size IDs waited
        self.unblocked: dict[bytes, None] = {}
        self.blocked: set[bytes] = set()
        self.hashes = HashTally()

    @property
    def length(self) -> int:
        """``L``: blocks in the chain, genesis included."""
        return len(self.blocks)

    @property
    def head_id(self) -> bytes:
        """ID of the newest block."""
        return self.ids[-1]

    def due_at(self) -> int:
        """Agreed time from which the next block is due (see the module docstring)."""
        due = self.head_time + self.interval_us
        return min(due, self.full_at) if self.full_at is not None else due

    def turns(self, now: int) -> int:
        """The highest turn that has come at agreed time ``now`` (0 before the block is due)."""
        due = self.due_at()
        return 0 if now < due else (now - due) // self.turn_us

    def blocker(self, turn: int) -> int:
        """The blocker of the next block in ``turn``."""
        return blocker_for(self.length, turn, self.n)

    def accept(self, tx_id: bytes, now: int) -> None:
        """A transaction executed at agreed time ``now``: it waits for a block."""
        if tx_id in self.blocked or tx_id in self.unblocked:
            return
        self.unblocked[tx_id] = None
        if self.full_at is None and len(self.unblocked) >= self.block_size:
            self.full_at = now

    def pending(self, limit: int) -> tuple[bytes, ...]:
        """Up to ``limit`` accepted-but-unblocked IDs, oldest first."""
        out: list[bytes] = []
        for tx in self.unblocked:
            if len(out) >= limit:
                break
            out.append(tx)
        return tuple(out)

    def check(self, cmd: BlockCommand, sender_replica: int | None, now: int) -> str | None:
        """Deterministic validity of a BLOCK executed at agreed time ``now``."""
        if sender_replica is None or cmd.blocker != sender_replica:
            return "not sent by the blocker it names"
        if cmd.height != self.length:
            return "wrong height"
        if cmd.prev_id != self.head_id:
            return "wrong previous block"
        if cmd.turn > self.turns(now):
            return "turn has not come"
        if cmd.blocker != self.blocker(cmd.turn):
            return "not the expected blocker"
        if not cmd.tx_ids or len(cmd.tx_ids) > self.block_size:
            return "empty or oversized block"
        if len(set(cmd.tx_ids)) != len(cmd.tx_ids):
            return "duplicate transaction ID"
        for tx in cmd.tx_ids:
            if tx not in self.unblocked:
                return "transaction not accepted or already in a block"
        return None

    def append(self, cmd: BlockCommand, now: int) -> ChainBlock:
        """Append the (checked) block at agreed time ``now``; its IDs are blocked."""
        ts = max(now, self.head_time)
        block = make_block(self.length, self.head_id, cmd.blocker, cmd.tx_ids, ts)
        reason = validate(block)
        if reason is not None:
            raise AssertionError(f"a block failed its own validation: {reason}")
        work = block_hashes(len(cmd.tx_ids))
        self.hashes.add("merkle", 2 * work["merkle"])
        self.hashes.add("block_id", 2 * work["block_id"])
        self.blocks.append(block)
        self.ids.append(block.id)
        self.head_time = ts
        for tx in cmd.tx_ids:
            self.unblocked.pop(tx, None)
            self.blocked.add(tx)
        self.full_at = None
        if len(self.unblocked) >= self.block_size:
            self.full_at = ts
        return block

    def stored_bytes(self) -> int:
        """Encoded bytes of every block after genesis."""
        return sum(len(b.encode()) for b in self.blocks[1:])

    def verify(self) -> tuple[int, str | None]:
        """Re-check links, Merkle roots and IDs: (blocks after genesis, first fault or None)."""
        for h in range(1, len(self.blocks)):
            b = self.blocks[h]
            if b.header.prev_id != self.ids[h - 1] or b.header.height != h:
                return h - 1, f"block {h} does not follow block {h - 1}"
            why = validate(b)
            if why is not None or b.id != self.ids[h]:
                return h - 1, f"block {h}: {why or 'stored ID differs'}"
        return len(self.blocks) - 1, None


class ChainService:
    """A replica's service in blocker mode: accepts transactions, appends checked BLOCKs.

    ``blocker_ids[r]`` is the client identity of replica ``r``'s blocker. Results: a
    transaction's ID for a transaction (as :func:`~.execution.acknowledge`), ``block:<ID>`` for a
    block appended, ``refused:<reason>`` for a BLOCK that failed the check.
    """

    def __init__(
        self,
        n: int,
        blocker_ids: Sequence[int],
        block_size: int = 100,
        interval_us: int = 1_000_000,
        turn_us: int = 1_000_000,
    ) -> None:
        self.n = n
        self.blocker_ids = tuple(blocker_ids)
        self._replica_of = {b: r for r, b in enumerate(self.blocker_ids)}
        self.params = (block_size, interval_us, turn_us)
        self.chain = Chain(n, block_size, interval_us, turn_us)
        self.refused = 0

    @property
    def hashes(self) -> HashTally:
        """The chain's hash work (Merkle roots and block IDs)."""
        return self.chain.hashes

    def reset(self) -> None:
        """Forget everything (a crash): the replica's recovery executes the ledger again.

        The hash tally object is kept (and zeroed) so that whoever holds it sees the new work.
        """
        tally = self.chain.hashes
        self.chain = Chain(self.n, *self.params)
        for k in tally.counts:
            tally.counts[k] = 0
        self.chain.hashes = tally

    def __call__(self, request: Request, agreed_time_us: int) -> bytes:
        replica = self._replica_of.get(request.client)
        if replica is not None:
            cmd = BlockCommand.parse(request.operation)
            if cmd is None:
                self.refused += 1
                return b"refused:not a block command"
            why = self.chain.check(cmd, replica, agreed_time_us)
            if why is not None:
                self.refused += 1
                return b"refused:" + why.encode()
            return b"block:" + self.chain.append(cmd, agreed_time_us).id
        tx = request.digest()
        self.chain.accept(tx, agreed_time_us)
        return tx


class Blocker:
    """The blocker process of replica ``replica``: a node with client identity ``node_id``.

    It reads ``service.chain`` (its own replica's state: the same hospital) on each tick and,
    when a block is due and one of the turns that have come names its replica, broadcasts a
    BLOCK request through an inner :class:`~.client.Client` (retransmission, ``f + 1`` matching
    replies). One BLOCK is outstanding at a time; it is rebuilt when the chain moved on.
    """

    def __init__(
        self,
        node_id: int,
        replica: int,
        n: int,
        keyring: Keyring,
        service: ChainService,
        retransmit_timeout_us: int = 1_000_000,
    ) -> None:
        self.node_id = node_id
        self.replica = replica
        self.n = n
        self.service = service
        self.client = Client(node_id, n, keyring, retransmit_timeout_us)
        self.keyring = keyring
        self.sent_for: tuple[int, int] | None = None  # (height, turn) of the last BLOCK sent
        self.sent_at = 0
        self.blocks_sent = 0
        self.now = 0

    @property
    def _ready(self) -> Ready:
        return self.client._ready

    def step(self, src: int, msg: Any) -> Ready:
        """Replies to the BLOCK go to the inner client."""
        return self.client.step(src, msg)

    def tick(self, now: int) -> Ready:
        """The inner client's retransmissions, then a new BLOCK if this blocker's turn came."""
        self.now = max(self.now, now)
        ready = self.client.tick(now)
        chain = self.service.chain
        if not chain.unblocked or now < chain.due_at():
            return ready
        height = chain.length
        if self.sent_for is not None and self.sent_for[0] == height and not self.client.idle:
            return ready  # ours is on its way
        # The turns that have come by this clock (the leader's agreed time decides, so a turn
        # a little ahead of the others' clocks is refused and rebuilt later)
        mine = [k for k in range(chain.turns(now) + 1) if chain.blocker(k) == self.replica]
        if not mine:
            return ready
        turn = mine[-1]
        if self.sent_for == (height, turn) and now - self.sent_at < chain.turn_us // 2:
            return ready  # answered but not applied here yet (or refused): try again later
        ids = chain.pending(chain.block_size)
        cmd = BlockCommand(height, chain.head_id, self.replica, turn, ids)
        self.sent_for = (height, turn)
        self.sent_at = now
        self.blocks_sent += 1
        self.client.queue.clear()
        return ready.extend(self.client.step(self.node_id, Submit(cmd.encode())))

    @property
    def idle(self) -> bool:
        """Nothing outstanding."""
        return self.client.idle


__all__ = [
    "BLOCK_TAG",
    "NO_BLOCKER",
    "BlockCommand",
    "BlockHeader",
    "Blocker",
    "Chain",
    "ChainBlock",
    "ChainService",
    "make_block",
    "validate",
]
