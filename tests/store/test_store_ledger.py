"""Transactions, blocks, the consensus log and checkpoints in the node store."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st
from storekit import BLOCKER, INSTITUTIONS, append, block_id, make_tx, prev_of

from medbench.hashing import sha256
from medbench.store import (
    AlreadyInBlock,
    CheckpointConflict,
    DuplicateBlockId,
    DuplicateTransaction,
    InvalidInput,
    LogCorrupted,
    MissingTransactions,
    NodeStore,
    PreviousIdMismatch,
    StoredTransaction,
    StoreError,
    TransactionNotFound,
    WrongHeight,
)

Chain = Callable[[int, int], list[StoredTransaction]]


def _snapshot_state(s: NodeStore) -> tuple[object, ...]:
    return (
        list(s.iter_blocks()),
        sorted(s.iter_transactions(), key=lambda t: t.tx_id),
        s.read_log(),
        s.checkpoints(),
        s.evicted_ids(),
    )


# -- transactions ----------------------------------------------------------------------------------
def test_put_get_and_mapping_views(store: NodeStore) -> None:
    txs = [make_tx(i) for i in range(20)]
    assert store.put_transactions(txs) == 20
    assert store.get_transaction(txs[3].tx_id) == txs[3]
    assert store.get_transaction(sha256(b"absent")) is None
    assert store.get_transactions([txs[1].tx_id, sha256(b"absent")]) == {txs[1].tx_id: txs[1]}
    view = store.transactions
    assert isinstance(view, Mapping)
    assert len(view) == 20 and list(view) == [t.tx_id for t in txs]
    assert view[txs[0].tx_id] == txs[0]
    assert store.bodies[txs[5].tx_id] == txs[5].body
    hostile: list[object] = [b"short", 42, "text", None]
    assert not any(k in view for k in hostile) and sha256(b"x") not in store.bodies
    with pytest.raises(KeyError):
        view[b"short"]
    with pytest.raises(KeyError):
        store.bodies[sha256(b"absent")]


def test_duplicate_transaction_is_typed_and_batch_is_atomic(store: NodeStore) -> None:
    txs = [make_tx(i) for i in range(5)]
    store.put_transactions(txs[:2])
    with pytest.raises(DuplicateTransaction) as info:
        store.put_transactions([txs[2], txs[3], txs[1]])  # the last one collides
    assert info.value.identical and info.value.tx_id == txs[1].tx_id
    assert len(store.transactions) == 2  # txs[2] and txs[3] were rolled back
    assert store.put_transactions([txs[2], txs[1]], skip_identical=True) == 1
    forged = StoredTransaction(txs[0].tx_id, 1, 0, INSTITUTIONS[0], b"other body")
    with pytest.raises(DuplicateTransaction) as info:
        store.put_transactions([forged], skip_identical=True)
    assert not info.value.identical
    with pytest.raises(DuplicateTransaction):
        store.put_transactions([txs[4], txs[4]])  # repeated inside the batch
    assert store.get_transaction(txs[0].tx_id) == txs[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((b"short", 1, 0, b"p", b"body"), "32 bytes"),
        (("a" * 32, 1, 0, b"p", b"body"), "bytes"),
        ((bytes(32), -1, 0, b"p", b"body"), "kind"),
        ((bytes(32), True, 0, b"p", b"body"), "int"),
        ((bytes(32), 1, 1.5, b"p", b"body"), "int"),
        ((bytes(32), 1, 1 << 64, b"p", b"body"), "timestamp"),
        ((bytes(32), 1, 0, b"", b"body"), "producer"),
        ((bytes(32), 1, 0, b"p" * 2000, b"body"), "producer"),
        ((bytes(32), 1, 0, b"p", b""), "body"),
        ((bytes(32), 1, 0, b"p", "text"), "body"),
    ],
)
def test_malformed_transaction_is_invalid_input(args: tuple[object, ...], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        StoredTransaction(*args)  # type: ignore[arg-type]


def test_put_refuses_non_records(store: NodeStore) -> None:
    with pytest.raises(InvalidInput):
        store.put_transactions([make_tx(1), (b"x" * 32, 1)])  # type: ignore[list-item]
    assert len(store.transactions) == 0


def test_delete_restore_and_tamper(store: NodeStore, chain: Chain) -> None:
    txs = chain(2, 5)
    lost = store.delete_transaction(txs[7].tx_id)
    assert lost == txs[7]
    assert store.missing_transactions() == [txs[7].tx_id]
    assert any("missing" in p for p in store.check_consistency())
    with pytest.raises(TransactionNotFound):
        store.delete_transaction(txs[7].tx_id)
    assert store.restore_transaction(lost) is True
    assert store.restore_transaction(lost) is False  # already back: fine
    assert store.missing_transactions() == [] and store.check_consistency() == []
    store.tamper_transaction(txs[2].tx_id, b"altered diagnosis")
    altered = store.get_transaction(txs[2].tx_id)
    assert altered is not None and altered.body == b"altered diagnosis"
    assert sha256(altered.body) != altered.tx_id  # what the ledger's verifier will catch
    with pytest.raises(TransactionNotFound):
        store.tamper_transaction(sha256(b"absent"), b"x")


def test_evicted_bodies_are_not_missing(store: NodeStore, chain: Chain) -> None:
    txs = chain(1, 4)
    assert store.evict_transactions([txs[0].tx_id, txs[1].tx_id, sha256(b"absent")], now_us=9) == 2
    assert store.evicted_ids() == {txs[0].tx_id: 9, txs[1].tx_id: 9}
    assert store.missing_transactions() == [] and store.check_consistency() == []
    store.restore_transaction(txs[0])
    assert store.evicted_ids() == {txs[1].tx_id: 9}


# -- blocks ----------------------------------------------------------------------------------------
def test_append_and_iterate_blocks(store: NodeStore, chain: Chain) -> None:
    txs = chain(300, 3)  # more than one iteration batch (256)
    assert store.block_count() == 300 and store.tip() == (299, block_id(299))
    blocks = list(store.iter_blocks())
    assert [b.height for b in blocks] == list(range(300))
    assert blocks[10].tx_ids == tuple(t.tx_id for t in txs[30:33])
    assert blocks[10].prev_id == block_id(9) and blocks[10].header == b"header 10"
    assert store.get_block(10) == blocks[10] and store.get_block(300) is None
    assert [b.height for b in store.iter_blocks(297)] == [297, 298, 299]
    assert [b.height for b in store.iter_blocks(3, 5)] == [3, 4]
    assert [h for h, _, _ in store.iter_block_ids(295)] == list(range(295, 300))
    assert store.block_of(txs[31].tx_id) == 10 and store.block_of(sha256(b"no")) is None
    assert store.block_height_of(block_id(42)) == 42
    assert store.check_consistency() == []


def test_block_refusals_are_typed_and_change_nothing(store: NodeStore, chain: Chain) -> None:
    txs = chain(2, 3)
    extra = [make_tx(100 + i) for i in range(3)]
    store.put_transactions(extra)
    before = _snapshot_state(store)

    def try_block(
        h: int, bid: bytes, prev: bytes, ids: list[bytes], require_transactions: bool = True
    ) -> None:
        store.append_block(
            h, bid, prev, b"hdr", BLOCKER, 5, ids, require_transactions=require_transactions
        )

    with pytest.raises(WrongHeight) as wh:
        try_block(5, block_id(5), prev_of(5), [extra[0].tx_id])
    assert (wh.value.expected, wh.value.got) == (2, 5)
    with pytest.raises(WrongHeight):
        try_block(1, block_id(9), block_id(0), [extra[0].tx_id])
    with pytest.raises(PreviousIdMismatch):
        try_block(2, block_id(2), block_id(0), [extra[0].tx_id])
    with pytest.raises(DuplicateBlockId):
        try_block(2, block_id(0), block_id(1), [extra[0].tx_id])
    with pytest.raises(AlreadyInBlock) as aib:
        try_block(2, block_id(2), block_id(1), [extra[0].tx_id, txs[4].tx_id])
    assert aib.value.where == {txs[4].tx_id: 1}
    with pytest.raises(MissingTransactions) as mt:
        try_block(2, block_id(2), block_id(1), [extra[0].tx_id, sha256(b"nobody")])
    assert mt.value.tx_ids == [sha256(b"nobody")]
    with pytest.raises(InvalidInput):
        try_block(2, block_id(2), block_id(1), [extra[0].tx_id, extra[0].tx_id])
    with pytest.raises(InvalidInput):
        try_block(2, b"short", block_id(1), [extra[0].tx_id])
    with pytest.raises(InvalidInput):
        try_block(2, block_id(2), block_id(1), [b"x" * 31])
    with pytest.raises(InvalidInput):
        store.append_block(2, block_id(2), block_id(1), b"", BLOCKER, 5, [])
    assert _snapshot_state(store) == before
    # the optional presence check: a node that lost bodies still follows the chain
    try_block(2, block_id(2), block_id(1), [sha256(b"nobody")], require_transactions=False)
    assert store.tip() == (2, block_id(2))
    assert store.missing_transactions() == [sha256(b"nobody")]


def test_block_with_its_bodies_in_one_commit(store: NodeStore, chain: Chain) -> None:
    chain(1, 2)
    txs = [make_tx(70 + i) for i in range(3)]
    store.put_transaction(txs[0])  # already here: fine, it is identical
    append(store, 1, txs, transactions=txs)
    assert store.get_transactions(t.tx_id for t in txs) == {t.tx_id: t for t in txs}
    more = [make_tx(80 + i) for i in range(2)]
    before = _snapshot_state(store)
    with pytest.raises(WrongHeight):  # a refused block takes its bodies with it
        append(store, 5, more, transactions=more)
    forged = StoredTransaction(txs[1].tx_id, 1, 0, INSTITUTIONS[0], b"forged")
    with pytest.raises(DuplicateTransaction):
        append(store, 2, more, transactions=[*more, forged])
    with pytest.raises(InvalidInput):
        append(store, 2, more, transactions=[b"not a record"])
    assert _snapshot_state(store) == before


def test_failure_mid_append_leaves_nothing(store: NodeStore, chain: Chain) -> None:
    chain(1, 2)
    extra = [make_tx(50 + i) for i in range(4)]
    store.put_transactions(extra)
    before = _snapshot_state(store)
    real = NodeStore._insert_membership

    def half_then_boom(self: NodeStore, conn: object, block: object) -> None:
        conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO block_tx (height, position, tx_id) VALUES (1, 0, ?)", (extra[0].tx_id,)
        )
        raise OSError("disk full")

    store._insert_membership = half_then_boom.__get__(store)  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        append(store, 1, extra)
    assert _snapshot_state(store) == before
    assert store.block_count() == 1 and store.block_of(extra[0].tx_id) is None
    store._insert_membership = real.__get__(store)  # type: ignore[method-assign]
    append(store, 1, extra)  # the same block goes in cleanly afterwards
    assert store.check_consistency() == []


@given(
    height=st.integers(-3, 5),
    bid=st.binary(min_size=0, max_size=40),
    prev=st.sampled_from([prev_of(2), bytes(32), b"", b"z" * 33]),
    pick=st.lists(st.integers(0, 9), max_size=6),
    header=st.binary(max_size=8),
    blocker=st.binary(max_size=40),
    ts=st.one_of(st.integers(-(2**70), 2**70), st.none()),
    require=st.booleans(),
)
def test_hostile_block_input_never_corrupts(
    tmp_path_factory: pytest.TempPathFactory,
    height: int,
    bid: bytes,
    prev: bytes,
    pick: list[int],
    header: bytes,
    blocker: bytes,
    ts: int | None,
    require: bool,
) -> None:
    path = tmp_path_factory.mktemp("hostile") / "n.db"
    with NodeStore(path, synchronous="NORMAL") as s:  # durability is not under test here
        txs = [make_tx(i) for i in range(10)]
        s.put_transactions(txs[:8])  # 8, 9 are unknown to this node
        append(s, 0, txs[:2])
        append(s, 1, txs[2:4])
        pool = [t.tx_id for t in txs]
        ids = [pool[i] for i in pick]
        try:
            s.append_block(
                height,
                bid,
                prev,
                header,
                blocker,
                ts,  # type: ignore[arg-type]
                ids,
                require_transactions=require,
            )
        except StoreError:
            assert s.block_count() == 2
        else:
            assert s.tip() == (2, bid)
        assert [p for p in s.check_consistency() if "missing" not in p] == []
        assert set(s.missing_transactions()) <= {pool[8], pool[9]}


# -- snapshots -------------------------------------------------------------------------------------
def test_snapshot_sees_one_commit(store: NodeStore, chain: Chain) -> None:
    txs = chain(3, 2)
    more = [make_tx(100 + i) for i in range(4)]
    with store.snapshot() as snap:
        store.put_transactions(more)
        append(store, 3, more[:2])
        store.delete_transaction(txs[0].tx_id)
        store.append_log(1, 0, b"pre-prepare")
        # the snapshot still sees the state at its start
        assert snap.block_count() == 3 and snap.tip() == (2, block_id(2))
        assert len(snap.transactions) == 6 and txs[0].tx_id in snap.transactions
        assert snap.get_transaction(more[0].tx_id) is None
        assert [b.height for b in snap.iter_blocks()] == [0, 1, 2]
        assert snap.read_log() == [] and snap.check_consistency() == []
        # while the store sees every commit
        assert store.block_count() == 4 and txs[0].tx_id not in store.transactions
    with store.snapshot() as snap:
        assert snap.block_count() == 4


def test_snapshot_is_read_only(store: NodeStore) -> None:
    import sqlite3

    with store.snapshot() as snap, pytest.raises(sqlite3.OperationalError):
        snap._conn.execute("DELETE FROM blocks")


# -- consensus log and checkpoints -----------------------------------------------------------------
def test_consensus_log_append_read_truncate(store: NodeStore) -> None:
    d = [sha256(b"%d" % i) for i in range(5)]
    i0 = store.append_log(3, 0, b"pp3")
    idx = store.append_log_batch([(1, 0, b"pp1"), (1, 0, b"p1"), (2, 1, b"c2")])
    assert idx == [i0 + 1, i0 + 2, i0 + 3]
    log = store.read_log()
    assert [(e.sequence, e.record) for e in log] == [
        (1, b"pp1"),
        (1, b"p1"),
        (2, b"c2"),
        (3, b"pp3"),
    ]
    assert log[2].view == 1 and log[2].digest == sha256(b"c2")
    assert [e.sequence for e in store.read_log(2)] == [2, 3]
    assert store.truncate_log_below(2) == 2
    assert [e.sequence for e in store.read_log()] == [2, 3]
    for bad in [(-1, 0, b"r"), (1, "v", b"r"), (1, 0, b""), (1, 0), (1, 0, d[0], b"r")]:
        with pytest.raises(InvalidInput):
            store.append_log_batch([(2, 0, b"ok"), bad])  # type: ignore[list-item]
    assert len(store.read_log()) == 2  # the good half of a bad batch was not written


def test_a_log_record_changed_on_disk_is_refused_on_read(store: NodeStore) -> None:
    """Defect 2 of issue 13: the stored digest of a consensus-log record was never checked, so
    a flipped bit was replayed silently. Reading the log now refuses it, and ``check`` (what
    ``medbench store check`` prints) names it."""
    idx = store.append_log_batch([(1, 0, b"pre-prepare"), (1, 0, b"prepare"), (2, 0, b"commit")])
    assert store.check_consistency() == []
    with store._write() as conn:  # one bit of one record flips on disk
        conn.execute("UPDATE consensus_log SET record = ? WHERE idx = ?", (b"prepbre", idx[1]))
    with pytest.raises(LogCorrupted) as caught:
        store.read_log()
    assert caught.value.entries == [(idx[1], 1)] and "sequence 1" in str(caught.value)
    assert [e.index for e in store.corrupt_log_entries()] == [idx[1]]
    assert any("does not match its digest" in p for p in store.check_consistency())
    with store._write() as conn:  # the digest column flips instead
        conn.execute("UPDATE consensus_log SET record = ? WHERE idx = ?", (b"prepare", idx[1]))
        conn.execute("UPDATE consensus_log SET digest = ? WHERE idx = ?", (bytes(32), idx[2]))
    assert [e.index for e in store.corrupt_log_entries()] == [idx[2]]


def test_checkpoints(store: NodeStore) -> None:
    assert store.load_checkpoint() is None
    store.save_checkpoint(100, sha256(b"s100"), b"cert-a")
    store.save_checkpoint(200, sha256(b"s200"), b"cert-b")
    store.save_checkpoint(100, sha256(b"s100"), b"cert-a2")  # a fuller certificate
    assert store.load_checkpoint().sequence == 200  # type: ignore[union-attr]
    cp = store.load_checkpoint(100)
    assert cp is not None and cp.certificate == b"cert-a2"
    with pytest.raises(CheckpointConflict):
        store.save_checkpoint(100, sha256(b"other"), b"cert")
    assert store.delete_checkpoints_below(200) == 1
    assert [c.sequence for c in store.checkpoints()] == [200]
    with pytest.raises(InvalidInput):
        store.save_checkpoint(300, b"short", b"cert")


anything = st.one_of(
    st.integers(-(2**65), 2**65),
    st.binary(max_size=40),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
)


@given(entries=st.lists(st.tuples(anything, anything, anything), max_size=4))
def test_hostile_log_entries_are_all_or_nothing(
    tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[object, ...]]
) -> None:
    with NodeStore(tmp_path_factory.mktemp("log") / "n.db", synchronous="NORMAL") as s:
        s.append_log(0, 0, b"first")
        try:
            idx = s.append_log_batch(entries)  # type: ignore[arg-type]
        except InvalidInput:
            assert len(s.read_log()) == 1
        else:
            assert len(idx) == len(entries) and len(s.read_log()) == 1 + len(entries)
            stored = [(e.sequence, e.view, e.record) for e in s.read_log()]
            assert sorted(stored[1:]) == sorted(entries)  # type: ignore[type-var]
            assert s.integrity_check() == ["ok"]
