"""Merkle tree hash of RFC 9162 §2.1 (the RFC 6962 tree), with proofs and tamper localisation.

Theory of operation
-------------------
Leaves are hashed as ``H(0x00 || d)`` and inner nodes as ``H(0x01 || left || right)``, so a leaf
can never be passed off as a node (second-preimage resistance). The tree over ``n`` leaves splits
at ``k``, the largest power of two below ``n``; building it bottom-up, pairing neighbours and
promoting an unpaired last node unchanged to the next level, yields exactly that tree, so every
function here works level by level: each level is one batch of independent hashes, which is what
the native twin hashes several at a time. The empty tree hashes to ``H(b"")``.

Medical Chain (docs/medical-chain.md §1.2) keeps a Merkle root of the transaction IDs in every block
header so that a tampered transaction is found quickly: :func:`diff` walks down only the subtrees
whose hashes differ, O(k log n) comparisons for k changed leaves.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

# The one hash constructor of this module, looked up per call: benchmarks swap in a counting
# wrapper to measure the real number of hash calls.
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """``H(0x00 || data)``: the hash of one leaf."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``H(0x01 || left || right)``: the hash of an inner node."""
    return _sha256(NODE_PREFIX + left + right).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    h = _sha256
    up = [h(NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        up.append(level[-1])
    return up


def _as_list(leaves: Iterable[bytes]) -> Sequence[bytes]:
    """``leaves`` as a sequence: any iterable of leaves is read once, like the native core."""
    if type(leaves) is list or type(leaves) is tuple:
        return leaves
    return list(leaves)  # TypeError for a non-iterable


def levels(leaves: Iterable[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaf hashes first and the root last (empty list for no leaves)."""
    leaves = _as_list(leaves)
    if not leaves:
        return []
    level = [_sha256(LEAF_PREFIX + d).digest() for d in leaves]
    out = [level]
    while len(level) > 1:
        level = _next_level(level)
        out.append(level)
    return out


def root(leaves: Iterable[bytes]) -> bytes:
    """The Merkle tree hash (root) of ``leaves``; ``H(b"")`` for an empty list."""
    leaves = _as_list(leaves)
    if not leaves:
        return _sha256(b"").digest()
    level = [_sha256(LEAF_PREFIX + d).digest() for d in leaves]
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (RFC 9162 §2.1.3.1), lowest sibling first."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} out of range for a tree of {n} leaves")
    proof: list[bytes] = []
    i = index
    for level in levels(leaves)[:-1]:
        sibling = i ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        i >>= 1
    return proof


def _as_bytes(obj: object) -> bytes | None:
    """``obj`` as ``bytes`` if it is a contiguous bytes-like object, else ``None``."""
    if type(obj) is bytes:
        return obj
    try:
        view = memoryview(obj)  # type: ignore[arg-type]
    except TypeError:
        return None
    return view.tobytes() if view.c_contiguous else None


def _as_hash(obj: object) -> bytes | None:
    """``obj`` as a 32-byte hash, or ``None`` if it is not a bytes-like object of 32 bytes."""
    b = _as_bytes(obj)
    return b if b is not None and len(b) == 32 else None


def _as_size(obj: object) -> int | None:
    """``obj`` as a non-negative integer (anything with ``__index__``), else ``None``."""
    try:
        value = operator.index(obj)  # type: ignore[arg-type]
    except TypeError:
        return None
    return value if value >= 0 else None


def _as_path(proof: object) -> list[bytes] | None:
    """``proof`` as a list of 32-byte hashes, or ``None`` if it is not one."""
    try:
        items = list(proof)  # type: ignore[call-overload]
    except TypeError:
        return None
    path = [_as_hash(p) for p in items]
    return None if any(p is None for p in path) else path  # type: ignore[return-value]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True if leaf data ``leaf`` sits at ``index`` of the tree of ``size`` leaves with ``root``.

    Follows RFC 9162 §2.1.3.2; any malformed input (index out of range, wrong proof length,
    non-32-byte hashes, a leaf, hash, index, size or proof of the wrong type) gives ``False``,
    never an exception.
    """
    data, fn, n = _as_bytes(leaf), _as_size(index), _as_size(size)
    want, path = _as_hash(root), _as_path(proof)
    if data is None or fn is None or n is None or want is None or path is None or fn >= n:
        return False
    sn = n - 1
    r = leaf_hash(data)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == want


def _subtree_hash(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    return root(leaves[lo:hi])


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def consistency_proof(leaves: Sequence[bytes], m: int) -> list[bytes]:
    """Proof that the first ``m`` leaves are a prefix of ``leaves`` (RFC 9162 §2.1.4.1).

    Empty when ``m`` is 0 or ``len(leaves)``.
    """
    m = operator.index(m)
    n = len(leaves)
    if not 0 <= m <= n:
        raise ValueError(f"old size {m} out of range for a tree of {n} leaves")
    if m in (0, n):
        return []
    proof: list[bytes] = []
    lo, hi, complete = 0, n, True
    # Iterative SUBPROOF(m, D[lo:hi], complete); ``m`` is relative to ``lo``.
    while True:
        size = hi - lo
        if m == size:
            if not complete:
                proof.append(_subtree_hash(leaves, lo, hi))
            break
        k = _largest_power_of_two_below(size)
        if m <= k:
            proof.append(_subtree_hash(leaves, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_subtree_hash(leaves, lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    proof.reverse()
    return proof


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True if the tree of ``old_size`` leaves with ``old_root`` is a prefix of the tree of
    ``new_size`` leaves with ``new_root`` (RFC 9162 §2.1.4.2). Malformed input (sizes that are
    not integers or out of order, hashes that are not 32 bytes, a proof of the wrong type or
    length) gives ``False``, never an exception.
    """
    m, n = _as_size(old_size), _as_size(new_size)
    old_want, new_want, path = _as_hash(old_root), _as_hash(new_root), _as_path(proof)
    if m is None or n is None or old_want is None or new_want is None or path is None or m > n:
        return False
    if m == n:
        return not path and old_want == new_want
    if m == 0:  # the empty tree is a prefix of every tree
        return not path and old_want == _sha256(b"").digest()
    if not path:
        return False
    if m & (m - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_want)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_want and sr == new_want


def diff(leaves_a: Iterable[bytes], leaves_b: Iterable[bytes]) -> list[int]:
    """Indices of the leaves that differ between two lists, found by comparing subtree hashes.

    Walks down from the roots into differing subtrees only: O(k log n) hash comparisons for k
    differing leaves. Leaves past the shorter list all count as differing.
    """
    same = leaves_a is leaves_b
    leaves_a = _as_list(leaves_a)
    leaves_b = leaves_a if same else _as_list(leaves_b)
    common = min(len(leaves_a), len(leaves_b))
    extra = list(range(common, max(len(leaves_a), len(leaves_b))))
    if common == 0:
        return extra
    la = levels(leaves_a[:common])
    lb = la if leaves_a is leaves_b else levels(leaves_b[:common])
    top = len(la) - 1
    stack = [(top, 0)]
    found: list[int] = []
    while stack:
        depth, i = stack.pop()
        if la[depth][i] == lb[depth][i]:
            continue
        if depth == 0:
            found.append(i)
            continue
        below = len(la[depth - 1])
        right = 2 * i + 1
        if right < below:
            stack.append((depth - 1, right))
        stack.append((depth - 1, 2 * i))
    return found + extra


def implementation() -> str:
    """Which code serves this module."""
    return "reference (hashlib)"
