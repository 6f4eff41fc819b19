"""The consortium's signature scheme is a parameter: build, verify and localise tampering under
Ed25519, ECDSA P-256 and RSA-PSS-3072 alike (docs/medical-chain.md §1.2, the algorithm "chosen per
consortium"), from the seeded workload generator."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from medbench.crypto import SIGNATURE_SIZE, IdentityPublic, Scheme
from medbench.ledger import Block, FindingKind, Kind, Problem, repair, verify_chain
from medbench.ledger.rsa_pool import POOL_SIZE, RsaPoolExhaustedError
from medbench.workload.generator import Workload, WorkloadConfig, build_chain, generate

CONFIG = WorkloadConfig(
    institutions=4, staff_per_institution=1, independent_workers=1, patients=4, visits=12
)


@pytest.fixture(scope="module", params=list(Scheme), ids=[str(s) for s in Scheme])
def world(request: pytest.FixtureRequest) -> tuple[Workload, object, list[Block]]:
    wl = generate(replace(CONFIG, scheme=request.param), seed=21)
    genesis, blocks = build_chain(wl, block_size=6)
    return wl, genesis, blocks


def test_every_signature_is_of_the_consortium_scheme(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    scheme = wl.config.scheme
    assert genesis.scheme is scheme
    assert {b.header.blocker for b in blocks} <= set(genesis.validators)
    assert all(len(b.signature) == SIGNATURE_SIZE[scheme] for b in blocks)
    for tx in wl.transactions:
        assert all(len(sig) == SIGNATURE_SIZE[scheme] for sig in tx.signatures)
    keys = [e.key for e in [*wl.institutions, *wl.staff, *wl.workers, *wl.patients]]
    keys += [v.public for v in wl.validators] + [wl.root_ca.public]
    assert len(set(keys)) == len(keys)  # every entity and validator has its own key


def test_clean_chain_verifies(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    report = verify_chain(genesis, blocks, wl.store(), policy=wl.policy)
    assert report.ok, [str(f) for f in report.findings]
    assert report.transactions_checked == len(wl.transactions)


def test_altered_body_and_forged_signature_are_localised(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    store = wl.store()
    altered = blocks[1].tx_ids[3]
    store[altered] = replace(store[altered], content=store[altered].content + b"!")
    forged = blocks[-1].tx_ids[0]
    tx = store[forged]
    mallory = wl.patients[0].identity.signing  # a key of the right scheme, the wrong signer
    store[forged] = replace(tx, signatures=(mallory.sign(forged), *tx.signatures[1:]))
    report = verify_chain(genesis, blocks, store, policy=wl.policy)
    got = {(f.kind, f.height, f.tx_index, f.tx_id) for f in report.findings}
    assert got == {
        (FindingKind.BODY_ALTERED, 2, 3, altered),
        (FindingKind.SIGNATURE_INVALID, len(blocks), 0, forged),
    }
    [sig] = report.of_kind(FindingKind.SIGNATURE_INVALID)
    assert [(p.index, p.problem) for p in sig.problems] == [(0, Problem.INVALID)]
    result = repair(genesis, blocks, store, [wl.store()], report=report, policy=wl.policy)
    assert set(result.restored) == {altered, forged}
    assert result.report is not None and result.report.ok


def test_any_flipped_byte_is_localised(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    rng = np.random.default_rng(4)
    for _ in range(6):  # a few positions per scheme: content, keys and signatures alike
        h = int(rng.integers(1, len(blocks) + 1))
        i = int(rng.integers(len(blocks[h - 1].tx_ids)))
        tid = blocks[h - 1].tx_ids[i]
        store = {k: tx.to_wire() for k, tx in wl.store().items()}
        wire = bytearray(store[tid])
        wire[int(rng.integers(len(wire)))] ^= 0x10
        store[tid] = bytes(wire)
        report = verify_chain(genesis, blocks, store, policy=wl.policy)
        assert {(f.height, f.tx_index, f.tx_id) for f in report.findings} == {(h, i, tid)}


def test_block_tampering_is_localised(world) -> None:  # type: ignore[no-untyped-def]
    wl, genesis, blocks = world
    b = blocks[2]
    bad_sig = Block(b.header, bytes(len(b.signature)), b.tx_ids)
    report = verify_chain(genesis, [*blocks[:2], bad_sig, *blocks[3:]], wl.store())
    assert [(f.kind, f.height) for f in report.findings] == [
        (FindingKind.BLOCK_SIGNATURE_INVALID, 3)
    ]
    last = blocks[-1]
    intruder = next(v for v in wl.validators if v.public != last.header.blocker)
    header = replace(last.header, blocker=intruder.public)
    wrong = Block(header, intruder.sign(header.id), last.tx_ids)
    report = verify_chain(genesis, [*blocks[:-1], wrong], wl.store())
    assert [(f.kind, f.height) for f in report.findings] == [
        (FindingKind.WRONG_BLOCKER, len(blocks))
    ]


def people(w: Workload) -> list[IdentityPublic]:
    return [e.identity.public for e in [*w.institutions, *w.staff, *w.workers, *w.patients]]


def test_same_seed_same_key_material_for_every_scheme(world) -> None:  # type: ignore[no-untyped-def]
    wl, _genesis, blocks = world
    again = generate(wl.config, seed=21)
    assert [v.public for v in again.validators] == [v.public for v in wl.validators]
    assert [(p.signing, p.encryption) for p in people(again)] == [
        (p.signing, p.encryption) for p in people(wl)
    ]
    same = [a.id == b.id for a, b in zip(again.transactions, wl.transactions, strict=True)]
    if wl.config.scheme is Scheme.RSA_PSS_3072:
        # PSS salts are random: a registration embeds the identity's binding *signature*, so its
        # ID varies between runs; every other transaction signs only deterministic content.
        assert [
            s for s, t in zip(same, wl.transactions, strict=True) if t.kind is not Kind.REGISTER
        ]
        assert all(
            s for s, t in zip(same, wl.transactions, strict=True) if t.kind is not Kind.REGISTER
        )
    else:
        assert all(same)
        assert [b.header.merkle_root for b in build_chain(again, block_size=6)[1]] == [
            b.header.merkle_root for b in blocks
        ]
    other = generate(wl.config, seed=22)
    assert other.institutions[0].key != wl.institutions[0].key


def test_rsa_population_is_capped_by_the_pool() -> None:
    too_many = replace(CONFIG, scheme=Scheme.RSA_PSS_3072, patients=POOL_SIZE)
    with pytest.raises(RsaPoolExhaustedError, match="pool holds"):
        generate(too_many, seed=0)
