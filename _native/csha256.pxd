# Cython declarations of sha256.h, shared by hashing.pyx and merkle.pyx.
from libc.stdint cimport uint8_t, uint64_t


cdef extern from "sha256.h" nogil:
    int MEDBENCH_SHA256_DIGEST
    int MEDBENCH_SHA256_NO_PREFIX
    int medbench_sha256_cpu_has_shani()
    int medbench_sha256_shani_enabled()
    int medbench_sha256_set_shani(int enable)
    int medbench_sha256_lanes()
    int medbench_sha256_set_lanes(int lanes)
    void medbench_sha256_counters(uint64_t *messages, uint64_t *compressions)
    void medbench_sha256(const uint8_t *data, size_t len, uint8_t *out)
    void medbench_sha256_node(const uint8_t *left, const uint8_t *right, uint8_t *out)
    void medbench_sha256_batch(const uint8_t *const *ptrs, const size_t *lens, size_t count,
                               int prefix, uint8_t *out)
    void medbench_sha256_batch_into(const uint8_t *const *ptrs, const size_t *lens, size_t count,
                                    int prefix, uint8_t *const *outs)
    void medbench_sha256_strided(const uint8_t *base, size_t stride, size_t len, size_t count,
                                 int prefix, uint8_t *out)
