# cython: language_level=3
"""Merkle tree hash of RFC 9162 §2.1 (the RFC 6962 tree), with proofs and tamper localisation.

Theory of operation
-------------------
The native twin of :mod:`medbench.reference.merkle` (same API, docstrings and bytes). A tree is
built bottom-up into one contiguous buffer of 32-byte nodes, level after level: the leaves are one
batch of ``H(0x00 || d)``, every higher level one batch of ``H(0x01 || left || right)`` over the
adjacent pairs of the level below (an unpaired last node is promoted unchanged), all hashed by
``_native/sha256.c`` with the GIL released (four messages interleaved on SHA-NI).

Node ``i`` of level ``L`` is then the hash of leaves ``[i * 2**L, min((i + 1) * 2**L, n))``,
which is exactly the RFC subtree over that range, so proofs read their subtree hashes straight
from the levels: an inclusion proof is the sibling at every level, and a consistency proof's
subtree ``[lo, hi)`` is node ``lo >> L`` of level ``L = ceil(log2(hi - lo))`` — O(n) hashing once,
never re-rooting slices. :func:`diff` compares the two trees' levels top-down in C.
"""

import operator
import os

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.long cimport PyLong_CheckExact
from cpython.list cimport PyList_GET_ITEM, PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc
from cpython.ref cimport Py_INCREF
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcmp, memcpy

from csha256 cimport (
    medbench_sha256,
    medbench_sha256_counters,
    medbench_sha256_batch,
    medbench_sha256_cpu_has_shani,
    medbench_sha256_lanes,
    medbench_sha256_node,
    medbench_sha256_set_lanes,
    medbench_sha256_set_shani,
    medbench_sha256_shani_enabled,
    medbench_sha256_strided,
)

from medbench.reference import merkle as _reference

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

cdef enum:
    MAX_LEVELS = 66  # 2**64 leaves need 65 levels
    CHUNK = 4096  # leaves hashed per GIL-free batch; a power of two: root() chunks are subtrees


def _env_disables_shani():
    return os.environ.get("MEDBENCH_NO_SHANI", "").strip().lower() in {"1", "true", "yes", "on"}


medbench_sha256_set_shani(0 if _env_disables_shani() else 1)


# --- one tree: every level in one buffer ---------------------------------------------------------

cdef class _Tree:
    """All levels of a Merkle tree, leaf hashes first, as 32-byte nodes in one C buffer."""

    cdef uint8_t *buf
    cdef Py_ssize_t n
    cdef int depth                     # number of levels; 0 for the empty tree
    cdef Py_ssize_t off[MAX_LEVELS]    # first node of each level
    cdef Py_ssize_t size[MAX_LEVELS]   # nodes in each level

    def __cinit__(self):
        self.buf = NULL
        self.n = 0
        self.depth = 0

    def __dealloc__(self):
        PyMem_RawFree(self.buf)

    cdef inline const uint8_t *node(self, int level, Py_ssize_t i):
        return self.buf + 32 * (self.off[level] + i)

    cdef bytes node_bytes(self, int level, Py_ssize_t i):
        return PyBytes_FromStringAndSize(<const char *>self.node(level, i), 32)

    cdef bytes subtree(self, Py_ssize_t lo, Py_ssize_t hi):
        """The RFC subtree hash of leaves [lo, hi), where lo is a multiple of 2**L and
        hi == min(lo + 2**L, n) for L = ceil(log2(hi - lo)) (true of every SUBPROOF range)."""
        cdef int level = _ceil_log2(hi - lo)
        return self.node_bytes(level, lo >> level)


cdef inline int _ceil_log2(Py_ssize_t s):
    cdef int level = 0
    cdef Py_ssize_t span = 1
    while span < s:
        span <<= 1
        level += 1
    return level


cdef list _snapshot(object leaves, bint as_bytes=True):
    """A private list of the leaves: no other thread can free them while the GIL is out.

    With ``as_bytes`` every leaf is made ``bytes`` here; otherwise the caller does it with
    :func:`_leaf_at` while it walks the leaves anyway (one pass over the objects, not two).
    """
    cdef list items = list(leaves)
    cdef Py_ssize_t i
    if as_bytes:
        for i in range(len(items)):
            _leaf_at(items, i)
    return items


cdef inline object _leaf_at(list items, Py_ssize_t i):
    """Leaf ``i`` as bytes, converting (and keeping) a bytes-like leaf in place."""
    cdef object item = <object>PyList_GET_ITEM(items, i)
    if not PyBytes_Check(item):
        item = bytes(memoryview(item))
        items[i] = item
    return item


cdef _Tree _build(object leaves):
    cdef list items = _snapshot(leaves)
    cdef _Tree tree = _Tree()
    cdef Py_ssize_t n = len(items), total = 0, s, i, pairs
    cdef int L, depth = 0
    tree.n = n
    if n == 0:
        return tree
    s = n
    while True:
        tree.off[depth] = total
        tree.size[depth] = s
        total += s
        depth += 1
        if s == 1:
            break
        s = (s + 1) // 2
    tree.depth = depth
    tree.buf = <uint8_t *>PyMem_RawMalloc(32 * total)
    cdef const uint8_t **ptrs = <const uint8_t **>PyMem_RawMalloc(CHUNK * sizeof(uint8_t *))
    cdef size_t *lens = <size_t *>PyMem_RawMalloc(CHUNK * sizeof(size_t))
    cdef object item
    cdef uint8_t *buf = tree.buf
    cdef Py_ssize_t lo, cnt
    try:
        if buf == NULL or ptrs == NULL or lens == NULL:
            raise MemoryError()
        for lo in range(0, n, CHUNK):  # the leaf level, a chunk of pointers at a time
            cnt = min(<Py_ssize_t>CHUNK, n - lo)
            for i in range(cnt):
                item = <object>PyList_GET_ITEM(items, lo + i)
                ptrs[i] = <const uint8_t *>PyBytes_AS_STRING(item)
                lens[i] = <size_t>PyBytes_GET_SIZE(item)
            with nogil:
                medbench_sha256_batch(ptrs, lens, <size_t>cnt, 0x00, buf + 32 * lo)
        with nogil:
            for L in range(depth - 1):
                s = tree.size[L]
                pairs = s // 2
                # H(0x01 || left || right) over each adjacent pair: one strided batch.
                medbench_sha256_strided(buf + 32 * tree.off[L], 64, 64, <size_t>pairs, 0x01,
                                        buf + 32 * tree.off[L + 1])
                if s & 1:
                    memcpy(buf + 32 * (tree.off[L + 1] + pairs), buf + 32 * (tree.off[L] + s - 1),
                           32)
    finally:
        PyMem_RawFree(ptrs)
        PyMem_RawFree(lens)
    return tree


cdef const uint8_t *_reduce(uint8_t *a, uint8_t *b, Py_ssize_t s) noexcept nogil:
    """Hash ``s`` nodes in ``a`` up to their root, ping-ponging with ``b`` (room for (s+1)//2)."""
    cdef Py_ssize_t pairs
    cdef uint8_t *t
    while s > 1:
        pairs = s // 2
        medbench_sha256_strided(a, 64, 64, <size_t>pairs, 0x01, b)
        if s & 1:
            memcpy(b + 32 * pairs, a + 32 * (s - 1), 32)
        s = (s + 1) // 2
        t = a
        a = b
        b = t
    return a


cdef bytes _root(list items):
    """The root in chunks of CHUNK leaves: each chunk's root is node ``c`` of level 12, so the
    chunk roots are reduced like any level. Working memory stays in cache and no page of a
    whole-tree buffer is ever touched."""
    cdef Py_ssize_t n = len(items), chunks = (n + CHUNK - 1) // CHUNK, c, lo, cnt, i
    cdef uint8_t *roots = <uint8_t *>PyMem_RawMalloc(32 * chunks)
    cdef uint8_t *spare = <uint8_t *>PyMem_RawMalloc(32 * ((chunks + 1) // 2))
    cdef uint8_t *a = <uint8_t *>PyMem_RawMalloc(32 * CHUNK)
    cdef uint8_t *b = <uint8_t *>PyMem_RawMalloc(32 * (CHUNK // 2))
    cdef const uint8_t **ptrs = <const uint8_t **>PyMem_RawMalloc(CHUNK * sizeof(uint8_t *))
    cdef size_t *lens = <size_t *>PyMem_RawMalloc(CHUNK * sizeof(size_t))
    cdef object item
    try:
        if not (roots and spare and a and b and ptrs and lens):
            raise MemoryError()
        for c in range(chunks):
            lo = c * CHUNK
            cnt = min(<Py_ssize_t>CHUNK, n - lo)
            for i in range(cnt):
                item = _leaf_at(items, lo + i)
                ptrs[i] = <const uint8_t *>PyBytes_AS_STRING(item)
                lens[i] = <size_t>PyBytes_GET_SIZE(item)
            with nogil:
                medbench_sha256_batch(ptrs, lens, <size_t>cnt, 0x00, a)
                memcpy(roots + 32 * c, _reduce(a, b, cnt), 32)
        with nogil:
            memcpy(a, _reduce(roots, spare, chunks), 32)
        return PyBytes_FromStringAndSize(<char *>a, 32)
    finally:
        PyMem_RawFree(roots)
        PyMem_RawFree(spare)
        PyMem_RawFree(a)
        PyMem_RawFree(b)
        PyMem_RawFree(ptrs)
        PyMem_RawFree(lens)


cdef bytes _empty_root():
    cdef uint8_t out[32]
    medbench_sha256(<const uint8_t *>b"", 0, out)
    return PyBytes_FromStringAndSize(<char *>out, 32)


cdef inline void _node_into(const uint8_t *left, const uint8_t *right, uint8_t *out) noexcept:
    medbench_sha256_node(left, right, out)  # out may alias left or right: inputs copied first


cdef int _bytes32(object obj, uint8_t *out) except -1:
    """Copy a 32-byte bytes-like ``obj`` into ``out``: 1 on success, 0 if it is not one."""
    cdef Py_buffer view
    if PyBytes_Check(obj):
        if PyBytes_GET_SIZE(obj) != 32:
            return 0
        memcpy(out, PyBytes_AS_STRING(obj), 32)
        return 1
    try:
        PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE)
    except (TypeError, BufferError):
        return 0
    try:
        if view.len != 32:
            return 0
        memcpy(out, view.buf, 32)
        return 1
    finally:
        PyBuffer_Release(&view)


cdef int _as_u64(object value, uint64_t *out) except -1:
    """``value`` as a uint64: 1 on success, 0 when it is not an int, -2 when it is out of range."""
    if not PyLong_CheckExact(value):
        try:
            value = operator.index(value)
        except TypeError:
            return 0
    if value < 0:
        return 0
    if value > 0xFFFFFFFFFFFFFFFF:
        return -2
    out[0] = <uint64_t>value
    return 1


# --- the public API (mirrors medbench.reference.merkle) ------------------------------------------

def leaf_hash(data):
    """``H(0x00 || data)``: the hash of one leaf."""
    cdef Py_buffer view
    cdef uint8_t out[32]
    cdef const uint8_t *ptr
    cdef size_t length
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        ptr = <const uint8_t *>view.buf
        length = <size_t>view.len
        medbench_sha256_batch(&ptr, &length, 1, 0x00, out)
    finally:
        PyBuffer_Release(&view)
    return PyBytes_FromStringAndSize(<char *>out, 32)


def node_hash(left, right):
    """``H(0x01 || left || right)``: the hash of an inner node."""
    cdef uint8_t l32[32]
    cdef uint8_t r32[32]
    cdef uint8_t out[32]
    if _bytes32(left, l32) and _bytes32(right, r32):
        _node_into(l32, r32, out)
        return PyBytes_FromStringAndSize(<char *>out, 32)
    cdef bytes msg = NODE_PREFIX + left + right
    medbench_sha256(<const uint8_t *>PyBytes_AS_STRING(msg), <size_t>PyBytes_GET_SIZE(msg), out)
    return PyBytes_FromStringAndSize(<char *>out, 32)


def levels(leaves):
    """Every level of the tree, leaf hashes first and the root last (empty list for no leaves)."""
    cdef _Tree tree = _build(leaves)
    cdef list out = []
    cdef list level
    cdef int L
    cdef Py_ssize_t i
    cdef object node
    for L in range(tree.depth):
        level = PyList_New(tree.size[L])
        for i in range(tree.size[L]):
            node = tree.node_bytes(L, i)
            Py_INCREF(node)
            PyList_SET_ITEM(level, i, node)
        out.append(level)
    return out


def root(leaves):
    """The Merkle tree hash (root) of ``leaves``; ``H(b"")`` for an empty list."""
    cdef list items = _snapshot(leaves, False)
    if not items:
        return _empty_root()
    return _root(items)


def inclusion_proof(leaves, index):
    """The audit path of leaf ``index`` (RFC 9162 §2.1.3.1), lowest sibling first."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} out of range for a tree of {n} leaves")
    cdef _Tree tree = _build(leaves)
    cdef Py_ssize_t i = index, sibling
    cdef int L
    cdef list proof = []
    for L in range(tree.depth - 1):
        sibling = i ^ 1
        if sibling < tree.size[L]:
            proof.append(tree.node_bytes(L, sibling))
        i >>= 1
    return proof


def verify_inclusion(leaf, index, size, proof, root):
    """True if leaf data ``leaf`` sits at ``index`` of the tree of ``size`` leaves with ``root``.

    Follows RFC 9162 §2.1.3.2; any malformed input (index out of range, wrong proof length,
    non-32-byte hashes, a leaf, hash, index, size or proof of the wrong type) gives ``False``,
    never an exception.
    """
    cdef uint64_t fn, sn
    cdef int ok_index = _as_u64(index, &fn)
    cdef int ok_size = _as_u64(size, &sn)
    if ok_index == -2 or ok_size == -2:  # beyond 64 bits: Python integers do it
        return _reference.verify_inclusion(leaf, index, size, proof, root)
    if ok_index != 1 or ok_size != 1 or fn >= sn:
        return False
    cdef uint8_t want[32]
    cdef uint8_t r[32]
    cdef uint8_t p[32]
    if not _bytes32(root, want):
        return False
    try:
        path = list(proof)
    except TypeError:
        return False
    cdef Py_buffer view
    cdef const uint8_t *ptr
    cdef size_t length
    try:
        PyObject_GetBuffer(leaf, &view, PyBUF_SIMPLE)
    except (TypeError, BufferError):  # not a contiguous bytes-like leaf
        return False
    try:
        ptr = <const uint8_t *>view.buf
        length = <size_t>view.len
        medbench_sha256_batch(&ptr, &length, 1, 0x00, r)
    finally:
        PyBuffer_Release(&view)
    sn -= 1
    for item in path:
        if sn == 0 or not _bytes32(item, p):
            return False
        if fn & 1 or fn == sn:
            _node_into(p, r, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            _node_into(r, p, r)
        fn >>= 1
        sn >>= 1
    return sn == 0 and memcmp(r, want, 32) == 0


def consistency_proof(leaves, m):
    """Proof that the first ``m`` leaves are a prefix of ``leaves`` (RFC 9162 §2.1.4.1).

    Empty when ``m`` is 0 or ``len(leaves)``.
    """
    m = operator.index(m)
    n = len(leaves)
    if not 0 <= m <= n:
        raise ValueError(f"old size {m} out of range for a tree of {n} leaves")
    if m == 0 or m == n:
        return []
    cdef _Tree tree = _build(leaves)
    cdef Py_ssize_t lo = 0, hi = tree.n, k, size, old = m
    cdef bint complete = True
    cdef list proof = []
    # Iterative SUBPROOF(m, D[lo:hi], complete); ``old`` is relative to ``lo``.
    while True:
        size = hi - lo
        if old == size:
            if not complete:
                proof.append(tree.subtree(lo, hi))
            break
        k = 1
        while k * 2 < size:
            k *= 2
        if old <= k:
            proof.append(tree.subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(tree.subtree(lo, lo + k))
            lo += k
            old -= k
            complete = False
    proof.reverse()
    return proof


def verify_consistency(old_size, new_size, old_root, new_root, proof):
    """True if the tree of ``old_size`` leaves with ``old_root`` is a prefix of the tree of
    ``new_size`` leaves with ``new_root`` (RFC 9162 §2.1.4.2). Malformed input (sizes that are
    not integers or out of order, hashes that are not 32 bytes, a proof of the wrong type or
    length) gives ``False``, never an exception.
    """
    cdef uint64_t fn, sn, m, n
    cdef int ok_old = _as_u64(old_size, &m)
    cdef int ok_new = _as_u64(new_size, &n)
    if ok_old == -2 or ok_new == -2:
        return _reference.verify_consistency(old_size, new_size, old_root, new_root, proof)
    if ok_old != 1 or ok_new != 1 or m > n:
        return False
    try:
        path = list(proof)
    except TypeError:
        return False
    cdef Py_ssize_t count = len(path), j
    cdef uint8_t old_want[32]
    cdef uint8_t new_want[32]
    cdef uint8_t fr[32]
    cdef uint8_t sr[32]
    cdef uint8_t c[32]
    for item in path:
        if not _bytes32(item, c):
            return False
    if not _bytes32(old_root, old_want) or not _bytes32(new_root, new_want):
        return False
    if m == n:
        return count == 0 and memcmp(old_want, new_want, 32) == 0
    if m == 0:  # the empty tree is a prefix of every tree
        medbench_sha256(<const uint8_t *>b"", 0, c)
        return count == 0 and memcmp(old_want, c, 32) == 0
    if count == 0:
        return False
    if m & (m - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
        count += 1
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    _bytes32(path[0], fr)
    memcpy(sr, fr, 32)
    for j in range(1, count):
        _bytes32(path[j], c)
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            _node_into(c, fr, fr)
            _node_into(c, sr, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            _node_into(sr, c, sr)
        fn >>= 1
        sn >>= 1
    return sn == 0 and memcmp(fr, old_want, 32) == 0 and memcmp(sr, new_want, 32) == 0


def diff(leaves_a, leaves_b):
    """Indices of the leaves that differ between two lists, found by comparing subtree hashes.

    Walks down from the roots into differing subtrees only: O(k log n) hash comparisons for k
    differing leaves. Leaves past the shorter list all count as differing.
    """
    same = leaves_a is leaves_b
    if type(leaves_a) is not list and type(leaves_a) is not tuple:
        leaves_a = list(leaves_a)  # any iterable of leaves, read once (as the reference)
    leaves_b = leaves_a if same else leaves_b
    if type(leaves_b) is not list and type(leaves_b) is not tuple:
        leaves_b = list(leaves_b)
    cdef Py_ssize_t na = len(leaves_a), nb = len(leaves_b)
    cdef Py_ssize_t common = min(na, nb)
    extra = list(range(common, max(na, nb)))
    if common == 0:
        return extra
    cdef _Tree ta = _build(leaves_a if na == common else leaves_a[:common])
    cdef _Tree tb
    if leaves_a is leaves_b:
        tb = ta
    else:
        tb = _build(leaves_b if nb == common else leaves_b[:common])
    # Depth-first, left subtree first; the stack never holds more than two nodes per level.
    cdef int stack_level[2 * MAX_LEVELS + 2]
    cdef Py_ssize_t stack_index[2 * MAX_LEVELS + 2]
    cdef int top = 0, level
    cdef Py_ssize_t i, right
    cdef list found = []
    stack_level[0] = ta.depth - 1
    stack_index[0] = 0
    top = 1
    while top:
        top -= 1
        level = stack_level[top]
        i = stack_index[top]
        if memcmp(ta.node(level, i), tb.node(level, i), 32) == 0:
            continue
        if level == 0:
            found.append(i)
            continue
        right = 2 * i + 1
        if right < ta.size[level - 1]:
            stack_level[top] = level - 1
            stack_index[top] = right
            top += 1
        stack_level[top] = level - 1
        stack_index[top] = 2 * i
        top += 1
    return found + extra


def implementation():
    """Which code serves this module."""
    if medbench_sha256_shani_enabled():
        return f"native sha-ni x{medbench_sha256_lanes()}"
    return "native portable"


def _shani_available():
    """True when this CPU and build can run the SHA-NI path."""
    return bool(medbench_sha256_cpu_has_shani())


def _set_lanes(lanes):
    """Interleave at most ``lanes`` (1, 2 or 4) messages on SHA-NI; returns the setting.

    For benchmarks that measure what the interleaving is worth; the default is 4. Like
    :func:`_set_shani` it switches this module only.
    """
    return medbench_sha256_set_lanes(int(lanes))


def _set_shani(enabled):
    """Select (``True``) or leave (``False``) the SHA-NI path; returns whether it is now in use.

    For tests and benchmarks: it switches this module only (``medbench._native.hashing`` carries
    its own switch).
    """
    return bool(medbench_sha256_set_shani(1 if enabled else 0))


def _hash_counters():
    """``(messages, compressions)`` hashed by this module's copy of the SHA-256 code so far.

    For benchmarks and tests: the difference across one call is the real work it did (messages
    hashed, 64-byte blocks compressed). ``medbench._native.hashing`` keeps its own counters.
    """
    cdef uint64_t messages = 0, compressions = 0
    medbench_sha256_counters(&messages, &compressions)
    return (messages, compressions)
