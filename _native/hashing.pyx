# cython: language_level=3
"""SHA-256 (FIPS 180-4) one message at a time and in batches, on the native core.

Theory of operation
-------------------
``sha256_many`` works through the batch a chunk of 2048 messages at a time. With the GIL it makes
one pass over the chunk: it takes a reference to each message (so no other thread can free one
while the GIL is released), notes its pointer and length, and creates the 32-byte ``bytes``
object that will hold its digest. Then it releases the GIL and the C code (``_native/sha256.c``)
writes every digest straight into those objects: on CPUs with the SHA extensions four messages
are interleaved per step on SHA-NI, elsewhere a portable FIPS 180-4 compression runs. A chunk's
messages, pointers and digests stay in the L2 cache across these passes; there is no copy of
the input list and no copy of the digests. The path is chosen from CPUID at import;
``MEDBENCH_NO_SHANI=1`` (read at import) or :func:`_set_shani` turn SHA-NI off.

Profile of 2^16 messages of 65 bytes (``perf record``, SHA-NI x4, each result dropped at once as
pytest-benchmark does): a third of the time in the two compressions per message; about 40 % in
the kernel, faulting in fresh pages for the digest objects (CPython hands an emptied 1 MiB arena
back to the OS, so every call maps its 5 MB of output anew); about 11 % creating and freeing the
2^16 ``bytes`` objects; about 10 % in the pass over each chunk, mostly the first-touch cache miss
on each message (hence the prefetch). Copying the input list and releasing the copy, as an
earlier version did, cost another 14 %.
"""

import os

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF, Py_XINCREF
from libc.stdint cimport uint8_t, uint64_t

from csha256 cimport (
    medbench_sha256,
    medbench_sha256_counters,
    medbench_sha256_batch_into,
    medbench_sha256_cpu_has_shani,
    medbench_sha256_lanes,
    medbench_sha256_set_lanes,
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
    CHUNK = 2048  # messages per GIL-free batch: the chunk's messages stay in L2 for all passes
    AHEAD = 8  # how many messages ahead the pass over a chunk prefetches


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define MB_PREFETCH(p) __builtin_prefetch((const void *)(p))
    #else
    #define MB_PREFETCH(p) ((void)(p))
    #endif
    """
    void MB_PREFETCH(const void *p) nogil


def sha256_many(messages):
    """The SHA-256 digests of ``messages``, in order (one 32-byte digest per message)."""
    # A list is read in place, a chunk at a time (as a Python loop over it would); anything
    # else is first made a private list.
    cdef list items = messages if type(messages) is list else list(messages)
    cdef Py_ssize_t n = PyList_GET_SIZE(items), lo = 0, i, cnt, held = 0
    cdef object item
    cdef PyObject *obj
    if n == 0:
        return []
    # One scratch block per call for a chunk: held references, pointers, lengths, outputs.
    cdef char *scratch = <char *>PyMem_RawMalloc(
        CHUNK * (sizeof(PyObject *) + sizeof(uint8_t *) + sizeof(size_t) + sizeof(uint8_t *))
    )
    if scratch == NULL:
        raise MemoryError()
    cdef PyObject **objs = <PyObject **>scratch
    cdef const uint8_t **ptrs = <const uint8_t **>(scratch + CHUNK * sizeof(PyObject *))
    cdef size_t *lens = <size_t *>(scratch + CHUNK * (sizeof(PyObject *) + sizeof(uint8_t *)))
    cdef uint8_t **outs = <uint8_t **>(
        scratch + CHUNK * (sizeof(PyObject *) + sizeof(uint8_t *) + sizeof(size_t))
    )
    cdef list result = PyList_New(n)
    try:
        # Bounded: lo grows by at least one each round up to the list's length, which another
        # thread may change only while the GIL is out; digests follow the list as each chunk
        # is taken.
        while lo < PyList_GET_SIZE(items):
            cnt = min(<Py_ssize_t>CHUNK, PyList_GET_SIZE(items) - lo)
            # One pass per chunk, with the GIL: hold a reference to each message (so no other
            # thread can free it while the GIL is out), note its bytes, and create the bytes
            # object its digest is written into.
            for i in range(cnt):
                # The first touch of each message object is a cache miss (the batch is far
                # larger than L2): start it a few messages ahead, header and first data line.
                if i + AHEAD < cnt:
                    obj = PyList_GET_ITEM(items, lo + i + AHEAD)
                    MB_PREFETCH(obj)
                    MB_PREFETCH(<char *>obj + 64)
                obj = PyList_GET_ITEM(items, lo + i)
                if PyBytes_CheckExact(<object>obj):
                    Py_XINCREF(obj)
                else:
                    # A private immutable copy: a bytearray could be resized meanwhile.
                    item = bytes(memoryview(<object>obj))
                    obj = <PyObject *>item
                    Py_INCREF(item)
                objs[i] = obj
                held = i + 1
                ptrs[i] = <const uint8_t *>PyBytes_AS_STRING(<object>obj)
                lens[i] = <size_t>PyBytes_GET_SIZE(<object>obj)
                item = PyBytes_FromStringAndSize(NULL, 32)
                outs[i] = <uint8_t *>PyBytes_AS_STRING(item)
                _store(result, lo + i, n, item)
            with nogil:
                medbench_sha256_batch_into(ptrs, lens, <size_t>cnt, -1, outs)
            _release(objs, held)
            held = 0
            lo += cnt
        if lo < n:  # the list shrank meanwhile
            del result[lo:]
        return result
    finally:
        _release(objs, held)
        PyMem_RawFree(scratch)


cdef inline int _store(list result, Py_ssize_t index, Py_ssize_t n, object item) except -1:
    """Put ``item`` at ``index`` of ``result`` (preallocated for ``n``; appended past it)."""
    if index < n:
        Py_INCREF(item)
        PyList_SET_ITEM(result, index, item)
    else:
        result.append(item)
    return 0


cdef inline void _release(PyObject **objs, Py_ssize_t count) noexcept:
    cdef Py_ssize_t i
    for i in range(count):
        Py_XDECREF(objs[i])


def implementation():
    """Which SHA-256 code serves this module."""
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
