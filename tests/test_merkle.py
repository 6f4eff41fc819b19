"""RFC 9162 / RFC 6962 Merkle trees on both backends: known answers, proofs, tamper diffs.

The known answers are the test vectors published with the Certificate Transparency reference
implementation (eight leaves of 0 to 16 bytes).
"""

from __future__ import annotations

import hashlib
from types import ModuleType

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

LEAVES = [
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
ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
INCLUSION = [  # (index, size, path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


def rfc_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1: recursive split at the largest power of two < n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + rfc_root(leaves[:k]) + rfc_root(leaves[k:])).digest()


def _split(n: int) -> int:
    """RFC 9162 §2.1.1: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, written out recursively as the RFC states it."""
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*rfc_path(m, leaves[:k]), rfc_root(leaves[k:])]
    return [*rfc_path(m - k, leaves[k:]), rfc_root(leaves[:k])]


def rfc_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if complete else [rfc_root(leaves)]
    k = _split(n)
    if m <= k:
        return [*rfc_subproof(m, leaves[:k], complete), rfc_root(leaves[k:])]
    return [*rfc_subproof(m - k, leaves[k:], False), rfc_root(leaves[:k])]


def rfc_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true); empty for m = 0 (nothing to prove)."""
    return [] if m == 0 else rfc_subproof(m, leaves, True)


# Leaves of 0..300 bytes: with the 0x00 prefix they end on both sides of the 55/56 and 64-byte
# padding boundaries and span up to five SHA-256 blocks.
LONG_LEAVES = [
    bytes((7 * i + j) % 256 for j in n)
    for i, n in enumerate(
        [range(55), range(300), range(63), range(0), range(64), range(119), range(56), range(128)]
    )
]


def test_the_rfc_oracle_reproduces_the_published_vectors() -> None:
    """The test's own RFC functions agree with the Certificate Transparency vectors."""
    for size, want in ROOTS.items():
        assert rfc_root(LEAVES[:size]).hex() == want
    for index, size, path in INCLUSION:
        assert [p.hex() for p in rfc_path(index, LEAVES[:size])] == path
    for old, new, path in CONSISTENCY:
        assert [p.hex() for p in rfc_proof(old, LEAVES[:new])] == path


@pytest.mark.parametrize("leaf_set", ["ct", "long"])
@pytest.mark.parametrize("size", range(1, 9))
def test_every_inclusion_proof_of_sizes_1_to_8(
    merkle_impl: ModuleType, size: int, leaf_set: str
) -> None:
    leaves = (LEAVES if leaf_set == "ct" else LONG_LEAVES)[:size]
    root = rfc_root(leaves)
    assert merkle_impl.root(leaves) == root
    for index in range(size):
        want = rfc_path(index, leaves)
        assert merkle_impl.inclusion_proof(leaves, index) == want, index
        assert merkle_impl.verify_inclusion(leaves[index], index, size, want, root) is True
        for other in range(size):  # the path of one leaf proves no other leaf there
            if leaves[other] != leaves[index]:
                assert not merkle_impl.verify_inclusion(leaves[other], index, size, want, root)


@pytest.mark.parametrize("leaf_set", ["ct", "long"])
@pytest.mark.parametrize("size", range(1, 9))
def test_every_consistency_proof_of_sizes_1_to_8(
    merkle_impl: ModuleType, size: int, leaf_set: str
) -> None:
    leaves = (LEAVES if leaf_set == "ct" else LONG_LEAVES)[:size]
    new_root = rfc_root(leaves)
    for m in range(size + 1):
        want = rfc_proof(m, leaves)
        assert merkle_impl.consistency_proof(leaves, m) == want, m
        old_root = rfc_root(leaves[:m])
        assert merkle_impl.verify_consistency(m, size, old_root, new_root, want) is True
        if 0 < m < size:  # a different old tree is not a prefix
            forged = rfc_root([b"forged", *leaves[1:m]])
            assert not merkle_impl.verify_consistency(m, size, forged, new_root, want)


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_known_roots(merkle_impl: ModuleType, size: int) -> None:
    assert merkle_impl.root(LEAVES[:size]).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_known_inclusion_proofs(
    merkle_impl: ModuleType, index: int, size: int, path: list[str]
) -> None:
    proof = merkle_impl.inclusion_proof(LEAVES[:size], index)
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(ROOTS[size])
    assert merkle_impl.verify_inclusion(LEAVES[index], index, size, proof, root)


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_known_consistency_proofs(
    merkle_impl: ModuleType, old: int, new: int, path: list[str]
) -> None:
    proof = merkle_impl.consistency_proof(LEAVES[:new], old)
    assert [p.hex() for p in proof] == path
    assert merkle_impl.verify_consistency(
        old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), proof
    )


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100])
def test_root_matches_the_rfc_recursion(merkle_impl: ModuleType, size: int) -> None:
    leaves = [i.to_bytes(4, "big") * (i % 5) for i in range(size)]
    assert merkle_impl.root(leaves) == rfc_root(leaves)


def test_bad_indices_are_clear_errors(merkle_impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="out of range"):
        merkle_impl.inclusion_proof(LEAVES[:3], 3)
    with pytest.raises(ValueError, match="out of range"):
        merkle_impl.inclusion_proof([], 0)
    with pytest.raises(ValueError, match="out of range"):
        merkle_impl.consistency_proof(LEAVES[:3], 4)


def test_malformed_proofs_are_false_not_errors(merkle_impl: ModuleType) -> None:
    root = bytes.fromhex(ROOTS[8])
    proof = merkle_impl.inclusion_proof(LEAVES, 3)
    v = merkle_impl.verify_inclusion
    assert not v(LEAVES[3], 3, 8, proof[:-1], root)
    assert not v(LEAVES[3], 3, 8, [*proof, proof[0]], root)
    assert not v(LEAVES[3], 8, 8, proof, root)
    assert not v(LEAVES[3], -1, 8, proof, root)
    assert not v(LEAVES[3], 3, 8, [p[:31] for p in proof], root)
    assert not v(LEAVES[3], 3, 8, proof, root[:16])
    assert not v(LEAVES[3], 0, 0, [], root)
    vc = merkle_impl.verify_consistency
    r6, r8 = bytes.fromhex(ROOTS[6]), root
    cproof = merkle_impl.consistency_proof(LEAVES, 6)
    assert not vc(6, 8, r6, r8, cproof[:-1])
    assert not vc(6, 8, r6, r8, [])
    assert not vc(8, 6, r8, r6, cproof)
    assert not vc(6, 8, r6, r8, [b"\x00" * 31, *cproof[1:]])
    assert not vc(3, 3, b"x", b"x", [])  # roots are 32-byte hashes, whatever the sizes
    assert not vc(4, 8, bytes.fromhex(ROOTS[4])[:31], r8, merkle_impl.consistency_proof(LEAVES, 4))


JUNK = [None, 5, 3.5, "string", "s" * 32, [None], [b"\x00" * 32, "not bytes"], [b"\x00" * 32, 3.5]]


@pytest.mark.parametrize("junk", JUNK, ids=repr)
def test_junk_inputs_are_false_not_errors(merkle_impl: ModuleType, junk: object) -> None:
    """A peer's junk in any argument gives False on both backends, as the docstrings promise."""
    leaves = LEAVES
    root = bytes.fromhex(ROOTS[8])
    r3 = bytes.fromhex(ROOTS[3])
    proof = merkle_impl.inclusion_proof(leaves, 0)
    cproof = merkle_impl.consistency_proof(leaves, 3)
    v, vc = merkle_impl.verify_inclusion, merkle_impl.verify_consistency
    assert v(leaves[0], 0, 8, proof, root) is True  # the control: the same call, no junk
    assert vc(3, 8, r3, root, cproof) is True
    assert v(leaves[0], 0, 8, junk, root) is False
    assert v(leaves[0], 0, 8, proof, junk) is False
    if not isinstance(junk, int):  # 5 is a fine size (see test_sizes_bind_loosely)
        assert v(leaves[0], junk, 8, proof, root) is False
        assert v(leaves[0], 0, junk, proof, root) is False
        assert vc(junk, 8, r3, root, cproof) is False
        assert vc(3, junk, r3, root, cproof) is False
    assert v(junk, 0, 8, proof, root) is False
    assert v(leaves[0], 0, 8, [*proof[:-1], junk], root) is False
    assert vc(3, 8, r3, root, junk) is False
    assert vc(3, 8, junk, root, cproof) is False
    assert vc(3, 8, r3, junk, cproof) is False
    assert vc(3, 8, r3, root, [*cproof[:-1], junk]) is False


def test_sizes_bind_loosely(merkle_impl: ModuleType) -> None:
    # RFC 9162 §2.1.3.2: the audit path of leaf 0 of 8 is also a valid path of leaf 0 in a tree
    # of 5 to 8 leaves (the same hashes combine in the same order); 4 and 9 need other lengths.
    root = bytes.fromhex(ROOTS[8])
    proof = merkle_impl.inclusion_proof(LEAVES, 0)
    got = [merkle_impl.verify_inclusion(LEAVES[0], 0, n, proof, root) for n in range(1, 12)]
    assert got == [n in range(5, 9) for n in range(1, 12)]


def test_bytes_like_hashes_and_integer_likes_are_accepted(merkle_impl: ModuleType) -> None:
    import numpy as np

    root = bytes.fromhex(ROOTS[8])
    proof = merkle_impl.inclusion_proof(LEAVES, 5)
    v = merkle_impl.verify_inclusion
    assert v(bytearray(LEAVES[5]), np.int64(5), np.uint8(8), [bytearray(p) for p in proof], root)
    assert v(LEAVES[5], 5, 8, iter(proof), memoryview(root))
    assert not v(LEAVES[5], 5, 8, proof, memoryview(root * 2)[::2])  # not contiguous
    r6 = bytes.fromhex(ROOTS[6])
    cproof = merkle_impl.consistency_proof(LEAVES, 6)
    assert merkle_impl.verify_consistency(6, 8, bytearray(r6), memoryview(root), tuple(cproof))


def test_roots_must_be_32_bytes(merkle_impl: ModuleType) -> None:
    assert merkle_impl.verify_consistency(3, 3, b"x", b"x", []) is False
    assert merkle_impl.verify_consistency(0, 3, b"", b"x" * 32, []) is False
    assert merkle_impl.verify_inclusion(LEAVES[0], 0, 1, [], b"x") is False


leaf_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=70)


@given(leaf_lists, st.data())
def test_every_inclusion_proof_verifies_and_any_altered_byte_fails(
    merkle_impl: ModuleType, leaves: list[bytes], data: st.DataObject
) -> None:
    root = merkle_impl.root(leaves)
    n = len(leaves)
    for i in range(n):
        proof = merkle_impl.inclusion_proof(leaves, i)
        assert merkle_impl.verify_inclusion(leaves[i], i, n, proof, root)
    i = data.draw(st.integers(0, n - 1))
    proof = merkle_impl.inclusion_proof(leaves, i)
    # Alter one byte anywhere: in the leaf, a proof node or the root.
    targets = ["leaf", "root"] + (["proof"] if proof else [])
    where = data.draw(st.sampled_from(targets))
    flip = data.draw(st.integers(1, 255))
    if where == "leaf":
        leaf = bytearray(leaves[i] or b"\x00")
        if not leaves[i]:
            leaf = bytearray(b"\x00")
            flip = 0
        pos = data.draw(st.integers(0, len(leaf) - 1))
        leaf[pos] ^= flip
        assume(bytes(leaf) != leaves[i])
        assert not merkle_impl.verify_inclusion(bytes(leaf), i, n, proof, root)
    elif where == "root":
        bad = bytearray(root)
        bad[data.draw(st.integers(0, 31))] ^= flip
        assert not merkle_impl.verify_inclusion(leaves[i], i, n, proof, bytes(bad))
    else:
        k = data.draw(st.integers(0, len(proof) - 1))
        node = bytearray(proof[k])
        node[data.draw(st.integers(0, 31))] ^= flip
        bad_proof = [*proof[:k], bytes(node), *proof[k + 1 :]]
        assert not merkle_impl.verify_inclusion(leaves[i], i, n, bad_proof, root)


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70), st.data())
def test_consistency_proofs_verify_for_every_prefix(
    merkle_impl: ModuleType, leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    new_root = merkle_impl.root(leaves)
    for m in range(n + 1):
        proof = merkle_impl.consistency_proof(leaves, m)
        assert merkle_impl.verify_consistency(m, n, merkle_impl.root(leaves[:m]), new_root, proof)
    m = data.draw(st.integers(1, n))
    other = data.draw(st.binary(min_size=1, max_size=8))
    j = data.draw(st.integers(0, m - 1))
    assume(other != leaves[j])
    forged = [*leaves[:j], other, *leaves[j + 1 : m]]
    proof = merkle_impl.consistency_proof(leaves, m)
    assert not merkle_impl.verify_consistency(m, n, merkle_impl.root(forged), new_root, proof)


@given(st.lists(st.binary(min_size=1, max_size=8), min_size=0, max_size=200), st.data())
def test_diff_finds_exactly_the_changed_leaves(
    merkle_impl: ModuleType, leaves: list[bytes], data: st.DataObject
) -> None:
    changed = sorted(set(data.draw(st.lists(st.integers(0, max(len(leaves) - 1, 0)), max_size=8))))
    if not leaves:
        changed = []
    other = list(leaves)
    for i in changed:
        other[i] = other[i] + b"!"
    assert sorted(merkle_impl.diff(leaves, other)) == changed
    extra = data.draw(st.lists(st.binary(max_size=4), max_size=3))
    longer = other + extra
    want = changed + list(range(len(leaves), len(longer)))
    assert sorted(merkle_impl.diff(leaves, longer)) == want
    assert sorted(merkle_impl.diff(longer, leaves)) == want
