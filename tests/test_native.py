"""The native core against its pure-Python twin: both SHA-256 paths, Merkle trees, quorums.

Runs only where the extension is built (CI requires it: tests/test_backend.py fails otherwise).
Every SHA-256 answer is checked on the SHA-NI path and on the portable path, switched in-process
with ``_set_shani``; the differential tests drive native and reference with the same inputs.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
import pickle
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbench.reference import hashing as ref_hashing
from medbench.reference import merkle as ref_merkle
from medbench.reference import quorum as ref_quorum

nat_hashing = pytest.importorskip("medbench._native.hashing", reason="native core not built")
nat_merkle = pytest.importorskip("medbench._native.merkle", reason="native core not built")
nat_quorum = pytest.importorskip("medbench._native.quorum", reason="native core not built")

SHA_MODULES = (nat_hashing, nat_merkle)

FIPS_EXAMPLES = [
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
        b"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    ),
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]

# Certificate Transparency test vectors (RFC 6962 tree), as in tests/test_merkle.py.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

SHANI = nat_hashing._shani_available()


def _cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


# --- which path runs ------------------------------------------------------------------------------


def test_sha_ni_is_used_when_the_cpu_has_it() -> None:
    flags = _cpu_flags()
    if flags:  # Linux: the kernel's view of CPUID must agree with ours
        assert ("sha_ni" in flags) == SHANI
    for m in SHA_MODULES:
        assert m._set_shani(True) == SHANI
        assert m.implementation() == ("native sha-ni x4" if SHANI else "native portable")
        assert m._set_shani(False) is False
        assert m.implementation() == "native portable"
        m._set_shani(True)


def test_env_var_disables_sha_ni_at_import() -> None:
    code = (
        "from medbench._native import hashing, merkle; "
        "print(hashing.implementation()); print(merkle.implementation()); "
        "print(hashing.sha256(b'abc').hex())"
    )
    env = dict(os.environ, MEDBENCH_NO_SHANI="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["native", "portable", "native", "portable", FIPS_EXAMPLES[0][1]]


# --- SHA-256 known answers and differential tests on both paths -----------------------------------


@pytest.mark.parametrize(("message", "digest"), FIPS_EXAMPLES, ids=["abc", "448", "896", "", "1M"])
def test_fips_180_4_examples(sha_path: str, message: bytes, digest: str) -> None:
    assert nat_hashing.sha256(message).hex() == digest
    # Alone, in an equal-length batch (lockstep lanes) and in a mixed batch (lane scheduler).
    assert [d.hex() for d in nat_hashing.sha256_many([message] * 5)] == [digest] * 5
    mixed = nat_hashing.sha256_many([b"x", message, b"yz" * 40, message, b""])
    assert [mixed[1].hex(), mixed[3].hex()] == [digest, digest]


def test_every_length_across_block_boundaries(sha_path: str) -> None:
    messages = [bytes((i * 7 + n) % 256 for i in range(n)) for n in range(300)]
    want = [hashlib.sha256(m).digest() for m in messages]
    assert nat_hashing.sha256_many(messages) == want
    assert [nat_hashing.sha256(m) for m in messages] == want
    # Equal-length batches (lockstep lanes), 1..9 messages so every lane count occurs; 65 bytes
    # is the precomputed-last-block case.
    for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 128):
        for count in range(1, 10):
            same = [bytes([(k * 37 + j) % 256 for j in range(n)]) for k in range(count)]
            assert nat_hashing.sha256_many(same) == [hashlib.sha256(m).digest() for m in same]


def test_bytes_like_inputs_and_type_errors() -> None:
    data = b"medical chain"
    want = hashlib.sha256(data).digest()
    assert nat_hashing.sha256(bytearray(data)) == want
    assert nat_hashing.sha256(memoryview(data)) == want
    assert nat_hashing.sha256_many([bytearray(data), memoryview(data), data]) == [want] * 3
    assert nat_hashing.sha256_many(iter([data])) == [want]
    with pytest.raises(TypeError):
        nat_hashing.sha256("text")
    with pytest.raises(TypeError):
        nat_hashing.sha256_many([data, 7])
    assert nat_hashing.DIGEST_SIZE == ref_hashing.DIGEST_SIZE == 32


class _Sub(bytes):
    pass


def test_sha256_many_holds_and_releases_every_reference() -> None:
    """Across chunks (2048 messages each) and on a type error mid-chunk: no leak, no loss."""
    data = [bytes([i % 256]) * (i % 70) for i in range(5000)]
    before = [sys.getrefcount(m) for m in data]
    assert nat_hashing.sha256_many(data) == ref_hashing.sha256_many(data)
    mixed = [*data[:2100], _Sub(b"sub"), bytearray(b"ba"), memoryview(b"mv"), *data[2100:]]
    assert nat_hashing.sha256_many(mixed) == ref_hashing.sha256_many([bytes(m) for m in mixed])
    del mixed
    bad = [*data[:3000], 7, *data[3000:]]
    with pytest.raises(TypeError):
        nat_hashing.sha256_many(bad)
    del bad
    assert [sys.getrefcount(m) for m in data] == before
    assert nat_hashing.sha256_many(tuple(data[:10])) == ref_hashing.sha256_many(data[:10])


def test_sha256_many_survives_a_list_mutated_meanwhile() -> None:
    """Another thread resizes the list while chunks hash without the GIL: no crash, and every
    digest is the hash of a message that was in the list."""
    messages = [i.to_bytes(8, "big") for i in range(40_000)]
    known = {hashlib.sha256(m).digest() for m in messages}
    known.add(hashlib.sha256(b"late").digest())
    stop = threading.Event()

    def mutate() -> None:
        for j in range(200_000):  # bounded
            if stop.is_set():
                return
            k = (j * 7919) % 40_000
            # An equal copy in place of the original: the list's old message object is freed.
            messages[k] = bytes(bytearray(messages[k]))
            messages.append(b"late")  # and the list grows and shrinks by one
            messages.pop()

    t = threading.Thread(target=mutate)
    t.start()
    try:
        for _ in range(20):
            got = nat_hashing.sha256_many(messages)
            assert 40_000 <= len(got) <= 40_001
            assert set(got) <= known
    finally:
        stop.set()
        t.join(timeout=60)


batches = st.one_of(
    st.lists(st.binary(max_size=300), max_size=40),
    st.integers(0, 300).flatmap(
        lambda n: st.lists(st.binary(min_size=n, max_size=n), min_size=2, max_size=20)
    ),
)


@given(messages=batches)
def test_sha256_many_equals_hashlib(sha_path: str, messages: list[bytes]) -> None:
    assert nat_hashing.sha256_many(messages) == ref_hashing.sha256_many(messages)


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_every_lane_count_gives_the_same_bytes(lanes: int) -> None:
    """The interleaving width (a benchmark knob) changes speed, never bytes."""
    if not SHANI:
        pytest.skip("this CPU has no SHA extensions")
    mixed = [bytes((n * 5 + j) % 256 for j in range(n)) for n in range(0, 300, 7)]
    equal = [bytes([k]) * 65 for k in range(11)]
    leaves = [bytes([k % 256]) * (k % 90) for k in range(4099)]
    try:
        for m in SHA_MODULES:
            assert m._set_lanes(lanes) == lanes
            assert m.implementation() == f"native sha-ni x{lanes}"
        for batch in (mixed, equal, equal[:1], mixed[:3]):
            assert nat_hashing.sha256_many(batch) == ref_hashing.sha256_many(batch)
        assert nat_merkle.root(leaves) == ref_merkle.root(leaves)
        assert nat_merkle.levels(leaves[:70]) == ref_merkle.levels(leaves[:70])
    finally:
        for m in SHA_MODULES:
            m._set_lanes(4)
    assert nat_hashing._set_lanes(3) == 2  # rounded down to a supported width
    assert nat_hashing._set_lanes(0) == 1
    nat_hashing._set_lanes(4)


# --- Merkle: known answers on both paths, differential tests --------------------------------------


@pytest.mark.parametrize("size", sorted(CT_ROOTS))
def test_ct_known_roots(sha_path: str, size: int) -> None:
    leaves = CT_LEAVES[:size]
    assert nat_merkle.root(leaves).hex() == CT_ROOTS[size]
    levels = nat_merkle.levels(leaves)
    assert levels[-1] == [bytes.fromhex(CT_ROOTS[size])]
    for i in range(size):
        proof = nat_merkle.inclusion_proof(leaves, i)
        assert nat_merkle.verify_inclusion(leaves[i], i, size, proof, levels[-1][0])


def test_leaf_and_node_hash(sha_path: str) -> None:
    a, b = bytes(range(32)), bytes(range(32, 64))
    assert nat_merkle.leaf_hash(b"tx") == hashlib.sha256(b"\x00tx").digest()
    assert nat_merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    # Not 32-byte children: hashed as given, like the reference.
    assert nat_merkle.node_hash(b"l", bytearray(b"rr")) == ref_merkle.node_hash(b"l", b"rr")


def _interesting_sizes() -> list[int]:
    sizes = {0, 1, 2, 3}
    for k in range(2, 14):  # up to 2**13: crosses the 4096-leaf chunks of root()
        sizes |= {(1 << k) - 1, 1 << k, (1 << k) + 1}
    return sorted(sizes)


def _long_leaf(i: int) -> bytes:
    """Leaf ``i``: 0..300 bytes, so prefixed leaves end on every side of the block boundaries."""
    return bytes((i * 31 + j) % 256 for j in range((i * 37) % 301))


@pytest.mark.parametrize("size", _interesting_sizes())
def test_tree_shapes_match_reference(sha_path: str, size: int) -> None:
    leaves = [_long_leaf(i) for i in range(size)]
    assert nat_merkle.root(leaves) == ref_merkle.root(leaves)
    assert nat_merkle.levels(leaves) == ref_merkle.levels(leaves)
    for i in {0, size // 3, size // 2, size - 1} if size else set():
        proof = nat_merkle.inclusion_proof(leaves, i)
        assert proof == ref_merkle.inclusion_proof(leaves, i)
    for m in {0, 1, size // 2, size - 1, size} if size else {0}:
        if 0 <= m <= size:
            assert nat_merkle.consistency_proof(leaves, m) == ref_merkle.consistency_proof(
                leaves, m
            )


@given(st.lists(st.binary(max_size=300), max_size=300), st.data())
def test_merkle_differential(sha_path: str, leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    root = nat_merkle.root(leaves)
    assert root == ref_merkle.root(leaves)
    assert nat_merkle.levels(leaves) == ref_merkle.levels(leaves)
    if n:
        i = data.draw(st.integers(0, n - 1))
        proof = nat_merkle.inclusion_proof(leaves, i)
        assert proof == ref_merkle.inclusion_proof(leaves, i)
        assert nat_merkle.verify_inclusion(leaves[i], i, n, proof, root)
    m = data.draw(st.integers(0, n))
    cproof = nat_merkle.consistency_proof(leaves, m)
    assert cproof == ref_merkle.consistency_proof(leaves, m)
    old_root = nat_merkle.root(leaves[:m])
    assert nat_merkle.verify_consistency(m, n, old_root, root, cproof)
    other = list(leaves)
    for j in data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=5)) if n else []:
        other[j] = other[j] + b"!"
    other += data.draw(st.lists(st.binary(max_size=3), max_size=3))
    assert nat_merkle.diff(leaves, other) == ref_merkle.diff(leaves, other)
    assert nat_merkle.diff(other, leaves) == ref_merkle.diff(other, leaves)


def test_bytes_like_leaves_across_chunks(sha_path: str) -> None:
    leaves = [
        bytearray(b"x" * (i % 301)) if i % 3 else memoryview(b"y" * (i % 9)) for i in range(9000)
    ]
    plain = [bytes(leaf) for leaf in leaves]
    assert nat_merkle.root(leaves) == ref_merkle.root(plain)
    assert nat_merkle.levels(leaves[:100]) == ref_merkle.levels(plain[:100])
    with pytest.raises(TypeError):
        nat_merkle.root([b"a", 5])
    with pytest.raises(TypeError):
        ref_merkle.root([b"a", 5])  # type: ignore[list-item]


def test_root_reads_the_callers_list_without_changing_or_leaking_it() -> None:
    leaves = [bytes([i % 256]) * (i % 50) for i in range(9000)]  # three 4096-leaf chunks
    before = [sys.getrefcount(x) for x in leaves]
    assert nat_merkle.root(leaves) == ref_merkle.root(leaves)
    mixed: list[object] = [*leaves[:5000], bytearray(b"ba"), memoryview(b"mv"), *leaves[5000:]]
    plain = [bytes(x) for x in mixed]  # type: ignore[call-overload]
    assert nat_merkle.root(mixed) == ref_merkle.root(plain)
    assert type(mixed[5000]) is bytearray and type(mixed[5001]) is memoryview  # not replaced
    del mixed, plain
    bad: list[object] = [*leaves[:6000], 7, *leaves[6000:]]
    with pytest.raises(TypeError):
        nat_merkle.root(bad)
    del bad
    assert [sys.getrefcount(x) for x in leaves] == before


def test_root_survives_a_list_mutated_meanwhile() -> None:
    """Another thread swaps leaves (freeing the old objects) and resizes the list while chunks
    hash without the GIL: the root is still right (root() hashes a private snapshot)."""
    leaves = [i.to_bytes(32, "big") for i in range(1 << 15)]
    # The snapshot may catch the list between the mutator's append and pop.
    want = {ref_merkle.root(leaves), ref_merkle.root([*leaves, b"x" * 32])}
    stop = threading.Event()

    def mutate() -> None:
        for j in range(200_000):  # bounded
            if stop.is_set():
                return
            k = (j * 7919) % len(leaves)
            leaves[k] = bytes(bytearray(leaves[k]))  # equal value, new object: the old is freed
            if j % 3 == 0:
                leaves.append(b"x" * 32)
                leaves.pop()

    t = threading.Thread(target=mutate)
    t.start()
    try:
        for _ in range(20):
            assert nat_merkle.root(leaves) in want
    finally:
        stop.set()
        t.join(timeout=60)


def test_bad_indices_give_the_reference_errors() -> None:
    calls: tuple[Callable[[ModuleType], object], ...] = (
        lambda m: m.inclusion_proof(CT_LEAVES[:3], 3),
        lambda m: m.inclusion_proof(CT_LEAVES[:3], -1),
        lambda m: m.inclusion_proof([], 0),
        lambda m: m.consistency_proof(CT_LEAVES[:3], 4),
        lambda m: m.consistency_proof(CT_LEAVES[:3], -1),
    )
    for call in calls:
        with pytest.raises(ValueError) as want:
            call(ref_merkle)
        with pytest.raises(ValueError) as got:
            call(nat_merkle)
        assert str(got.value) == str(want.value)


# Junk of every kind a peer could send in place of a hash, an integer or a proof.
junk = st.sampled_from([None, 5, 3.5, "x" * 32, object(), [b"\x00" * 32], memoryview(b"m" * 32)])
hashes = st.one_of(
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=40),
    st.binary(min_size=32, max_size=32).map(bytearray),
    junk,
)
ints = st.one_of(st.integers(-3, 40), st.integers(-(2**70), 2**70), st.booleans(), junk)
proofs = st.one_of(st.lists(hashes, max_size=8), junk, st.binary(max_size=40))
leaves = st.one_of(st.binary(max_size=8), st.binary(max_size=8).map(bytearray), junk)


@given(leaves, ints, ints, proofs, hashes)
def test_verify_inclusion_never_raises(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    got = nat_merkle.verify_inclusion(leaf, index, size, proof, root)
    assert got is ref_merkle.verify_inclusion(leaf, index, size, proof, root)


@given(ints, ints, hashes, hashes, proofs)
def test_verify_consistency_never_raises(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    got = nat_merkle.verify_consistency(old, new, old_root, new_root, proof)
    assert got is ref_merkle.verify_consistency(old, new, old_root, new_root, proof)


# --- the GIL is released while batches hash -------------------------------------------------------


def _runs_concurrently(work: object) -> bool:
    """True if the main thread ran while another thread was inside ``work()``.

    With a long switch interval a thread that keeps the GIL is never pre-empted, so the main
    thread can only see ``inside`` set if ``work`` released the GIL.
    """
    state = {"inside": False, "seen": 0}
    started, finished = threading.Event(), threading.Event()

    def worker() -> None:
        started.set()
        state["inside"] = True
        work()  # type: ignore[operator]
        state["inside"] = False
        finished.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(5.0)
    try:
        t = threading.Thread(target=worker)
        t.start()
        started.wait()
        for _ in range(100_000):  # bounded: stop spinning once the worker is out
            if not state["inside"]:
                break
            state["seen"] += 1
        finished.wait(timeout=60)
        t.join(timeout=60)
    finally:
        sys.setswitchinterval(old)
    return state["seen"] > 0


def test_sha256_many_releases_the_gil() -> None:
    messages = [i.to_bytes(64, "big") for i in range(200_000)]
    # A few attempts: on a crowded CI box the OS may not schedule the main thread in time.
    assert any(_runs_concurrently(lambda: nat_hashing.sha256_many(messages)) for _ in range(3))


def test_merkle_root_releases_the_gil() -> None:
    leaves = [i.to_bytes(32, "big") for i in range(1 << 17)]
    assert any(_runs_concurrently(lambda: nat_merkle.root(leaves)) for _ in range(3))


def test_the_concurrency_probe_detects_a_gil_holder() -> None:
    # The control: pure-Python work holds the GIL, so the probe must say False.
    messages = [i.to_bytes(64, "big") for i in range(50_000)]
    assert not _runs_concurrently(lambda: ref_hashing.sha256_many(messages))


# --- quorum: native against the reference, including errors --------------------------------------

BIG = 2**70
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.sampled_from([0, 1, 2, BIG]),
            st.integers(0, 2),
            st.sampled_from([0, 1, 2, 3, 5, BIG]),
            # an equal digest that is a different object exercises the by-value comparison
            st.sampled_from([b"aa", b"bb", b"cc", bytes(bytearray(b"aa"))]),
            st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, -1, BIG]),
        ),
        st.tuples(st.just("forget"), st.integers(0, 6)),
        st.tuples(
            st.just("query"),
            st.integers(0, 2),
            st.integers(0, 2),
            st.integers(0, 5),
            st.sampled_from([b"aa", b"bb", b"zz"]),
        ),
    ),
    max_size=200,
)


def _apply(tracker: object, op: tuple) -> object:  # type: ignore[type-arg]
    t: ref_quorum.QuorumTracker = tracker  # type: ignore[assignment]
    try:
        if op[0] == "add":
            return t.add(*op[1:])
        if op[0] == "forget":
            t.forget_below(op[1])
            return (len(t), t.low_watermark)
        p, v, s, d = op[1:]
        return (t.count(p, v, s, d), t.voters(p, v, s, d), t.reached(p, v, s, d), len(t))
    except ValueError as exc:
        return ("ValueError", str(exc))


@given(ops, st.sampled_from([1, 4, 7]))
def test_quorum_matches_reference(stream: list[tuple], n: int) -> None:  # type: ignore[type-arg]
    thresholds = {2: min(n, 2)}
    ref = ref_quorum.QuorumTracker(n, thresholds)
    nat = nat_quorum.QuorumTracker(n, thresholds)
    for op in stream:
        assert _apply(nat, op) == _apply(ref, op), op
    assert nat.take_evidence() == ref.take_evidence()
    assert nat.take_evidence() == []


@given(ops)
def test_quorum_survives_pickle_and_copy(stream: list[tuple]) -> None:  # type: ignore[type-arg]
    ref = ref_quorum.QuorumTracker(4)
    nat = nat_quorum.QuorumTracker(4)
    half = len(stream) // 2
    for op in stream[:half]:
        _apply(ref, op)
        _apply(nat, op)
    for clone in (pickle.loads(pickle.dumps(nat)), copy.deepcopy(nat)):
        twin = copy.deepcopy(ref)
        assert (len(clone), clone.low_watermark) == (len(twin), twin.low_watermark)
        for op in stream[half:]:
            assert _apply(clone, op) == _apply(twin, op), op
        assert clone.take_evidence() == twin.take_evidence()


def test_quorum_shares_the_reference_types() -> None:
    assert nat_quorum.Status is ref_quorum.Status
    assert nat_quorum.Evidence is ref_quorum.Evidence
    t = nat_quorum.QuorumTracker(4)
    assert isinstance(t.add(1, 0, 1, b"d", 0), ref_quorum.Status)
    assert (t.n, t.f, t.strong, t.weak, t.low_watermark) == (4, 1, 3, 2, 0)
    with pytest.raises(ValueError, match="at least one replica"):
        nat_quorum.QuorumTracker(0)


def test_quorum_equivocation_with_many_digests_per_round() -> None:
    S = ref_quorum.Status
    n = 100
    t = nat_quorum.QuorumTracker(n)
    digests = [bytes([k]) * 32 for k in range(n)]
    assert [t.add(1, 0, 7, digests[v], v) for v in range(n)] == [S.PENDING] * n
    assert all(t.count(1, 0, 7, d) == 1 for d in digests)
    assert t.add(1, 0, 7, digests[0], 99) == S.CONFLICT
    (ev,) = t.take_evidence()
    assert (ev.voter, ev.first_digest, ev.second_digest) == (99, digests[99], digests[0])


def _modules() -> list[ModuleType]:
    return [nat_hashing, nat_merkle, nat_quorum]


def _doc(obj: object, qualname: str) -> str:
    """``obj``'s docstring without the signature line Cython's ``embedsignature`` puts first."""
    doc = getattr(obj, "__doc__", None) or ""
    first, _, rest = doc.partition("\n")
    if re.match(rf"{re.escape(qualname)}\(.*\)", first):
        doc = rest
    return inspect.cleandoc(doc)


def _embedded_parameters(obj: object, qualname: str) -> list[str]:
    """Parameter names from Cython's embedded signature line (``self`` left out)."""
    first = (getattr(obj, "__doc__", None) or "").partition("\n")[0]
    match = re.match(rf"{re.escape(qualname)}\((.*)\)", first)
    assert match, f"no embedded signature on {qualname}: {first!r}"
    names = [p.split("=")[0].strip().lstrip("*") for p in match.group(1).split(",")]
    return [n for n in names if n and n != "self"]


def _twins() -> Iterator[tuple[str, object, object]]:
    """(qualified name, reference object, native object) for every public function, class and
    method that the reference defines and the native module implements itself."""
    pairs = ((ref_hashing, nat_hashing), (ref_merkle, nat_merkle), (ref_quorum, nat_quorum))
    for ref, nat in pairs:
        for name, obj in vars(ref).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != ref.__name__:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            twin = getattr(nat, name)
            if twin is obj:  # shared, not reimplemented (Status, Evidence, max_faulty, ...)
                continue
            yield f"{ref.__name__}.{name}", obj, twin
            if inspect.isclass(obj):
                for meth, fn in vars(obj).items():
                    if not meth.startswith("_") and inspect.isfunction(fn):
                        yield f"{ref.__name__}.{name}.{meth}", fn, getattr(twin, meth)


def test_native_docstrings_and_parameters_equal_the_reference() -> None:
    seen = 0
    for qualname, ref_obj, nat_obj in _twins():
        short = ref_obj.__qualname__  # type: ignore[attr-defined]  # e.g. "QuorumTracker.add"
        assert _doc(nat_obj, short) == _doc(ref_obj, short), qualname
        assert _doc(ref_obj, short), f"{qualname} has no docstring"
        want = [p for p in inspect.signature(ref_obj).parameters if p != "self"]  # type: ignore[arg-type]
        assert _embedded_parameters(nat_obj, short) == want, qualname
        seen += 1
    assert seen >= 20  # every twin was compared, not none


def test_every_native_module_documents_its_api() -> None:
    for mod in _modules():
        assert mod.__doc__
        for name in dir(mod):
            obj = getattr(mod, name)
            if callable(obj) and not name.startswith("_") and not isinstance(obj, type):
                assert obj.__doc__, f"{mod.__name__}.{name}"
