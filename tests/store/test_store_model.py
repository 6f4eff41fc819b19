"""Stateful property test: any sequence of store operations agrees with a plain-dict model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from storekit import BLOCKER, block_id, make_tx

from medbench.store import (
    AlreadyInBlock,
    BlockRefused,
    DuplicateBlockId,
    DuplicateTransaction,
    MissingTransactions,
    NodeStore,
    PreviousIdMismatch,
    StoredTransaction,
    TransactionNotFound,
    WrongHeight,
)

POOL = [make_tx(i) for i in range(24)]
picks = st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=5, unique=True)


class StoreVersusModel(RuleBasedStateMachine):
    """The model: bodies (dict), blocks (list of (id, prev, ids)), evicted IDs (set)."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="medbench-store-model-"))
        self.store = NodeStore(self.dir / "n.db", synchronous="NORMAL")
        self.bodies: dict[bytes, StoredTransaction] = {}
        self.blocks: list[tuple[bytes, bytes, tuple[bytes, ...]]] = []
        self.evicted: set[bytes] = set()

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(pick=picks, skip=st.booleans())
    def put(self, pick: list[int], skip: bool) -> None:
        txs = [POOL[i] for i in pick]
        fresh = [t for t in txs if t.tx_id not in self.bodies]
        try:
            added = self.store.put_transactions(txs, skip_identical=skip)
        except DuplicateTransaction as exc:
            assert not skip and len(fresh) < len(txs) and exc.identical
            return
        assert added == len(fresh) and (skip or len(fresh) == len(txs))
        for t in txs:
            self.bodies[t.tx_id] = t
            self.evicted.discard(t.tx_id)

    @rule(i=st.integers(0, len(POOL) - 1))
    def delete(self, i: int) -> None:
        tx = POOL[i]
        try:
            got = self.store.delete_transaction(tx.tx_id)
        except TransactionNotFound:
            assert tx.tx_id not in self.bodies
            return
        assert got == self.bodies.pop(tx.tx_id)

    @rule(pick=picks)
    def evict(self, pick: list[int]) -> None:
        ids = [POOL[i].tx_id for i in pick]
        held = [t for t in ids if t in self.bodies]
        assert self.store.evict_transactions(ids, now_us=7) == len(held)
        for t in held:
            del self.bodies[t]
            self.evicted.add(t)

    @rule(
        pick=st.lists(st.integers(0, len(POOL) - 1), max_size=4, unique=True),
        dh=st.sampled_from([0, 0, 0, 1, -1]),
        bad_prev=st.booleans(),
        reuse_id=st.booleans(),
        require=st.booleans(),
    )
    def append(
        self, pick: list[int], dh: int, bad_prev: bool, reuse_id: bool, require: bool
    ) -> None:
        n = len(self.blocks)
        h = max(0, n + dh)
        prev = self.blocks[-1][0] if self.blocks else bytes(32)
        if bad_prev:
            prev = block_id(999)
        bid = self.blocks[0][0] if (reuse_id and self.blocks) else block_id(n)
        ids = tuple(POOL[i].tx_id for i in pick)
        in_blocks = {t for _, _, b in self.blocks for t in b}
        if h != n:
            expected: type[BlockRefused] | None = WrongHeight
        elif self.blocks and prev != self.blocks[-1][0]:
            expected = PreviousIdMismatch
        elif any(bid == b for b, _, _ in self.blocks):
            expected = DuplicateBlockId
        elif any(t in in_blocks for t in ids):
            expected = AlreadyInBlock
        elif require and any(t not in self.bodies for t in ids):
            expected = MissingTransactions
        else:
            expected = None
        try:
            self.store.append_block(
                h, bid, prev, b"hdr", BLOCKER, h, ids, require_transactions=require
            )
        except BlockRefused as exc:
            assert type(exc) is expected, (exc, expected)
            return
        assert expected is None
        self.blocks.append((bid, prev, ids))

    @invariant()
    def agrees_with_model(self) -> None:
        assert dict(self.store.transactions) == self.bodies
        assert set(self.store.evicted_ids()) == self.evicted
        stored = [(b.block_id, b.prev_id, b.tx_ids) for b in self.store.iter_blocks()]
        assert stored == self.blocks
        listed = [t for _, _, b in self.blocks for t in b]
        missing = [t for t in listed if t not in self.bodies and t not in self.evicted]
        assert self.store.missing_transactions() == missing
        assert [p for p in self.store.check_consistency() if "missing" not in p] == []


# example count from the active profile (tests/conftest.py: ci / soak)
StoreVersusModel.TestCase.settings = settings(stateful_step_count=25, deadline=None)
test_store_versus_model = StoreVersusModel.TestCase
