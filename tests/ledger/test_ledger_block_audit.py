"""Blocks, genesis, wire forms, and the outside auditor working from published headers and IDs."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbench import codec, merkle
from medbench.crypto import Scheme, SigningKey
from medbench.ledger import (
    Block,
    FindingKind,
    Genesis,
    LedgerDecodeError,
    audit_publication,
    compare,
    publish,
    read_publication,
)
from medbench.ledger.audit import check_proof, prove
from medbench.workload.generator import WorkloadConfig, build_chain, generate

KEY = SigningKey.generate(Scheme.ED25519, b"B" * 32)
IDS = tuple(bytes([i]) * 32 for i in range(5))


@pytest.fixture(scope="module")
def chain():  # type: ignore[no-untyped-def]
    wl = generate(WorkloadConfig(institutions=4, patients=4, visits=12), seed=5)
    genesis, blocks = build_chain(wl, block_size=6)
    return wl, genesis, blocks


def test_block_make_sign_and_root() -> None:
    b = Block.make(1, bytes(32), KEY, IDS, 10)
    assert b.header.merkle_root == merkle.root(list(IDS))
    assert b.signature_ok(Scheme.ED25519) and b.root_ok()
    assert not b.signature_ok("sm2")
    assert not Block(b.header, b.signature[:-1], IDS).signature_ok(Scheme.ED25519)
    assert b.id == b.header.id and b.height == 1
    assert "h=1" in repr(b)


def test_block_wire_round_trip_and_count() -> None:
    b = Block.make(3, bytes(32), KEY, IDS, 10)
    assert Block.from_wire(b.to_wire()) == b
    fields = b.to_fields()
    fields[2] = 4  # the count must match the list
    with pytest.raises(LedgerDecodeError):
        Block.from_wire(codec.encode(fields))


@given(st.binary(max_size=300))
def test_block_hostile_bytes(data: bytes) -> None:
    for parse in (Block.from_wire, Genesis.from_wire, read_publication):
        with contextlib.suppress(LedgerDecodeError):
            parse(data)


@given(st.data())
def test_block_mutated_bytes(data: st.DataObject) -> None:
    wire = bytearray(Block.make(2, bytes(32), KEY, IDS, 10).to_wire())
    i = data.draw(st.integers(0, len(wire) - 1))
    wire[i] ^= data.draw(st.integers(1, 255))
    try:
        b = Block.from_wire(bytes(wire))
    except LedgerDecodeError:
        return
    # whatever still parses no longer verifies as the original block
    assert not (
        b.signature_ok(Scheme.ED25519) and b.root_ok() and b.tx_ids == IDS and b.height == 2
    )


def test_genesis_names_the_consortium() -> None:
    vals = tuple(SigningKey.generate(Scheme.ED25519, bytes([i]) * 32).public for i in range(4))
    g = Genesis("medical-chain", Scheme.ED25519, vals, b"\x11" * 32, 0)
    assert Genesis.from_wire(g.to_wire()) == g and g.height == 0
    assert replace(g, validators=vals[:3]).id != g.id
    assert replace(g, root_of_trust=b"\x22" * 32).id != g.id
    with pytest.raises(ValueError):
        Genesis("x", Scheme.ED25519, (vals[0], vals[0]), b"", 0)
    with pytest.raises(LedgerDecodeError):
        Genesis.from_wire(codec.encode(["medbench-genesis", "x", "sm2", list(vals), b"", 0]))


def test_auditor_accepts_published_chain(chain) -> None:  # type: ignore[no-untyped-def]
    _, genesis, blocks = chain
    data = publish(genesis, blocks)
    report = audit_publication(data, trusted_genesis_id=genesis.id)
    assert report.ok and report.blocks_checked == len(blocks) and report.transactions_checked == 0
    pub = read_publication(data)
    assert pub.genesis == genesis and list(pub.blocks) == blocks
    with pytest.raises(ValueError):
        audit_publication(data, trusted_genesis_id=bytes(32))


def test_auditor_finds_tampered_published_ids(chain) -> None:  # type: ignore[no-untyped-def]
    _, genesis, blocks = chain
    b = blocks[1]
    ids = list(b.tx_ids)
    ids[3] = bytes(32)
    tampered = [blocks[0], Block(b.header, b.signature, tuple(ids)), *blocks[2:]]
    report = audit_publication(publish(genesis, tampered))
    assert [(f.kind, f.height) for f in report.findings] == [(FindingKind.MERKLE_ROOT_MISMATCH, 2)]
    # comparing a node's copy with the publication pinpoints the position
    found = compare(tampered, blocks)
    assert [(f.kind, f.height, f.tx_index) for f in found] == [(FindingKind.ID_LIST_DIFFERS, 2, 3)]


def test_auditor_finds_reordered_and_truncated(chain) -> None:  # type: ignore[no-untyped-def]
    _, genesis, blocks = chain
    swapped = [blocks[1], blocks[0], *blocks[2:]]
    report = audit_publication(publish(genesis, swapped))
    assert {FindingKind.HEIGHT_MISMATCH, FindingKind.LINK_BROKEN} <= report.kinds()
    assert [f.height for f in compare(blocks[:-1], blocks)] == [len(blocks)]


def test_inclusion_proofs(chain) -> None:  # type: ignore[no-untyped-def]
    wl, _, blocks = chain
    headers = [b.header for b in blocks]
    tx = wl.transactions[9]
    proof = prove(blocks, tx.id)
    assert proof is not None and proof.height == 2
    assert check_proof(headers, tx, proof)
    assert not check_proof(headers, replace(tx, content=b"altered"), proof)
    assert not check_proof(headers, tx.id, replace(proof, height=99))
    assert not check_proof(headers, tx.id, replace(proof, index=proof.index + 1))
    assert prove(blocks, bytes(32)) is None


@given(st.data())
def test_mutated_publication_never_crashes_the_auditor(chain, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    _, genesis, blocks = chain
    wire = bytearray(publish(genesis, blocks[:3]))
    i = data.draw(st.integers(0, len(wire) - 1))
    wire[i] ^= data.draw(st.integers(1, 255))
    try:
        report = audit_publication(bytes(wire), trusted_genesis_id=genesis.id)
    except (LedgerDecodeError, ValueError):
        return
    assert not report.ok  # a change that still parses is always found
