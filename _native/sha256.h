/* SHA-256 (FIPS 180-4) for medbench's native core: one message or a batch of independent ones.
 *
 * Theory of operation
 * -------------------
 * A batch is hashed by a small lane scheduler: each lane holds one message in flight (its chaining
 * state and next block); every step compresses one block of every busy lane, and a lane that
 * finishes writes its digest and takes the next message. On x86-64 CPUs with the SHA extensions
 * the compression runs on SHA-NI with four lanes interleaved instruction by instruction, so the
 * latency of one sha256rnds2 chain is hidden behind three independent ones (a Merkle level is a
 * batch of independent node hashes). Elsewhere a portable C compression runs one lane.
 * Batches of equal-length messages (Merkle levels, leaves of 32-byte IDs) skip the scheduler and
 * run in lockstep; the last block of a 65-byte message (an inner node) has a precomputed message
 * schedule, so only its rounds run.
 *
 * How much interleaving buys depends on the SHA unit: where sha256rnds2 is pipelined (latency
 * well above its issue interval) four lanes approach four times one lane; where one lane already
 * keeps the unit busy, x4 gains little. On the project's Zen 4 machine, in C (2048 messages per
 * batch, best of 200): 65-byte messages take 59 ns each on one lane, 40 ns on two and 32 ns on
 * four; 64-byte messages 59, 41 and 39 ns. medbench_sha256_set_lanes() narrows the width so the
 * benchmarks can measure this (benchmarks/test_primitives.py: test_merkle_root, case
 * native-sha-ni-x1-2^16).
 *
 * The path is chosen at run time from CPUID (leaf 7, EBX bit 29) and can be switched off with
 * medbench_sha256_set_shani(0); every entry point reads the choice once per call.
 *
 * Messages may carry a one-byte prefix (0x00 for Merkle leaves, 0x01 for inner nodes, RFC 9162
 * section 2.1.1) that is hashed in front of the data without copying the data first.
 */
#ifndef MEDBENCH_SHA256_H
#define MEDBENCH_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEDBENCH_SHA256_DIGEST 32
/* Pass as `prefix` for messages hashed as they are. */
#define MEDBENCH_SHA256_NO_PREFIX (-1)

/* 1 when this CPU (and this build) can run the SHA-NI path. */
int medbench_sha256_cpu_has_shani(void);
/* 1 when the SHA-NI path is currently selected. */
int medbench_sha256_shani_enabled(void);
/* Select (enable != 0) or deselect SHA-NI; returns the resulting state (0 if unsupported). */
int medbench_sha256_set_shani(int enable);
/* How many messages the selected path interleaves (4 on SHA-NI, 1 portable). */
int medbench_sha256_lanes(void);
/* Interleave at most `lanes` (1, 2 or 4) messages on SHA-NI; returns the setting. For measuring
 * what the interleaving is worth; the default is 4. */
int medbench_sha256_set_lanes(int lanes);

/* Work done by this copy of the code since it was loaded: messages hashed and 64-byte blocks
 * compressed, added once per call (relaxed atomics), so benchmarks can gate the real amount of
 * hashing rather than one derived from the tree shape. */
void medbench_sha256_counters(uint64_t *messages, uint64_t *compressions);

/* out = SHA-256(data[0..len)). */
void medbench_sha256(const uint8_t *data, size_t len, uint8_t out[MEDBENCH_SHA256_DIGEST]);

/* out = SHA-256(0x01 || left[0..32) || right[0..32)): one Merkle inner node (RFC 9162). */
void medbench_sha256_node(const uint8_t *left, const uint8_t *right,
                          uint8_t out[MEDBENCH_SHA256_DIGEST]);

/* out[32*i ..] = SHA-256([prefix] || ptrs[i][0..lens[i])) for i < count.
 * prefix is a byte value 0..255 or MEDBENCH_SHA256_NO_PREFIX. */
void medbench_sha256_batch(const uint8_t *const *ptrs, const size_t *lens, size_t count,
                           int prefix, uint8_t *out);

/* As medbench_sha256_batch, but digest i goes to outs[i][0..32) (e.g. straight into the bytes
 * objects that will hold the results). */
void medbench_sha256_batch_into(const uint8_t *const *ptrs, const size_t *lens, size_t count,
                                int prefix, uint8_t *const *outs);

/* out[32*i ..] = SHA-256([prefix] || base[i*stride .. i*stride+len)) for i < count: fixed-size
 * messages laid out in one buffer, e.g. the pairs of 32-byte nodes of one Merkle level. */
void medbench_sha256_strided(const uint8_t *base, size_t stride, size_t len, size_t count,
                             int prefix, uint8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* MEDBENCH_SHA256_H */
