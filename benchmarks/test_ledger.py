"""Benchmarks of signing, verification and chain validation (docs/medical-chain.md §1.2, §1.4).

Run: ``PYTHONPATH=. python -m pytest benchmarks/test_ledger.py --benchmark-only``; anything over
~10 s is marked ``full`` and skipped by ``-m "not full"``.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from medbench.crypto import Scheme, SigningKey, verify
from medbench.ledger import Block, Genesis, Kind, Transaction, expected_blocker, verify_chain
from medbench.ledger.audit import audit_publication, publish

MSG = bytes(range(32))  # signatures are over 32-byte IDs


@pytest.fixture(scope="module")
def keys() -> dict[Scheme, SigningKey]:
    """One key per scheme (RSA generated once)."""
    return {
        Scheme.ED25519: SigningKey.generate(Scheme.ED25519, b"k" * 32),
        Scheme.ECDSA_P256: SigningKey.generate(Scheme.ECDSA_P256, b"k" * 32),
        Scheme.RSA_PSS_3072: SigningKey.generate(Scheme.RSA_PSS_3072),
    }


@pytest.mark.parametrize("scheme", list(Scheme), ids=str)
def test_sign(benchmark, keys, scheme: Scheme) -> None:  # type: ignore[no-untyped-def]
    sig = benchmark(keys[scheme].sign, MSG)
    assert verify(scheme, keys[scheme].public, MSG, sig)


@pytest.mark.parametrize("scheme", list(Scheme), ids=str)
def test_verify(benchmark, keys, scheme: Scheme) -> None:  # type: ignore[no-untyped-def]
    k = keys[scheme]
    sig = k.sign(MSG)
    assert benchmark(verify, scheme, k.public, MSG, sig)


def test_verify_ed25519_cryptography(benchmark, keys) -> None:  # type: ignore[no-untyped-def]
    """The same Ed25519 check through cryptography/OpenSSL, key parsed from raw bytes each time
    as :func:`verify` does with PyNaCl."""
    k = keys[Scheme.ED25519]
    sig = k.sign(MSG)

    def check() -> bool:
        ed25519.Ed25519PublicKey.from_public_bytes(k.public).verify(sig, MSG)
        return True

    assert benchmark(check)


def test_sign_ed25519_cryptography(benchmark, keys) -> None:  # type: ignore[no-untyped-def]
    private = keys[Scheme.ED25519].to_cryptography()
    assert len(benchmark(private.sign, MSG)) == 64


def make_chain(n_blocks: int, per_block: int) -> tuple[Genesis, list[Block], dict]:
    """A consortium of 4 validators and ``n_blocks`` blocks of record transactions signed by a
    doctor and a hospital."""
    validators = [SigningKey.generate(Scheme.ED25519, bytes([i]) * 32) for i in range(4)]
    doctor = SigningKey.generate(Scheme.ED25519, b"d" * 32)
    hospital = SigningKey.generate(Scheme.ED25519, b"h" * 32)
    genesis = Genesis("bench", Scheme.ED25519, tuple(v.public for v in validators), b"ca", 0)
    by_key = {v.public: v for v in validators}
    store: dict[bytes, Transaction] = {}
    blocks: list[Block] = []
    prev, ts = genesis.id, 0
    for h in range(1, n_blocks + 1):
        ids = []
        for _ in range(per_block):
            ts += 1
            tx = Transaction.create(Kind.ADD, ts.to_bytes(8, "big") * 64, ts, [doctor, hospital])
            store[tx.id] = tx
            ids.append(tx.id)
        blocker = by_key[expected_blocker(h, genesis.validators, genesis.validators[0])]
        block = Block.make(h, prev, blocker, ids, ts)
        blocks.append(block)
        prev = block.id
    return genesis, blocks, store


@pytest.fixture(scope="module")
def chain_1000() -> tuple[Genesis, list[Block], dict]:
    """1000 blocks of 4 transactions (4000 transactions, 8000 transaction signatures)."""
    return make_chain(1000, 4)


def test_audit_headers_1000_blocks(benchmark, chain_1000) -> None:  # type: ignore[no-untyped-def]
    """The outside auditor's check of 1000 published blocks (headers + IDs, no bodies)."""
    genesis, blocks, _ = chain_1000
    report = benchmark(verify_chain, genesis, blocks)
    assert report.ok and report.blocks_checked == 1000


def test_audit_publication_bytes_1000_blocks(benchmark, chain_1000) -> None:  # type: ignore[no-untyped-def]
    """Decoding a hostile-safe publication of 1000 blocks and auditing it."""
    genesis, blocks, _ = chain_1000
    data = publish(genesis, blocks)
    assert benchmark(audit_publication, data).ok


def test_verify_chain_bodies_no_signatures_1000_blocks(benchmark, chain_1000) -> None:  # type: ignore[no-untyped-def]
    """1000 blocks with body recomputation (IDs, Merkle localisation), signatures skipped."""
    genesis, blocks, store = chain_1000
    report = benchmark(verify_chain, genesis, blocks, store, check_signatures=False)
    assert report.ok and report.transactions_checked == 4000


def test_verify_chain_full_1000_blocks(benchmark, chain_1000) -> None:  # type: ignore[no-untyped-def]
    """1000 blocks, every body and every signature (8000 Ed25519 verifications per round)."""
    genesis, blocks, store = chain_1000
    report = benchmark.pedantic(verify_chain, (genesis, blocks, store), rounds=3, iterations=1)
    assert report.ok and report.signatures_checked == 8000


@pytest.mark.full
def test_verify_chain_full_10000_blocks(benchmark) -> None:  # type: ignore[no-untyped-def]
    """10 000 blocks of 4 transactions, everything checked (80 000 signatures; tens of seconds
    including building the chain)."""
    genesis, blocks, store = make_chain(10_000, 4)
    report = benchmark.pedantic(verify_chain, (genesis, blocks, store), rounds=1, iterations=1)
    assert report.ok and report.signatures_checked == 80_000
