"""Chain validation: one test per kind of tampering, localisation, repair from peers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbench import merkle
from medbench.ledger import (
    Block,
    BlockHeader,
    FindingKind,
    Kind,
    Problem,
    Transaction,
    expected_blocker,
    repair,
    verify_chain,
)
from medbench.rotation import blocker_offset
from medbench.workload.generator import Workload, WorkloadConfig, build_chain, generate

CONFIG = WorkloadConfig(
    institutions=4, staff_per_institution=2, independent_workers=1, patients=6, visits=20
)


@pytest.fixture(scope="module")
def world() -> tuple[Workload, object, list[Block]]:
    wl = generate(CONFIG, seed=11)
    genesis, blocks = build_chain(wl, block_size=8)
    return wl, genesis, blocks


def kinds_at(report, kind):  # type: ignore[no-untyped-def]
    return [(f.height, f.tx_index) for f in report.of_kind(kind)]


def resign(block: Block, signer, **changes) -> Block:  # type: ignore[no-untyped-def]
    """A copy of ``block`` with header fields changed, re-signed by ``signer``."""
    header = replace(block.header, **changes)
    return Block(header, signer.sign(header.id), block.tx_ids)


def validator(wl: Workload, public: bytes):  # type: ignore[no-untyped-def]
    return next(v for v in wl.validators if v.public == public)


# --- rotation ------------------------------------------------------------------------------------


def test_paper_worked_example_l1_n4_is_va1() -> None:
    va = ["VA_0", "VA_1", "VA_2", "VA_3"]
    assert expected_blocker(1, va, "VA_0") == "VA_1"
    assert [expected_blocker(h, va, "VA_0") for h in range(1, 7)] == [
        "VA_1",
        "VA_2",
        "VA_3",
        "VA_1",
        "VA_2",
        "VA_3",
    ]


@given(st.integers(2, 12), st.integers(0, 11), st.integers(0, 1000))
def test_blocker_is_never_the_primary_and_rotates(n: int, p: int, length: int) -> None:
    va = list(range(n))
    primary = p % n
    b = expected_blocker(length, va, primary)
    assert b != primary
    assert {expected_blocker(length + k, va, primary) for k in range(n - 1)} == set(va) - {primary}
    assert 1 <= blocker_offset(length, n) <= n - 1


def test_rotation_misuse() -> None:
    with pytest.raises(ValueError):
        expected_blocker(1, ["only"], "only")
    with pytest.raises(ValueError):
        expected_blocker(1, ["a", "b"], "c")


# --- the clean chain -----------------------------------------------------------------------------


def test_clean_chain_verifies(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    report = verify_chain(genesis, blocks, wl.store(), policy=wl.policy)
    assert report.ok, [str(f) for f in report.findings]
    assert report.blocks_checked == len(blocks) >= 5
    assert report.transactions_checked == len(wl.transactions)
    assert report.signatures_checked > len(wl.transactions)


def test_store_of_wire_bytes_plugs_in(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    store = {k: tx.to_wire() for k, tx in wl.store().items()}
    assert verify_chain(genesis, blocks, store, policy=wl.policy).ok


# --- transaction-level tampering ----------------------------------------------------------------


def test_altered_body_is_localised(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    store = wl.store()
    h, i = 3, 5
    tid = blocks[h - 1].tx_ids[i]
    tx = store[tid]
    store[tid] = replace(tx, content=tx.content + b" (edited)")
    report = verify_chain(genesis, blocks, store, policy=wl.policy)
    assert [(f.kind, f.height, f.tx_index, f.tx_id) for f in report.findings] == [
        (FindingKind.BODY_ALTERED, h, i, tid)
    ]


def test_deleted_transaction_restored_from_peer(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    local, peer = wl.store(), wl.store()
    tid = blocks[1].tx_ids[2]
    del local[tid]
    report = verify_chain(genesis, blocks, local, policy=wl.policy)
    assert kinds_at(report, FindingKind.TRANSACTION_MISSING) == [(2, 2)]
    result = repair(genesis, blocks, local, [{}, peer], report=report, policy=wl.policy)
    assert result.restored == (tid,) and result.complete
    assert result.report is not None and result.report.ok
    assert local[tid] == peer[tid]


def test_repair_refuses_a_lying_peer(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    local, liar, honest = wl.store(), wl.store(), wl.store()
    tid = blocks[0].tx_ids[0]
    del local[tid]
    liar[tid] = replace(liar[tid], content=b"forged history")
    result = repair(genesis, blocks, local, [liar], policy=wl.policy)
    assert result.unrecoverable == (tid,) and not result.restored
    assert result.refused and result.refused[0][:2] == (0, tid)
    assert tid not in local
    result = repair(genesis, blocks, local, [liar, honest], policy=wl.policy)
    assert result.restored == (tid,) and result.report is not None and result.report.ok


def test_altered_body_repaired(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    local = wl.store()
    tid = blocks[-1].tx_ids[-1]
    local[tid] = replace(local[tid], timestamp_us=local[tid].timestamp_us + 1)
    result = repair(genesis, blocks, local, [wl.store()], policy=wl.policy)
    assert result.restored == (tid,) and result.report is not None and result.report.ok


def test_forged_signature(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    store = wl.store()
    h, i = 2, 4
    tid = blocks[h - 1].tx_ids[i]
    tx = store[tid]
    mallory = wl.patients[0].identity.signing
    store[tid] = replace(tx, signatures=(mallory.sign(tid), *tx.signatures[1:]))
    report = verify_chain(genesis, blocks, store, policy=wl.policy)
    [finding] = report.findings
    assert (finding.kind, finding.height, finding.tx_index) == (FindingKind.SIGNATURE_INVALID, h, i)
    assert finding.problems[0].index == 0 and finding.problems[0].problem is Problem.INVALID
    result = repair(genesis, blocks, store, [wl.store()], report=report, policy=wl.policy)
    assert result.report is not None and result.report.ok


def _append_block(wl: Workload, genesis, blocks: list[Block], txs: list[Transaction]):  # type: ignore[no-untyped-def]
    height = len(blocks) + 1
    blocker = validator(wl, expected_blocker(height, genesis.validators, genesis.validators[0]))
    ts = max(blocks[-1].header.timestamp_us, txs[-1].timestamp_us)
    block = Block.make(height, blocks[-1].id, blocker, [t.id for t in txs], ts)
    return [*blocks, block]


def test_missing_institution_countersignature(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    doctor = wl.staff[0]
    ts = blocks[-1].header.timestamp_us + 1
    alone = Transaction.create(Kind.ADD, b"record without hospital", ts, [doctor.identity.signing])
    institution = next(i for i in wl.institutions if i.key == doctor.institution)
    unsigned = Transaction(
        Kind.ADD, b"hospital never signed", ts, (doctor.key, institution.key)
    ).with_signature(doctor.identity.signing)
    chain = _append_block(wl, genesis, blocks, [alone, unsigned])
    store = wl.store() | {alone.id: alone, unsigned.id: unsigned}
    report = verify_chain(genesis, chain, store, policy=wl.policy)
    h = len(chain)
    assert kinds_at(report, FindingKind.SIGNER_MISSING) == [(h, 0)]
    assert report.of_kind(FindingKind.SIGNER_MISSING)[0].problems[0].public_key == institution.key
    [bad] = report.of_kind(FindingKind.SIGNATURE_INVALID)
    assert (bad.height, bad.tx_index) == (h, 1)
    assert [(p.index, p.problem) for p in bad.problems] == [(1, Problem.MISSING)]
    # without the rule, the lone signature is fine
    assert not verify_chain(genesis, chain, store).of_kind(FindingKind.SIGNER_MISSING)


def test_unlisted_and_pending(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    extra = Transaction.create(Kind.QUERY, b"q", 1, [wl.patients[0].identity.signing])
    store = wl.store() | {extra.id: extra}
    report = verify_chain(genesis, blocks, store)
    assert [f.tx_id for f in report.of_kind(FindingKind.TRANSACTION_UNLISTED)] == [extra.id]
    assert verify_chain(genesis, blocks, store, pending={extra.id}).ok


# --- block-level tampering -----------------------------------------------------------------------


def test_broken_link(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    k = len(blocks) - 1  # last block: nothing links to it
    b = blocks[k]
    forged = resign(b, validator(wl, b.header.blocker), previous_id=bytes(32))
    report = verify_chain(genesis, [*blocks[:k], forged], wl.store())
    assert [(f.kind, f.height) for f in report.findings] == [(FindingKind.LINK_BROKEN, k + 1)]


def test_altered_earlier_block_breaks_the_next_link(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    b = blocks[1]
    forged = resign(b, validator(wl, b.header.blocker), timestamp_us=b.header.timestamp_us + 1)
    chain = [blocks[0], forged, *blocks[2:]]
    report = verify_chain(genesis, chain, wl.store())
    assert [(f.kind, f.height) for f in report.findings] == [(FindingKind.LINK_BROKEN, 3)]


def test_reordered_blocks(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    chain = list(blocks)
    chain[2], chain[3] = chain[3], chain[2]
    report = verify_chain(genesis, chain, wl.store())
    assert kinds_at(report, FindingKind.HEIGHT_MISMATCH) == [(3, None), (4, None)]
    assert {3, 4} <= {f.height for f in report.of_kind(FindingKind.LINK_BROKEN)}
    assert set(report.bad_heights()) <= {3, 4, 5}


def test_wrong_blocker(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    b = blocks[-1]
    intruder = next(v for v in wl.validators if v.public != b.header.blocker)
    forged = resign(b, intruder, blocker=intruder.public)
    report = verify_chain(genesis, [*blocks[:-1], forged], wl.store())
    assert [(f.kind, f.height) for f in report.findings] == [
        (FindingKind.WRONG_BLOCKER, len(blocks))
    ]


def test_blocker_depends_on_the_primary(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, _blocks = world
    # a chain built in view 1 (primary VA_1) fails when checked against primary VA_0
    g, chain = build_chain(wl, block_size=8, primary=genesis.validators[1])
    assert verify_chain(g, chain, primary=genesis.validators[1]).ok
    assert verify_chain(g, chain, primary=lambda h: genesis.validators[1]).ok
    assert verify_chain(g, chain).of_kind(FindingKind.WRONG_BLOCKER)


def test_invalid_block_signature(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    b = blocks[0]
    forged = Block(b.header, bytes(64), b.tx_ids)
    report = verify_chain(genesis, [forged, *blocks[1:]], wl.store())
    assert [(f.kind, f.height) for f in report.findings] == [
        (FindingKind.BLOCK_SIGNATURE_INVALID, 1)
    ]


def test_altered_merkle_root(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    b = blocks[-1]
    forged = resign(b, validator(wl, b.header.blocker), merkle_root=bytes(32))
    report = verify_chain(genesis, [*blocks[:-1], forged], wl.store())
    assert [(f.kind, f.height) for f in report.findings] == [
        (FindingKind.MERKLE_ROOT_MISMATCH, len(blocks))
    ]


def test_altered_body_id(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    b = blocks[2]
    ids = list(b.tx_ids)
    original = ids[6]
    ids[6] = bytes(32)
    chain = [*blocks[:2], Block(b.header, b.signature, tuple(ids)), *blocks[3:]]
    report = verify_chain(genesis, chain, wl.store())
    assert report.kinds() == {
        FindingKind.MERKLE_ROOT_MISMATCH,
        FindingKind.TRANSACTION_MISSING,
        FindingKind.TRANSACTION_UNLISTED,
    }
    assert kinds_at(report, FindingKind.TRANSACTION_MISSING) == [(3, 6)]
    assert [f.tx_id for f in report.of_kind(FindingKind.TRANSACTION_UNLISTED)] == [original]


def test_duplicate_listing(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    again = blocks[0].tx_ids[0]
    chain = _append_block(wl, genesis, blocks, [wl.transactions[0]])
    report = verify_chain(genesis, chain, wl.store())
    assert [(f.kind, f.height, f.tx_id) for f in report.findings] == [
        (FindingKind.DUPLICATE_TRANSACTION, len(chain), again)
    ]


# --- property: any single-byte change is localised to that transaction ---------------------------


@given(st.data())
def test_any_single_byte_change_is_localised(world, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    store = {k: tx.to_wire() for k, tx in wl.store().items()}
    h = data.draw(st.integers(1, len(blocks)), label="height")
    i = data.draw(st.integers(0, len(blocks[h - 1].tx_ids) - 1), label="index")
    tid = blocks[h - 1].tx_ids[i]
    wire = bytearray(store[tid])
    pos = data.draw(st.integers(0, len(wire) - 1), label="byte")
    wire[pos] ^= data.draw(st.integers(1, 255), label="xor")
    store[tid] = bytes(wire)
    report = verify_chain(genesis, blocks, store, policy=wl.policy)
    assert not report.ok
    assert {(f.height, f.tx_index, f.tx_id) for f in report.findings} == {(h, i, tid)}


def test_merkle_diff_localises_many(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    store = wl.store()
    targets = {(1, 0), (1, 7), (4, 3)}
    for h, i in targets:
        tid = blocks[h - 1].tx_ids[i]
        store[tid] = replace(store[tid], content=b"x")
    report = verify_chain(genesis, blocks, store)
    assert set(kinds_at(report, FindingKind.BODY_ALTERED)) == targets
    assert merkle.diff(blocks[0].tx_ids, blocks[0].tx_ids) == []


def test_header_equality_helper() -> None:
    h = BlockHeader(1, bytes(32), b"k", bytes(32), 0)
    assert replace(h, height=2).id != h.id


# --- unsigned blocks (integrated mode stores a block before its signature arrives) ---------------


def _unsigned(block: Block) -> Block:
    return Block(block.header, b"", block.tx_ids)


def test_unsigned_tip_is_an_advisory_finding(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    chain = [*blocks[:-2], _unsigned(blocks[-2]), _unsigned(blocks[-1])]
    report = verify_chain(genesis, chain, wl.store(), policy=wl.policy)
    assert [(f.kind, f.height) for f in report.findings] == [
        (FindingKind.UNSIGNED_TIP, len(blocks) - 1),
        (FindingKind.UNSIGNED_TIP, len(blocks)),
    ]
    assert report.ok and report.defects == ()  # awaiting a signature is not a defect


def test_unsigned_block_under_a_signed_one_is_vouched_for(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    chain = [_unsigned(blocks[0]), blocks[1], _unsigned(blocks[2]), *blocks[3:]]
    report = verify_chain(genesis, chain, wl.store(), policy=wl.policy)
    assert report.findings == ()


def test_a_wrong_signature_is_never_excused_by_a_signed_block_above(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    b = blocks[1]
    other = next(v for v in wl.validators if v.public != b.header.blocker)
    chain = [blocks[0], Block(b.header, other.sign(b.id), b.tx_ids), *blocks[2:]]
    report = verify_chain(genesis, chain, wl.store())
    assert [(f.kind, f.height) for f in report.findings] == [
        (FindingKind.BLOCK_SIGNATURE_INVALID, 2)
    ]


def test_an_unsigned_forged_block_is_caught(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    # a forger swaps block 2's IDs and strips the signature it cannot make: block 3's link breaks
    # and nothing signed vouches for the forged block any more
    b = blocks[1]
    ids = (*b.tx_ids[:-1], blocks[0].tx_ids[0])
    header = replace(b.header, merkle_root=merkle.root(ids))
    chain = [blocks[0], Block(header, b"", ids), *blocks[2:]]
    report = verify_chain(genesis, chain, wl.store())
    assert not report.ok
    assert (FindingKind.LINK_BROKEN, 3) in [(f.kind, f.height) for f in report.findings]
    assert (FindingKind.BLOCK_SIGNATURE_INVALID, 2) in [(f.kind, f.height) for f in report.findings]
    # forged at the tip instead, nothing above can tell: the finding says the tip is not
    # authenticated yet (a node never stores such a block: it builds its blocks from committed
    # batches; an auditor trusts the chain up to the highest signed block)
    t = blocks[-1]
    ids = (*t.tx_ids[:-1], blocks[0].tx_ids[0])
    forged = Block(replace(t.header, merkle_root=merkle.root(ids)), b"", ids)
    report = verify_chain(genesis, [*blocks[:-1], forged])
    assert [(f.kind, f.height) for f in report.findings] == [
        (FindingKind.DUPLICATE_TRANSACTION, len(blocks)),
        (FindingKind.UNSIGNED_TIP, len(blocks)),
    ]


def test_a_block_signed_by_the_wrong_blocker_vouches_for_nothing(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    b = blocks[-1]
    wrong = next(v for v in wl.validators if v.public not in (b.header.blocker,))
    chain = [*blocks[:-2], _unsigned(blocks[-2]), resign(b, wrong, blocker=wrong.public)]
    report = verify_chain(genesis, chain, wl.store())
    assert (FindingKind.UNSIGNED_TIP, len(blocks) - 1) in [
        (f.kind, f.height) for f in report.findings
    ]
    assert report.of_kind(FindingKind.WRONG_BLOCKER)
