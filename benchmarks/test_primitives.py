"""pytest-benchmark suite of the primitives: native core, pure-Python reference, pymerkle.

Every case records the exact amount of work in ``extra_info`` (messages, leaves, proof lengths,
votes, and the hash calls and compressions *measured* on one extra, untimed call: the native
module's own counters, or a counting wrapper around the reference's hash constructor);
``benchmarks/gate.py`` checks those counts and the native/reference/peer ratios against
``benchmarks/floors.json``. Cases marked ``full`` (2^20 leaves, pymerkle at 2^20) run only in
``make bench``; ``make bench-check`` skips them (floors.json lists them as ``full_cases``).

pymerkle 7 (``InmemoryTree``, and ``SqliteTree`` on an in-memory database) is the outside peer: it
builds the same RFC 9162 tree (its roots are asserted equal to ours). It is a stateful tree, so
its root case includes appending the leaves, and its proof cases run on a tree built beforehand.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator
from functools import cache
from types import ModuleType
from typing import Any

import pymerkle  # a hard import: a missing peer fails the run instead of skipping it quietly
import pytest

from benchmarks.gate import OPENSSL_KEY, openssl_ns_per_hash
from medbench import backend

SEED = 20240611
QUORUM_VOTES = 1_000_000


def _module(group: str, impl: str) -> ModuleType:
    if impl == "reference":
        return backend.reference(group)
    mod = backend.native(group)
    if mod is None:
        pytest.skip(f"native {group} not built")
    return mod


@cache
def _leaves(log2: int) -> list[bytes]:
    """2**log2 leaves of 32 bytes (transaction IDs), deterministic."""
    rng = random.Random(SEED + log2)
    return [rng.randbytes(32) for _ in range(1 << log2)]


@cache
def _native_root(log2: int) -> bytes:
    """The root of ``_leaves(log2)`` (checked against the reference in test_merkle_root)."""
    return _module("merkle", "native").root(_leaves(log2))  # type: ignore[no-any-return]


@contextlib.contextmanager
def _counting_sha256(module: ModuleType) -> Iterator[list[int]]:
    """Count every call of the reference ``module``'s hash constructor inside the block."""
    real = module._sha256
    calls = [0]

    def counted(data: bytes = b"") -> Any:
        calls[0] += 1
        return real(data)

    module._sha256 = counted
    try:
        yield calls
    finally:
        module._sha256 = real


def measure_work(module: ModuleType, fn: Callable[..., Any], *args: Any) -> dict[str, int]:
    """The hashing one untimed call of ``fn(*args)`` really does, as gate counts.

    ``hash_calls`` is the number of SHA-256 messages hashed; the native module also reports
    ``compressions`` (64-byte blocks). Nothing here is derived from the tree shape.
    """
    if module.__name__.startswith("medbench._native."):
        messages0, blocks0 = module._hash_counters()
        fn(*args)
        messages1, blocks1 = module._hash_counters()
        return {"hash_calls": messages1 - messages0, "compressions": blocks1 - blocks0}
    with _counting_sha256(module) as calls:
        fn(*args)
    return {"hash_calls": calls[0]}


def _pedantic(benchmark: Any, fn: Callable[..., Any], *args: Any, rounds: int) -> Any:
    return benchmark.pedantic(fn, args=args, rounds=rounds, iterations=1, warmup_rounds=0)


# --- SHA-256 batches -----------------------------------------------------------------------------


@contextlib.contextmanager
def _sha_variant(module: ModuleType, variant: str) -> Iterator[None]:
    """Run the block on one SHA-256 variant of a native module (hashing or merkle): SHA-NI x4
    (``default``), SHA-NI one message at a time (``x1``) or the portable C code."""
    if variant == "default":
        yield
        return
    if variant == "x1":
        if not module._shani_available():
            pytest.skip("this CPU has no SHA extensions")
        module._set_lanes(1)
    else:
        module._set_shani(False)
    try:
        yield
    finally:
        module._set_lanes(4)
        module._set_shani(not module._env_disables_shani())


SHA_VARIANTS = {  # case id -> (backend, variant)
    "native": ("native", "default"),
    "reference": ("reference", "default"),
    "native-portable": ("native", "portable"),
}


@pytest.mark.parametrize("case", list(SHA_VARIANTS))
def test_sha256_many(benchmark: Any, case: str) -> None:
    """2^16 messages of 65 bytes (the size of an inner Merkle node's input).

    ``native-portable`` runs the portable C code, so the gate measures what SHA-NI is worth.
    (What the four-lane interleaving is worth is measured on Merkle roots, where hashing is
    nearly all the time; here a third of it is CPython creating and freeing the digests.)
    """
    impl, variant = SHA_VARIANTS[case]
    rng = random.Random(SEED)
    messages = [rng.randbytes(65) for _ in range(1 << 16)]
    hashing = _module("hashing", impl)
    with _sha_variant(hashing, variant):
        digests = benchmark(hashing.sha256_many, messages)
        benchmark.extra_info["implementation"] = hashing.implementation()
        benchmark.extra_info.update(measure_work(hashing, hashing.sha256_many, messages))
    assert len(digests) == len(messages)
    assert digests[-1] == hashlib.sha256(messages[-1]).digest()
    benchmark.extra_info.update(messages=len(messages), message_bytes=65, hashes=len(digests))
    if case == "native":
        per_hash = openssl_ns_per_hash()
        if per_hash is not None:  # the gate reports a missing openssl and skips that ratio
            benchmark.extra_info[OPENSSL_KEY] = per_hash


# --- Merkle roots ---------------------------------------------------------------------------


def _pymerkle_inmemory_root(leaves: list[bytes]) -> bytes:
    return pymerkle.InmemoryTree.init_from_entries(leaves).get_root()  # type: ignore[no-any-return]


def _pymerkle_sqlite_root(leaves: list[bytes]) -> bytes:
    tree = pymerkle.SqliteTree(":memory:")
    try:
        tree.append_entries(leaves)
        return tree.get_root()  # type: ignore[no-any-return]
    finally:
        tree.close()


ROOT_ROUNDS = {  # (impl, log2) -> pedantic rounds for the slow cases; None: let pytest calibrate
    ("native", 16): None,
    ("native-sha-ni-x1", 16): None,  # SHA-NI one message at a time: what interleaving buys
    ("native-portable", 16): 5,
    ("reference", 16): 5,
    ("pymerkle-inmemory", 16): 2,
    ("pymerkle-sqlite", 16): 2,
    ("native", 20): 5,
    ("reference", 20): 3,
    ("pymerkle-inmemory", 20): 1,
    ("pymerkle-sqlite", 20): 1,
}


def _root_params() -> list[Any]:
    params = []
    for (impl, log2), _ in ROOT_ROUNDS.items():
        marks = [pytest.mark.full] if log2 == 20 else []
        params.append(pytest.param(impl, log2, id=f"{impl}-2^{log2}", marks=marks))
    return params


@pytest.mark.parametrize(("impl", "log2"), _root_params())
def test_merkle_root(benchmark: Any, impl: str, log2: int) -> None:
    """The root of 2^log2 leaves of 32 bytes."""
    leaves = _leaves(log2)
    want = _native_root(log2)
    fn: Callable[[list[bytes]], bytes]
    merkle = None
    if impl == "pymerkle-inmemory":
        fn = _pymerkle_inmemory_root
    elif impl == "pymerkle-sqlite":
        fn = _pymerkle_sqlite_root
    else:
        merkle = _module("merkle", impl.split("-", 1)[0])
        fn = merkle.root
    rounds = ROOT_ROUNDS[(impl, log2)]
    variant = impl.split("-")[-1] if impl.startswith("native-") else "default"
    with contextlib.ExitStack() as stack:
        if merkle is not None:
            stack.enter_context(_sha_variant(merkle, variant))
            benchmark.extra_info["implementation"] = merkle.implementation()
        got = (
            benchmark(fn, leaves)
            if rounds is None
            else _pedantic(benchmark, fn, leaves, rounds=rounds)
        )
        if merkle is not None:  # pymerkle appends leaf by leaf: its count is not comparable
            benchmark.extra_info.update(measure_work(merkle, merkle.root, leaves))
    assert got == want
    benchmark.extra_info["leaves"] = len(leaves)


# --- inclusion proofs --------------------------------------------------------------------------


@cache
def _pymerkle_tree(kind: str, log2: int) -> Any:
    leaves = _leaves(log2)
    if kind == "inmemory":
        return pymerkle.InmemoryTree.init_from_entries(leaves)
    tree = pymerkle.SqliteTree(":memory:")
    tree.append_entries(leaves)
    return tree


PROOF_INDEX = 0.37  # which leaf: a fixed fraction of the tree


@pytest.mark.parametrize("impl", ["native", "reference", "pymerkle-inmemory", "pymerkle-sqlite"])
def test_inclusion_proof(benchmark: Any, impl: str) -> None:
    """Generate the audit path of one leaf of 2^16 (native/reference: from the leaves)."""
    log2 = 16
    leaves = _leaves(log2)
    index = int(len(leaves) * PROOF_INDEX)
    if impl.startswith("pymerkle"):
        tree = _pymerkle_tree(impl.split("-")[1], log2)
        rounds = 3 if impl == "pymerkle-sqlite" else None
        fn = tree.prove_inclusion
        proof = (
            benchmark(fn, index + 1)
            if rounds is None
            else _pedantic(benchmark, fn, index + 1, rounds=rounds)
        )
        base = _module("merkle", "native").leaf_hash(leaves[index])
        pymerkle.verify_inclusion(base, _native_root(log2), proof)  # raises if invalid
        # pymerkle's path starts with the leaf's own hash.
        benchmark.extra_info["path_length"] = len(proof.path)
    else:
        merkle = _module("merkle", impl)
        fn = merkle.inclusion_proof
        rounds = None if impl == "native" else 5
        proof = (
            benchmark(fn, leaves, index)
            if rounds is None
            else _pedantic(benchmark, fn, leaves, index, rounds=rounds)
        )
        assert merkle.verify_inclusion(
            leaves[index], index, len(leaves), proof, merkle.root(leaves)
        )
        benchmark.extra_info["proof_length"] = len(proof)
        benchmark.extra_info.update(measure_work(merkle, fn, leaves, index))
    benchmark.extra_info["leaves"] = len(leaves)


@pytest.mark.parametrize(
    ("impl", "log2"),
    [
        pytest.param("native", 16, id="native-2^16"),
        pytest.param("reference", 16, id="reference-2^16"),
        pytest.param("pymerkle", 16, id="pymerkle-2^16"),
        pytest.param("native", 20, id="native-2^20"),
        pytest.param("reference", 20, id="reference-2^20"),
    ],
)
def test_verify_inclusion(benchmark: Any, impl: str, log2: int) -> None:
    """Verify one audit path against the root."""
    leaves = _leaves(log2)
    index = int(len(leaves) * PROOF_INDEX)
    native = _module("merkle", "native")
    root = _native_root(log2)
    proof = native.inclusion_proof(leaves, index)
    if impl == "pymerkle":
        pm_proof = _pymerkle_tree("inmemory", log2).prove_inclusion(index + 1)
        base = native.leaf_hash(leaves[index])
        benchmark(pymerkle.verify_inclusion, base, root, pm_proof)  # raises if invalid
        benchmark.extra_info["path_length"] = len(pm_proof.path)
    else:
        merkle = _module("merkle", impl)
        args = (leaves[index], index, len(leaves), proof, root)
        ok = benchmark(merkle.verify_inclusion, *args)
        assert ok is True
        benchmark.extra_info["proof_length"] = len(proof)
        benchmark.extra_info.update(measure_work(merkle, merkle.verify_inclusion, *args))
    benchmark.extra_info["leaves"] = len(leaves)


# --- tamper localisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("impl", "changed"),
    [
        pytest.param(impl, changed, id=f"{impl}-{changed}")
        for changed in (1, 100)
        for impl in ("native", "reference")
    ],
)
def test_diff(benchmark: Any, impl: str, changed: int) -> None:
    """Find ``changed`` altered leaves among 2^16 by comparing subtree hashes."""
    leaves = _leaves(16)
    rng = random.Random(SEED + changed)
    where = sorted(rng.sample(range(len(leaves)), changed))
    tampered = list(leaves)
    for i in where:
        tampered[i] = hashlib.sha256(tampered[i]).digest()
    merkle = _module("merkle", impl)
    rounds = None if impl == "native" else 3
    fn = merkle.diff
    found = (
        benchmark(fn, leaves, tampered)
        if rounds is None
        else _pedantic(benchmark, fn, leaves, tampered, rounds=rounds)
    )
    assert sorted(found) == where
    benchmark.extra_info.update(leaves=len(leaves), changed=changed, found=len(found))
    benchmark.extra_info.update(measure_work(merkle, fn, leaves, tampered))


# --- quorum votes ------------------------------------------------------------------------------


@cache
def _votes(n: int) -> list[tuple[int, int, int, bytes, int]]:
    """QUORUM_VOTES prepare votes: every replica votes once per sequence, one digest each."""
    sequences = QUORUM_VOTES // n
    rng = random.Random(SEED + n)
    digests = [rng.randbytes(32) for _ in range(sequences)]
    return [(1, 0, s, digests[s], v) for s in range(sequences) for v in range(n)]


def _feed(tracker: Any, votes: list[tuple[int, int, int, bytes, int]]) -> Any:
    add = tracker.add
    for phase, view, sequence, digest, voter in votes:
        add(phase, view, sequence, digest, voter)
    return tracker


@pytest.mark.parametrize(
    ("impl", "n"),
    [
        pytest.param(impl, n, id=f"{impl}-n={n}")
        for n in (4, 100)
        for impl in ("native", "reference")
    ],
)
def test_quorum_votes(benchmark: Any, impl: str, n: int) -> None:
    """10^6 votes into a fresh QuorumTracker(n)."""
    quorum = _module("quorum", impl)
    votes = _votes(n)
    tracker = benchmark.pedantic(
        _feed,
        setup=lambda: ((quorum.QuorumTracker(n), votes), {}),
        rounds=5,  # best of 5: a noisy shared box only ever adds time, and 3 was seen to mislead
        iterations=1,
        warmup_rounds=0,
    )
    reached = sum(tracker.reached(1, 0, s, d) for (_, _, s, d, v) in votes if v == 0)
    assert reached == len(tracker) == len(votes) // n
    benchmark.extra_info.update(votes=len(votes), n=n, sequences=len(tracker), reached=reached)
