# cython: language_level=3
"""SHA-256 (FIPS 180-4) one message at a time and in batches, on the native core.

Theory of operation
-------------------
``sha256_many`` snapshots the batch into a private list (so no other thread can free a message
while the GIL is released), collects pointers and lengths, releases the GIL and hashes the whole
batch in C (``_native/sha256.c``): on CPUs with the SHA extensions four messages are interleaved
per step on SHA-NI, elsewhere a portable FIPS 180-4 compression runs. The path is chosen from
CPUID at import; ``MEDBENCH_NO_SHANI=1`` (read at import) or :func:`_set_shani` turn SHA-NI off.
"""

import os

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc
from cpython.ref cimport Py_INCREF
from libc.stdint cimport uint8_t, uint64_t

from csha256 cimport (
    medbench_sha256,
    medbench_sha256_counters,
    medbench_sha256_batch,
    medbench_sha256_cpu_has_shani,
    medbench_sha256_lanes,
    medbench_sha256_set_shani,
    medbench_sha256_shani_enabled,
)

DIGEST_SIZE = 32

# Single messages at least this long are hashed with the GIL released (as hashlib does).
cdef Py_ssize_t _NOGIL_MIN = 4096


def _env_disables_shani():
    return os.environ.get("MEDBENCH_NO_SHANI", "").strip().lower() in {"1", "true", "yes", "on"}


medbench_sha256_set_shani(0 if _env_disables_shani() else 1)


def sha256(data):
    """The 32-byte SHA-256 digest of ``data``."""
    cdef Py_buffer view
    cdef uint8_t out[32]
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len >= _NOGIL_MIN:
            with nogil:
                medbench_sha256(<const uint8_t *>view.buf, <size_t>view.len, out)
        else:
            medbench_sha256(<const uint8_t *>view.buf, <size_t>view.len, out)
    finally:
        PyBuffer_Release(&view)
    return PyBytes_FromStringAndSize(<char *>out, 32)


cdef enum:
    CHUNK = 2048  # messages per GIL-free batch: scratch arrays stay small and in cache


def sha256_many(messages):
    """The SHA-256 digests of ``messages``, in order (one 32-byte digest per message)."""
    cdef list items = list(messages)
    cdef Py_ssize_t n = len(items), i, lo, cnt
    cdef object item
    if n == 0:
        return []
    for i in range(n):
        item = <object>PyList_GET_ITEM(items, i)
        if not PyBytes_Check(item):
            # A private immutable copy: a bytearray could be resized while the GIL is released.
            items[i] = bytes(memoryview(item))
    # One scratch block for pointers, lengths and digests of a chunk (below the mmap threshold,
    # so repeated calls do not fault fresh pages in).
    cdef char *scratch = <char *>PyMem_RawMalloc(CHUNK * (sizeof(uint8_t *) + sizeof(size_t) + 32))
    if scratch == NULL:
        raise MemoryError()
    cdef const uint8_t **ptrs = <const uint8_t **>scratch
    cdef size_t *lens = <size_t *>(scratch + CHUNK * sizeof(uint8_t *))
    cdef uint8_t *out = <uint8_t *>(scratch + CHUNK * (sizeof(uint8_t *) + sizeof(size_t)))
    cdef list result = PyList_New(n)
    try:
        for lo in range(0, n, CHUNK):
            cnt = min(<Py_ssize_t>CHUNK, n - lo)
            for i in range(cnt):
                item = <object>PyList_GET_ITEM(items, lo + i)
                ptrs[i] = <const uint8_t *>PyBytes_AS_STRING(item)
                lens[i] = <size_t>PyBytes_GET_SIZE(item)
            with nogil:
                medbench_sha256_batch(ptrs, lens, <size_t>cnt, -1, out)
            for i in range(cnt):
                item = PyBytes_FromStringAndSize(<char *>out + 32 * i, 32)
                Py_INCREF(item)
                PyList_SET_ITEM(result, lo + i, item)
        return result
    finally:
        PyMem_RawFree(scratch)


def implementation():
    """Which SHA-256 code serves this module."""
    if medbench_sha256_shani_enabled():
        return f"native sha-ni x{medbench_sha256_lanes()}"
    return "native portable"


def _shani_available():
    """True when this CPU and build can run the SHA-NI path."""
    return bool(medbench_sha256_cpu_has_shani())


def _set_shani(enabled):
    """Select (``True``) or leave (``False``) the SHA-NI path; returns whether it is now in use.

    For tests and benchmarks: it switches this module only (``medbench._native.merkle`` carries
    its own switch).
    """
    return bool(medbench_sha256_set_shani(1 if enabled else 0))


def _hash_counters():
    """``(messages, compressions)`` hashed by this module's copy of the SHA-256 code so far.

    For benchmarks and tests: the difference across one call is the real work it did (messages
    hashed, 64-byte blocks compressed). ``medbench._native.merkle`` keeps its own counters.
    """
    cdef uint64_t messages = 0, compressions = 0
    medbench_sha256_counters(&messages, &compressions)
    return (messages, compressions)
