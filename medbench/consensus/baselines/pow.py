"""Proof of work as MedRec (Azaria et al. 2016) ran it on Ethereum: miners, forks, heaviest chain.

Theory of operation
-------------------
Rules (docs/medical-chain.md §1.8; Ethereum Homestead as of 2016, simplified where stated):

1. *Discovery.* A miner of hash rate ``h`` (hashes/s) tries nonces; each SHA-256 of a header is
   below the target ``2**256 // D`` with probability ``~1/D`` (``D`` = difficulty = expected hashes
   per block). Successes therefore form a Poisson process of rate ``h / D``: inter-block times
   are exponential with mean ``D / h``. Because the process is memoryless and every hash is an
   independent trial whatever header it covers, the node draws its *find events* from its own
   injected generator once per find, independent of what the network does, and builds the block
   on whatever head it has when the event fires. This needs no clock at ``step`` time and keeps
   the node deterministic under a seed: the find times are a function of the seed only.
   The node asks the driver for the event through :meth:`PowNode.next_deadline`.
2. *Hash count.* Modeled mode counts ``h x mining time`` hashes (exact integer). Real-hashing mode
   (``real_hashing=True``, low ``D``) builds the header and iterates nonces with
   :func:`medbench.hashing.sha256_many` until the ID is below the target, counting the trials; a
   receiver then checks the work. Tests show the mean trials per block match ``D``, which validates
   the model's expected hash count.
3. *Block validity.* Parent known (else buffered), height = parent + 1, timestamp > parent's,
   difficulty = the network's fixed ``D``, Merkle root of the transaction IDs, no repeated
   transaction, gas within the block gas limit, and in real mode ID < target. A modeled block's
   work cannot be checked (it was never computed): modeled mode trusts miners' work by design.
4. *Fork choice.* Heaviest total difficulty, first seen on ties (:mod:`.chain`). Forks arise when
   two miners find blocks within a propagation delay of each other; the loser is an orphan.
5. *Finality.* Probabilistic: a block is committed ``confirmations`` blocks deep (default 12, the
   customary Ethereum wallet depth).
6. *Money.* Each main-chain block pays the miner ``block_reward`` (5 ETH in 2016) plus each
   transaction's fee ``gas x gas_price`` with ``gas = 21000 + 68 x size`` (Homestead intrinsic gas).
   Amounts are integer gwei.

Transactions are flooded as :class:`TxGossip`; blocks carry ``(tx_id, size, submit_time)`` only.
Blocks are sent directly to every peer (the driver's topology decides how long that takes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from medbench import codec
from medbench.consensus.baselines.chain import Entry
from medbench.consensus.baselines.common import (
    Check,
    MalformedMessage,
    Rejected,
    Rng,
    Submit,
    TxGossip,
    WireMessage,
    b32,
    block_hash,
    bytes_max,
    check_param_names,
    recompute_block_id,
    tx_entries,
    tx_root,
    u64,
)
from medbench.consensus.baselines.ledger import GasLedgerNode, tx_gas
from medbench.hashing import sha256, sha256_many
from medbench.node import Note, Ready, Send

GWEI_PER_ETH = 1_000_000_000
MAX_PAYLOAD = 1 << 20
NONCE_BATCH = 256


def nonce8(v: Any) -> None:
    """An 8-byte nonce."""
    if type(v) is not bytes or len(v) != 8:
        raise MalformedMessage("expected an 8-byte nonce")


@dataclass(frozen=True, slots=True)
class PowBlock(WireMessage):
    """A mined block: header fields, then the transaction references and an opaque payload."""

    parent: bytes
    height: int
    miner: int
    timestamp: int
    difficulty: int
    tx_root: bytes
    payload_hash: bytes
    nonce: bytes
    txs: tuple[tuple[bytes, int, int], ...]
    payload: bytes

    KIND: ClassVar[str] = "pow_block"
    SCHEMA: ClassVar[tuple[Check, ...]] = (
        b32,
        u64,
        u64,
        u64,
        u64,
        b32,
        b32,
        nonce8,
        tx_entries,
        bytes_max(MAX_PAYLOAD),
    )

    def header(self) -> list[Any]:
        """The hashed part: everything but the transaction list and the payload."""
        return [
            self.parent,
            self.height,
            self.miner,
            self.timestamp,
            self.difficulty,
            self.tx_root,
            self.payload_hash,
            self.nonce,
        ]


@dataclass(frozen=True, slots=True)
class PowParams:
    """Parameters of a PoW network (defaults: Ethereum as MedRec used it in 2016)."""

    hashrate: float = 25e6  # hashes/s per miner (the paper's AMD RX580 example)
    hashrates: tuple[float, ...] | None = None  # per-node override
    difficulty: int | None = None  # expected hashes per block; default from block_time_us
    block_time_us: int = 15_000_000
    confirmations: int = 12
    block_reward: int = 5 * GWEI_PER_ETH  # gwei
    gas_price: int = 20  # gwei per gas
    gas_limit: int = 4_700_000
    real_hashing: bool = False

    @classmethod
    def from_dict(cls, params: dict[str, Any], n: int) -> PowParams:
        """Build from a plain dict; unknown keys are a caller error."""
        check_param_names(cls, params, "PoW")
        p = dict(params)
        if p.get("hashrates") is not None:
            p["hashrates"] = tuple(float(x) for x in p["hashrates"])
            if len(p["hashrates"]) != n:
                raise ValueError("hashrates must list one rate per node")
        return cls(**p)

    def rate(self, node_id: int) -> float:
        """Hash rate of ``node_id``."""
        return self.hashrates[node_id] if self.hashrates is not None else self.hashrate

    def total_rate(self, n: int) -> float:
        """Network hash rate."""
        return sum(self.hashrates) if self.hashrates is not None else self.hashrate * n

    def resolved_difficulty(self, n: int) -> int:
        """``difficulty`` or, if unset, the one giving ``block_time_us`` on average."""
        if self.difficulty is not None:
            return max(1, int(self.difficulty))
        return max(1, round(self.total_rate(n) * self.block_time_us / 1e6))


class PowNode(GasLedgerNode):
    """A PoW miner and full node (see the module docstring for its rules)."""

    HANDLERS: ClassVar[dict[type, str]] = {
        Submit: "handle_submit",
        TxGossip: "handle_tx",
        PowBlock: "handle_block",
    }
    GENESIS_LABEL: ClassVar[bytes] = b"medbench-pow-genesis"

    def __init__(self, node_id: int, n: int, params: PowParams, rng: Rng) -> None:
        super().__init__(node_id, n, params.confirmations)
        self.params = params
        self.rng = rng
        self.difficulty = params.resolved_difficulty(n)
        self.target = (1 << 256) // self.difficulty
        self.hashrate = params.rate(node_id)
        self.gas_limit = params.gas_limit
        self.next_find: int | None = None
        self.mining_start = 0
        self.nonce_trials: list[int] = []  # real mode: trials per found block

    def producer_of(self, block: PowBlock) -> int:
        """The miner."""
        return block.miner

    def block_id_of(self, block: PowBlock) -> bytes:
        """The block's ID recomputed from its contents (uncounted)."""
        return recompute_block_id(block.header())

    # --- timers

    def next_deadline(self) -> int | None:
        """The next find event (``None`` before the first tick or with zero hash rate)."""
        return self.next_find

    def on_tick(self, ready: Ready) -> None:
        """Start mining on the first tick; on each due find event, mine a block."""
        if self.hashrate <= 0:
            return
        if self.next_find is None:
            self.mining_start = self.now
            self.next_find = self.now + self._draw_gap()
            return
        if not self.params.real_hashing:  # modeled: h x time spent mining so far
            self.counters.hash_mining = int(self.hashrate * (self.now - self.mining_start) / 1e6)
        while self.next_find is not None and self.now >= self.next_find:
            self.mine_block(ready)
            self.next_find += self._draw_gap()

    def _draw_gap(self) -> int:
        return self.rng.exponential_us(self.difficulty / self.hashrate * 1e6)

    # --- hooks for PoI

    def make_payload(self, parent: Entry) -> bytes:
        """Extra block content (PoW: none)."""
        return b""

    def check_payload(self, parent: Entry, block: PowBlock) -> None:
        """Validate the extra content (PoW: must be empty)."""
        if block.payload:
            raise Rejected("unexpected_payload")

    # --- block production

    def mining_parent(self) -> Entry:
        """The block to mine on: the head (an attacker overrides this)."""
        return self.tree.head

    def publish(self, block: PowBlock, ready: Ready) -> None:
        """Send a freshly mined block to every peer (an attacker withholds instead)."""
        if self.peers:
            ready.messages.append(Send(self.peers, block))

    def mine_block(self, ready: Ready) -> Entry | None:
        """Build a block on the mining parent (the find event fired), publish it, return it."""
        parent = self.mining_parent()
        pblock = parent.block
        timestamp = max(self.now, (pblock.timestamp + 1) if pblock is not None else 0)
        txs = self.select_txs()
        payload = self.make_payload(parent)
        self.counters.hash_block += 1  # payload hash
        block = PowBlock(
            parent.block_id,
            parent.height + 1,
            self.node_id,
            timestamp,
            self.difficulty,
            tx_root(txs, self.counters),
            sha256(payload),
            bytes(8),
            txs,
            payload,
        )
        if self.params.real_hashing:
            nonce = self._search_nonce(block.header()[:-1])
            if nonce is None:
                ready.notes.append(Note("nonce_search_exhausted"))
                return None
        else:
            nonce = self.rng.below(1 << 64).to_bytes(8, "big")
        block = replace(block, nonce=nonce)
        block_id = block_hash(block.header(), self.counters)
        self.counters.blocks_produced += 1
        added, _ = self.tree.add(block_id, parent.block_id, self.difficulty, block, _accept)
        self.publish(block, ready)
        self.after_add(added, ready)
        return added[0]

    def _search_nonce(self, fields_: list[Any]) -> bytes | None:
        """Iterate nonces (batches through ``sha256_many``) until the ID is below the target."""
        prefix = codec.encode([*fields_, bytes(8)])[:-8]  # nonce is the last 8 bytes
        start = self.rng.below(1 << 64)
        max_trials = 64 * self.difficulty + 4096  # P(no success) < e**-64
        trials = 0
        while trials < max_trials:
            nonces = [
                ((start + trials + i) & ((1 << 64) - 1)).to_bytes(8, "big")
                for i in range(NONCE_BATCH)
            ]
            digests = sha256_many([prefix + x for x in nonces])
            self.counters.hash_mining_real += len(digests)
            for i, d in enumerate(digests):
                if int.from_bytes(d, "big") < self.target:
                    self.counters.hash_mining += trials + i + 1
                    self.nonce_trials.append(trials + i + 1)
                    return nonces[i]
            trials += NONCE_BATCH
        self.counters.hash_mining += trials
        return None

    # --- message handlers

    def handle_block(self, src: int, msg: PowBlock, ready: Ready) -> None:
        """Check a peer's block, insert it, and move the head if it is heavier."""
        if msg.difficulty != self.difficulty:
            raise Rejected("bad_difficulty", msg.difficulty)
        if msg.miner >= self.n:
            raise Rejected("unknown_miner", msg.miner)
        self.check_block_txs(msg.txs, msg.tx_root)
        self.counters.hash_block += 1
        if sha256(msg.payload) != msg.payload_hash:
            raise Rejected("bad_payload_hash")
        block_id = block_hash(msg.header(), self.counters)
        if self.params.real_hashing and int.from_bytes(block_id, "big") >= self.target:
            raise Rejected("insufficient_work")
        self.counters.validations += 1
        added, refused = self.tree.add(block_id, msg.parent, msg.difficulty, msg, self._validate)
        for exc in refused:
            self.reject(ready, exc.reason, exc.detail)
        self.learn_block_txs(msg.txs)
        self.after_add(added, ready)

    def _validate(self, parent: Entry, block: PowBlock) -> None:
        """Parent-dependent checks, run when the block connects to the tree."""
        if block.height != parent.height + 1:
            raise Rejected("bad_height", block.height)
        ptime = parent.block.timestamp if parent.block is not None else -1
        if block.timestamp <= ptime:
            raise Rejected("bad_timestamp", block.timestamp)
        self.check_payload(parent, block)

    # --- figures

    def money(self, blocks: list[PowBlock]) -> tuple[int, int]:
        """``(rewards, fees)`` paid by ``blocks`` (a transaction pays at its first inclusion)."""
        fees = sum(tx_gas(t[1]) * self.params.gas_price for t in self.distinct_txs(blocks))
        return self.params.block_reward * len(blocks), fees

    def stats(self) -> dict[str, int]:
        """Ledger figures plus the money paid by committed blocks and the difficulty."""
        out = super().stats()
        out["rewards_paid"], out["fees_paid"] = self.money(self.committed_blocks())
        out["difficulty"] = self.difficulty
        return out


def _accept(parent: Entry, block: Any) -> None:
    """Validation of a block we made ourselves: nothing to check."""
