"""Improved DPoS as MDSM (Xue et al. 2017) describes it: 101 bookkeepers in rotation, 20 auditors.

Theory of operation
-------------------
MDSM joins two server federations (docs/medical-chain.md §1.8): the medical-institution federate
servers (MIFS), whose elected *bookkeeping delegates* produce blocks in turn, and the auditing
federate servers (AFS), which validate every block. medbench's rules:

1. *Membership.* The network needs at least ``delegates + auditors`` members (101 + 20 = 121 in
   the paper configuration): the last ``auditors`` node IDs form the AFS, the rest are MIFS
   candidates. Fewer members, or fewer candidates than delegate seats, raise
   :class:`~medbench.consensus.baselines.common.MembershipError` at construction: the system
   refuses to start. Smaller configurations are allowed for experiments by lowering the two counts.
2. *Election with vote weights.* Every institution has a vote weight set by hand (MDSM's
   administrators decide which hospitals vote and how much). Each MIFS institution casts an
   approval ballot (default: for itself); a candidate's tally is the sum of its voters' weights,
   and the ``delegates`` highest tallies are elected (ties: lower node ID). The election is a pure
   function of the parameters, so every node computes the same delegate set.
3. *Rotation.* Time is cut into slots of ``slot_us``; slot ``s`` belongs to
   ``schedule[s % D]``, the elected delegates in node-ID order. A delegate produces one signed
   block at the start of its slot on its current head; an absent delegate's slot is skipped.
   Every member wakes at each slot boundary, and a block for a slot more than one ahead of the
   member's clock is refused (``future_slot``), so a delegate cannot stall others by producing
   far ahead.
4. *Validation.* Every other member checks each block: the producer owns the block's slot, the
   slot is later than the parent's, height, Merkle root of the transaction IDs, and the producer's
   signature. This is the paper's "each block is validated by the other 100 + 20 nodes".
5. *Audit and finality.* An auditor that accepts a block signs an :class:`Audit` for it and sends
   it to everyone; it audits at most one block per height. A block is *final* when
   ``audit_threshold`` distinct auditors (default ``floor(2A/3) + 1``) have audited it; a final
   block finalises its ancestors, and final blocks are committed in height order. Because the
   threshold exceeds ``A / 2`` and honest auditors audit one block per height, two conflicting
   blocks cannot both become final while at most ``2t - A - 1`` auditors equivocate.
6. *Money.* MDSM issues no currency: no reward, no fee.

Liveness needs one live delegate and ``audit_threshold`` live auditors: the minimal paper
configuration (121 members) tolerates ``A - t`` = 6 crashed auditors and up to 100 crashed
delegates (slots are skipped, throughput falls).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from medbench import codec
from medbench.consensus.baselines.chain import Entry
from medbench.consensus.baselines.common import (
    Check,
    MembershipError,
    Rejected,
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
from medbench.consensus.baselines.ledger import LedgerNode
from medbench.consensus.baselines.signing import Signer
from medbench.node import Note, Ready, Send

MAX_PENDING_AUDITS = 4096


@dataclass(frozen=True, slots=True)
class DposBlock(WireMessage):
    """A block produced by the delegate owning ``slot``, signed over its header."""

    parent: bytes
    height: int
    slot: int
    producer: int
    tx_root: bytes
    txs: tuple[tuple[bytes, int, int], ...]
    signature: bytes

    KIND: ClassVar[str] = "dpos_block"
    SCHEMA: ClassVar[tuple[Check, ...]] = (b32, u64, u64, u64, b32, tx_entries, bytes_max(64))

    def header(self) -> list[Any]:
        """The signed part."""
        return [self.parent, self.height, self.slot, self.producer, self.tx_root]


@dataclass(frozen=True, slots=True)
class Audit(WireMessage):
    """Auditor ``auditor`` validated block ``block_id`` at ``height``."""

    block_id: bytes
    height: int
    auditor: int
    signature: bytes

    KIND: ClassVar[str] = "audit"
    SCHEMA: ClassVar[tuple[Check, ...]] = (b32, u64, u64, bytes_max(64))

    def signed(self) -> bytes:
        """The bytes the auditor signs."""
        return codec.encode(["audit", self.block_id, self.height])


@dataclass(frozen=True, slots=True)
class DposParams:
    """Parameters of an MDSM network (defaults: the paper's 101 + 20)."""

    delegates: int = 101
    auditors: int = 20
    slot_us: int = 3_000_000
    audit_threshold: int | None = None
    weights: tuple[int, ...] | None = None  # vote weight per institution (node ID)
    ballots: tuple[tuple[int, ...], ...] | None = None  # approval ballot per node ID
    max_block_txs: int = 4096
    modeled_signatures: bool = False

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> DposParams:
        """Build from a plain dict; unknown keys are a caller error."""
        check_param_names(cls, params, "DPoS")
        p = dict(params)
        if p.get("weights") is not None:
            p["weights"] = tuple(int(w) for w in p["weights"])
        if p.get("ballots") is not None:
            p["ballots"] = tuple(tuple(int(c) for c in b) for b in p["ballots"])
        return cls(**p)

    def threshold(self) -> int:
        """Audits that make a block final."""
        if self.audit_threshold is not None:
            return self.audit_threshold
        return 2 * self.auditors // 3 + 1


def check_membership(n: int, p: DposParams) -> None:
    """Raise :class:`MembershipError` unless ``n`` members can run MDSM with ``p`` (rule 1)."""
    if p.delegates < 1 or p.auditors < 1:
        raise MembershipError("MDSM needs at least one delegate and one auditor")
    if n < p.delegates + p.auditors:
        raise MembershipError(
            f"MDSM needs {p.delegates} bookkeeping delegates + {p.auditors} auditors "
            f"= {p.delegates + p.auditors} members; got {n}"
        )
    if not p.auditors // 2 < p.threshold() <= p.auditors:
        raise MembershipError("audit threshold must be a majority of the auditors")


def elect(n: int, p: DposParams) -> tuple[int, ...]:
    """The elected delegates in rotation (node-ID) order (rule 2)."""
    check_membership(n, p)
    candidates = range(n - p.auditors)
    weights = p.weights if p.weights is not None else (1,) * n
    if len(weights) != n or any(w < 0 for w in weights):
        raise ValueError("weights must give one non-negative weight per node")
    ballots = p.ballots if p.ballots is not None else tuple((i,) for i in range(n))
    if len(ballots) != n:
        raise ValueError("ballots must give one ballot per node")
    tally = dict.fromkeys(candidates, 0)
    for voter in candidates:  # only MIFS institutions vote
        for c in set(ballots[voter]):
            if c in tally:
                tally[c] += weights[voter]
    ranked = sorted((c for c in candidates if tally[c] > 0), key=lambda c: (-tally[c], c))
    if len(ranked) < p.delegates:
        raise MembershipError(f"only {len(ranked)} candidates received votes; need {p.delegates}")
    return tuple(sorted(ranked[: p.delegates]))


class DposNode(LedgerNode):
    """An MDSM member: delegate, auditor or plain MIFS node (see the module docstring)."""

    HANDLERS: ClassVar[dict[type, str]] = {
        Submit: "handle_submit",
        TxGossip: "handle_tx",
        DposBlock: "handle_block",
        Audit: "handle_audit",
    }
    GENESIS_LABEL: ClassVar[bytes] = b"medbench-dpos-genesis"

    def __init__(
        self, node_id: int, n: int, params: DposParams, signer: Signer, keys: tuple[bytes, ...]
    ) -> None:
        super().__init__(node_id, n, 0)
        self.params = params
        self.schedule = elect(n, params)
        self.auditor_ids = frozenset(range(n - params.auditors, n))
        self.threshold = params.threshold()
        self.signer = signer
        self.keys = keys
        self.is_auditor = node_id in self.auditor_ids
        self.last_slot = 0  # last slot this delegate produced in
        self.audits: dict[bytes, set[int]] = {}
        self.audited_heights: dict[int, bytes] = {}
        self.final_tip = self.genesis_id
        self.final_pending: set[bytes] = set()  # final by audits, not yet placed on the chain
        self.finality_conflicts = 0
        self.decisions = 0  # blocks made final by an audit quorum (observed, for Table 1)
        self.finality_votes_min = 0  # fewest distinct auditors behind one such decision

    def producer_of(self, block: DposBlock) -> int:
        """The delegate."""
        return block.producer

    def block_id_of(self, block: DposBlock) -> bytes:
        """The block's ID recomputed from its contents (uncounted)."""
        return recompute_block_id([*block.header(), block.signature])

    def block_budget(self) -> int:
        """Transactions per block."""
        return self.params.max_block_txs

    def slot_owner(self, slot: int) -> int:
        """The delegate owning ``slot`` (rule 3)."""
        return self.schedule[slot % len(self.schedule)]

    # --- timers: every member wakes at each slot boundary (clock for rule 3's future check)

    def current_slot(self) -> int:
        """The slot the node's clock is in."""
        return self.now // self.params.slot_us

    def next_deadline(self) -> int | None:
        """The next slot boundary."""
        return (self.current_slot() + 1) * self.params.slot_us

    def on_tick(self, ready: Ready) -> None:
        """A delegate produces once in each slot it owns."""
        slot = self.current_slot()
        if slot > self.last_slot and slot >= 1 and self.slot_owner(slot) == self.node_id:
            self.produce(slot, ready)

    def produce(self, slot: int, ready: Ready) -> None:
        """Build, sign and broadcast the block of ``slot`` on the head."""
        self.last_slot = slot
        parent = self.tree.head
        if parent.block is not None and parent.block.slot >= slot:
            return
        txs = self.select_txs()
        block = DposBlock(
            parent.block_id,
            parent.height + 1,
            slot,
            self.node_id,
            tx_root(txs, self.counters),
            txs,
            b"",
        )
        self.counters.sign_ops += 1
        block = replace(block, signature=self.signer.sign(codec.encode(block.header())))
        block_id = block_hash([*block.header(), block.signature], self.counters)
        self.counters.blocks_produced += 1
        added, _ = self.tree.add(block_id, parent.block_id, 1, block, lambda _p, _b: None)
        if self.peers:
            ready.messages.append(Send(self.peers, block))
        self.after_add(added, ready)

    # --- handlers

    def handle_block(self, src: int, msg: DposBlock, ready: Ready) -> None:
        """Validate a block (rule 4); auditors then audit it (rule 5)."""
        if msg.producer != self.slot_owner(msg.slot):
            raise Rejected("not_slot_owner", (msg.slot, msg.producer))
        if msg.slot > self.current_slot() + 1:
            raise Rejected("future_slot", msg.slot)
        self.check_block_txs(msg.txs, msg.tx_root)
        header = msg.header()
        self.counters.verify_ops += 1
        if not self.signer.verify(self.keys[msg.producer], codec.encode(header), msg.signature):
            raise Rejected("bad_signature", msg.producer)
        block_id = block_hash([*header, msg.signature], self.counters)
        self.counters.validations += 1
        added, refused = self.tree.add(block_id, msg.parent, 1, msg, self._validate)
        for exc in refused:
            self.reject(ready, exc.reason, exc.detail)
        self.learn_block_txs(msg.txs)
        self.after_add(added, ready)
        if self.is_auditor:
            for entry in added:
                self.maybe_audit(entry, ready)

    def _validate(self, parent: Entry, block: DposBlock) -> None:
        if block.height != parent.height + 1:
            raise Rejected("bad_height", block.height)
        if parent.block is not None and block.slot <= parent.block.slot:
            raise Rejected("slot_not_increasing", block.slot)

    def maybe_audit(self, entry: Entry, ready: Ready) -> bool:
        """Audit ``entry`` unless this auditor already audited another block at its height."""
        if self.audited_heights.get(entry.height, entry.block_id) != entry.block_id:
            ready.notes.append(Note("audit_refused_conflict", entry.height))
            return False
        self.audited_heights[entry.height] = entry.block_id
        self.counters.sign_ops += 1
        audit = Audit(entry.block_id, entry.height, self.node_id, b"")
        audit = replace(audit, signature=self.signer.sign(audit.signed()))
        if self.peers:
            ready.messages.append(Send(self.peers, audit))
        self._count_audit(audit, ready)
        return True

    def handle_audit(self, src: int, msg: Audit, ready: Ready) -> None:
        """Verify and count an auditor's validation."""
        if msg.auditor not in self.auditor_ids:
            raise Rejected("not_an_auditor", msg.auditor)
        if msg.auditor in self.audits.get(msg.block_id, ()):
            raise Rejected("duplicate_audit", msg.auditor)
        if msg.block_id not in self.audits and len(self.audits) >= MAX_PENDING_AUDITS + len(
            self.tree.entries
        ):
            raise Rejected("audit_buffer_full")
        self.counters.verify_ops += 1
        if not self.signer.verify(self.keys[msg.auditor], msg.signed(), msg.signature):
            raise Rejected("bad_audit_signature", msg.auditor)
        self._count_audit(msg, ready)

    def _count_audit(self, audit: Audit, ready: Ready) -> None:
        who = self.audits.setdefault(audit.block_id, set())
        who.add(audit.auditor)
        if len(who) == self.threshold:
            self.decisions += 1
            if self.finality_votes_min == 0 or len(who) < self.finality_votes_min:
                self.finality_votes_min = len(who)
            self.final_pending.add(audit.block_id)
            self.advance_commits(ready)

    # --- finality (rule 5)

    def is_final(self, block_id: bytes) -> bool:
        """Has ``block_id`` gathered ``audit_threshold`` audits?"""
        return len(self.audits.get(block_id, ())) >= self.threshold

    def advance_commits(self, ready: Ready) -> None:
        """Move the final tip to the highest known final block and commit the path to it."""
        tip = self.tree.entries[self.final_tip]
        known = sorted(
            (e for e in map(self.tree.get, self.final_pending) if e is not None),
            key=lambda e: e.height,
        )
        for entry in known:  # lowest first, so a final chain advances block by block
            self.final_pending.discard(entry.block_id)
            if entry.height <= tip.height and self.tree.is_ancestor(entry.block_id, tip.block_id):
                continue
            if not self.tree.is_ancestor(tip.block_id, entry.block_id):
                self.finality_conflicts += 1
                ready.notes.append(Note("finality_conflict", entry.block_id.hex()[:12]))
                continue
            tip = entry
        if tip.block_id == self.final_tip:
            return
        self.final_tip = tip.block_id
        path: list[Entry] = []
        cur = tip
        while cur.height > len(self.committer.committed):
            path.append(cur)
            cur = self.tree.entries[cur.parent]
        for entry in reversed(path):
            self.committer.committed.append(entry.block_id)
            self.commit(entry, ready)

    def stats(self) -> dict[str, int]:
        """Ledger figures plus finality: final height and conflicts."""
        out = super().stats()
        out.update(
            final_height=self.tree.entries[self.final_tip].height,
            finality_conflicts=self.finality_conflicts,
            delegates=len(self.schedule),
            auditors=len(self.auditor_ids),
            decisions=self.decisions,
            finality_votes_min=self.finality_votes_min,
            validators=len(self.auditor_ids),  # the identified voters of finality
        )
        return out
