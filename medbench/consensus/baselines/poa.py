"""Proof of authority as MedRec 2.0's public code runs it: Ethereum's Clique (EIP-225).

Theory of operation
-------------------
A fixed list of *authorities* (signers; the first ``authorities`` nodes, sorted by node ID) takes
turns sealing blocks; other nodes are full nodes that only verify. Rules (EIP-225 and geth's
``consensus/clique``), checked at each cited point:

1. *Period.* A block's timestamp is at least its parent's plus ``period_us`` (15 s by default).
2. *In turn.* The in-turn signer of block ``number`` is ``authorities[number % N]``; it seals at
   ``parent.timestamp + period`` with difficulty 2. Any other authority is *out of turn*: it may
   seal the same number with difficulty 1 after an extra random *wiggle* delay uniform in
   ``[0, (N // 2 + 1) * wiggle_us)`` (``wiggle_us`` = 500 ms as in geth), drawn from the node's
   injected generator, so a crashed in-turn signer does not stall the chain.
3. *Recent signers.* A signer may seal at most one of any ``N // 2 + 1`` consecutive blocks: a
   block whose signer also sealed one of the previous ``N // 2`` blocks is rejected, and a signer
   that signed recently does not try.
4. *Seal.* The header is signed by its signer (Ed25519 here, secp256k1 in geth; ``modeled``
   signatures available for large simulations); a block whose signer is not an authority, or whose
   seal does not verify, is rejected. The cheap membership check runs before the signature check.
5. *Clock.* A block stamped more than one period after the node's clock is refused
   (``future_block``; geth defers such blocks), so a signer cannot stall the chain by sealing
   far ahead. Every node asks to be ticked at least once per period to keep its clock fresh.
6. *Fork choice.* Heaviest total difficulty (in-turn blocks weigh 2, out-of-turn 1), first seen on
   ties. Finality is probabilistic: committed ``confirmations`` blocks deep (default 2).
7. *Money.* Clique mints no block reward; a private MedRec network runs with gas price 0, so no
   fee is paid by default (``gas_price`` is a parameter).

Timers are anchored on the parent's timestamp, so a node never needs the time of a ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from medbench import codec
from medbench.consensus.baselines.chain import Entry
from medbench.consensus.baselines.common import (
    Check,
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
from medbench.consensus.baselines.signing import Signer
from medbench.node import Ready, Send

DIFF_IN_TURN = 2
DIFF_NO_TURN = 1


@dataclass(frozen=True, slots=True)
class PoaBlock(WireMessage):
    """A Clique block: header, its seal (signature) and the transaction references."""

    parent: bytes
    number: int
    timestamp: int
    difficulty: int
    signer: int
    tx_root: bytes
    txs: tuple[tuple[bytes, int, int], ...]
    seal: bytes

    KIND: ClassVar[str] = "poa_block"
    SCHEMA: ClassVar[tuple[Check, ...]] = (b32, u64, u64, u64, u64, b32, tx_entries, bytes_max(64))

    def header(self) -> list[Any]:
        """The signed part."""
        return [
            self.parent,
            self.number,
            self.timestamp,
            self.difficulty,
            self.signer,
            self.tx_root,
        ]


@dataclass(frozen=True, slots=True)
class PoaParams:
    """Parameters of a Clique network (defaults: geth's)."""

    period_us: int = 15_000_000
    wiggle_us: int = 500_000
    authorities: int | None = None  # the first k nodes sign; default: every node
    confirmations: int = 2
    gas_limit: int = 4_700_000
    gas_price: int = 0
    modeled_signatures: bool = False

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> PoaParams:
        """Build from a plain dict; unknown keys are a caller error."""
        check_param_names(cls, params, "PoA")
        return cls(**params)


class PoaNode(GasLedgerNode):
    """A Clique authority or full node (see the module docstring for its rules)."""

    HANDLERS: ClassVar[dict[type, str]] = {
        Submit: "handle_submit",
        TxGossip: "handle_tx",
        PoaBlock: "handle_block",
    }
    GENESIS_LABEL: ClassVar[bytes] = b"medbench-poa-genesis"

    def __init__(
        self,
        node_id: int,
        n: int,
        params: PoaParams,
        signer: Signer,
        keys: tuple[bytes, ...],
        rng: Rng,
    ) -> None:
        super().__init__(node_id, n, params.confirmations)
        k = n if params.authorities is None else params.authorities
        if not 1 <= k <= n:
            raise ValueError("authorities must be between 1 and n")
        self.params = params
        self.gas_limit = params.gas_limit
        self.signer = signer
        self.keys = keys  # public key of every node, by node ID (the genesis directory)
        self.authorities: tuple[int, ...] = tuple(range(k))
        self.recent_limit = k // 2 + 1
        self.rng = rng
        self.plan: tuple[bytes, int] | None = None  # (parent ID, seal time)
        self.started = False

    def producer_of(self, block: PoaBlock) -> int:
        """The signer."""
        return block.signer

    def block_id_of(self, block: PoaBlock) -> bytes:
        """The block's ID recomputed from its contents (uncounted)."""
        return recompute_block_id([*block.header(), block.seal])

    # --- Clique rules

    def in_turn(self, number: int) -> int:
        """The authority whose turn it is to seal block ``number`` (rule 2)."""
        return self.authorities[number % len(self.authorities)]

    def signed_recently(self, signer: int, parent: Entry) -> bool:
        """Did ``signer`` seal one of the last ``N // 2`` blocks up to ``parent``? (rule 3)"""
        cur: Entry | None = parent
        for _ in range(self.recent_limit - 1):
            if cur is None or cur.block is None:
                return False
            if cur.block.signer == signer:
                return True
            cur = self.tree.get(cur.parent)
        return False

    def _timestamp(self, parent: Entry) -> int:
        return parent.block.timestamp if parent.block is not None else 0

    def _replan(self) -> None:
        """Plan to seal on the current head, if this node is an authority allowed to (rules 2-3)."""
        head = self.tree.head
        if self.plan is not None and self.plan[0] == head.block_id:
            return
        self.plan = None
        if self.node_id not in self.authorities or self.signed_recently(self.node_id, head):
            return
        at = self._timestamp(head) + self.params.period_us
        if self.in_turn(head.height + 1) != self.node_id:
            wiggle = (len(self.authorities) // 2 + 1) * self.params.wiggle_us
            at += self.rng.below(wiggle)
        self.plan = (head.block_id, at)

    def next_deadline(self) -> int | None:
        """The sealing plan, or the next period boundary after the head (keeps the clock fresh)."""
        if not self.started:
            return 0
        period = self.params.period_us
        head_ts = self._timestamp(self.tree.head)
        wake = head_ts + period
        if wake <= self.now:  # stalled: wake on the head's period lattice
            wake = self.now + period - (self.now - head_ts) % period
        return min(wake, self.plan[1]) if self.plan is not None else wake

    def on_tick(self, ready: Ready) -> None:
        """Start on the first tick; seal when the plan for the current head is due."""
        if not self.started:
            self.started = True
            self._replan()
        if self.plan is not None and self.now >= self.plan[1]:
            self.seal(ready)

    def seal(self, ready: Ready) -> None:
        """Build, sign and broadcast the next block on the head."""
        parent = self.tree.head
        number = parent.height + 1
        txs = self.select_txs()
        diff = DIFF_IN_TURN if self.in_turn(number) == self.node_id else DIFF_NO_TURN
        block = PoaBlock(
            parent.block_id,
            number,
            self._timestamp(parent) + self.params.period_us,
            diff,
            self.node_id,
            tx_root(txs, self.counters),
            txs,
            b"",
        )
        self.counters.sign_ops += 1
        block = replace(block, seal=self.signer.sign(codec.encode(block.header())))
        block_id = block_hash([*block.header(), block.seal], self.counters)
        self.counters.blocks_produced += 1
        self.plan = None
        added, _ = self.tree.add(block_id, parent.block_id, diff, block, lambda _p, _b: None)
        if self.peers:
            ready.messages.append(Send(self.peers, block))
        self.after_add(added, ready)
        self._replan()

    # --- message handlers

    def handle_block(self, src: int, msg: PoaBlock, ready: Ready) -> None:
        """Verify the seal, insert the block, move the head and re-plan sealing."""
        if msg.signer not in self.authorities:
            raise Rejected("unauthorized_signer", msg.signer)
        if msg.difficulty not in (DIFF_IN_TURN, DIFF_NO_TURN):
            raise Rejected("bad_difficulty", msg.difficulty)
        if msg.timestamp > self.now + self.params.period_us:
            raise Rejected("future_block", msg.timestamp)
        self.check_block_txs(msg.txs, msg.tx_root)
        header = msg.header()
        self.counters.verify_ops += 1
        if not self.signer.verify(self.keys[msg.signer], codec.encode(header), msg.seal):
            raise Rejected("bad_seal", msg.signer)
        block_id = block_hash([*header, msg.seal], self.counters)
        self.counters.validations += 1
        added, refused = self.tree.add(block_id, msg.parent, msg.difficulty, msg, self._validate)
        for exc in refused:
            self.reject(ready, exc.reason, exc.detail)
        self.learn_block_txs(msg.txs)
        self.after_add(added, ready)
        self._replan()

    def _validate(self, parent: Entry, block: PoaBlock) -> None:
        """Parent-dependent Clique rules (1-3)."""
        if block.number != parent.height + 1:
            raise Rejected("bad_number", block.number)
        if block.timestamp < self._timestamp(parent) + self.params.period_us:
            raise Rejected("too_early", block.timestamp)
        expected = DIFF_IN_TURN if self.in_turn(block.number) == block.signer else DIFF_NO_TURN
        if block.difficulty != expected:
            raise Rejected("bad_difficulty", block.difficulty)
        if self.signed_recently(block.signer, parent):
            raise Rejected("recently_signed", block.signer)

    def stats(self) -> dict[str, int]:
        """Ledger figures plus fees (Clique mints no reward)."""
        out = super().stats()
        txs = self.distinct_txs(self.committed_blocks())
        out["fees_paid"] = sum(tx_gas(t[1]) * self.params.gas_price for t in txs)
        return out
