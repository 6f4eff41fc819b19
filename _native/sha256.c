/* SHA-256 (FIPS 180-4): a portable C compression and an x86 SHA-NI multi-lane compression, fed
 * by one lane scheduler. See sha256.h for the theory of operation.
 *
 * Written from FIPS 180-4 (sections 4.1.2, 4.2.2, 5.1.1, 5.3.3, 6.2) and Intel's description of
 * the SHA extensions (sha256rnds2 / sha256msg1 / sha256msg2 work on the state split into the
 * register pair ABEF / CDGH).
 */
#include "sha256.h"

#include <string.h>

/* MEDBENCH_SHA256_PORTABLE_ONLY builds what a non-x86 machine builds (to check it compiles). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) &&                          \
    !defined(MEDBENCH_SHA256_PORTABLE_ONLY)
#define MB_X86 1
#include <cpuid.h>
#include <immintrin.h>
#define MB_SHANI_TARGET __attribute__((target("sha,sse4.1,ssse3")))
#define MB_ALWAYS_INLINE inline __attribute__((always_inline))
/* The lane and round loops must be fully unrolled so the message words live in registers. */
#if defined(__clang__)
#define MB_UNROLL _Pragma("unroll")
#else
#define MB_UNROLL _Pragma("GCC unroll 16")
#endif
#else
#define MB_X86 0
#endif

/* FIPS 180-4 section 4.2.2: the first 32 bits of the fractional parts of the cube roots of the
 * first 64 primes. */
static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

/* FIPS 180-4 section 5.3.3: H(0), the square roots of the first 8 primes. */
static const uint32_t H0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static inline uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void store_be64(uint8_t *p, uint64_t v)
{
    store_be32(p, (uint32_t)(v >> 32));
    store_be32(p + 4, (uint32_t)v);
}

/* ---------------------------------------------------------------------------------------------
 * Portable path: FIPS 180-4 section 6.2.2, one block at a time. State in natural order a..h.
 */
#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define CH(x, y, z) (((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z) (((x) & (y)) ^ ((x) & (z)) ^ ((y) & (z)))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))

static void portable_compress(uint32_t st[8], const uint8_t *block)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 64; t++)
        w[t] = SSIG1(w[t - 2]) + w[t - 7] + SSIG0(w[t - 15]) + w[t - 16];
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = h + BSIG1(e) + CH(e, f, g) + K256[t] + w[t];
        uint32_t t2 = BSIG0(a) + MAJ(a, b, c);
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
    st[4] += e;
    st[5] += f;
    st[6] += g;
    st[7] += h;
}

/* ---------------------------------------------------------------------------------------------
 * SHA-NI path. A lane's state is kept between blocks in the register layout the instructions
 * want: words 0..3 hold ABEF (dword 3 = A), words 4..7 hold CDGH (dword 3 = C). It is converted
 * from/to the natural a..h order only when a message starts and ends.
 */
#if MB_X86

MB_SHANI_TARGET static void shani_state_in(uint32_t st[8], const uint32_t natural[8])
{
    __m128i dcba = _mm_loadu_si128((const __m128i *)natural);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)(natural + 4));
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    _mm_storeu_si128((__m128i *)st, _mm_alignr_epi8(cdab, efgh, 8));        /* ABEF */
    _mm_storeu_si128((__m128i *)(st + 4), _mm_blend_epi16(efgh, cdab, 0xF0)); /* CDGH */
}

MB_SHANI_TARGET static void shani_state_out(uint32_t natural[8], const uint32_t st[8])
{
    __m128i abef = _mm_loadu_si128((const __m128i *)st);
    __m128i cdgh = _mm_loadu_si128((const __m128i *)(st + 4));
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)natural, _mm_blend_epi16(feba, dchg, 0xF0));     /* DCBA */
    _mm_storeu_si128((__m128i *)(natural + 4), _mm_alignr_epi8(dchg, feba, 8)); /* HGFE */
}

/* The digest of a finished SHA-NI state: back to a..h order, then big-endian words. */
MB_SHANI_TARGET static void shani_digest(const uint32_t st[8], uint8_t *out)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i abef = _mm_loadu_si128((const __m128i *)st);
    __m128i cdgh = _mm_loadu_si128((const __m128i *)(st + 4));
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    __m128i dcba = _mm_blend_epi16(feba, dchg, 0xF0);
    __m128i hgfe = _mm_alignr_epi8(dchg, feba, 8);
    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(dcba, bswap));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(hgfe, bswap));
}

/* One block for each of N lanes. Every step is written as a loop over the lanes, so the compiler
 * (N is a constant after inlining) emits the N independent dependency chains side by side. */
MB_SHANI_TARGET static MB_ALWAYS_INLINE void shani_lanes(uint32_t *const st[], const uint8_t *const blk[],
                                                         const int N)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i s0[4], s1[4], save0[4], save1[4], m[4][4];

    MB_UNROLL
    for (int l = 0; l < N; l++) {
        s0[l] = save0[l] = _mm_loadu_si128((const __m128i *)st[l]);
        s1[l] = save1[l] = _mm_loadu_si128((const __m128i *)(st[l] + 4));
    }
    MB_UNROLL
    for (int g = 0; g < 16; g++) {
        const __m128i k = _mm_loadu_si128((const __m128i *)(K256 + 4 * g));
        MB_UNROLL
        for (int l = 0; l < N; l++) {
            __m128i w;
            if (g < 4) {
                /* W[4g..4g+3]: the message words, big-endian. */
                w = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk[l] + 16 * g)), bswap);
            } else {
                /* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16] for t = 4g..4g+3: msg1 adds
                 * s0 to W[t-16], alignr supplies W[t-7], msg2 adds s1 (chained inside). */
                const __m128i wm4 = m[l][g & 3], wm3 = m[l][(g + 1) & 3];
                const __m128i wm2 = m[l][(g + 2) & 3], wm1 = m[l][(g + 3) & 3];
                w = _mm_sha256msg1_epu32(wm4, wm3);
                w = _mm_add_epi32(w, _mm_alignr_epi8(wm1, wm2, 4));
                w = _mm_sha256msg2_epu32(w, wm1);
            }
            m[l][g & 3] = w;
            __m128i wk = _mm_add_epi32(w, k);
            s1[l] = _mm_sha256rnds2_epu32(s1[l], s0[l], wk); /* rounds 4g, 4g+1 */
            wk = _mm_shuffle_epi32(wk, 0x0E);
            s0[l] = _mm_sha256rnds2_epu32(s0[l], s1[l], wk); /* rounds 4g+2, 4g+3 */
        }
    }
    MB_UNROLL
    for (int l = 0; l < N; l++) {
        _mm_storeu_si128((__m128i *)st[l], _mm_add_epi32(s0[l], save0[l]));
        _mm_storeu_si128((__m128i *)(st[l] + 4), _mm_add_epi32(s1[l], save1[l]));
    }
}

MB_SHANI_TARGET static void shani_x1(uint32_t *const st[], const uint8_t *const blk[])
{
    shani_lanes(st, blk, 1);
}

MB_SHANI_TARGET static void shani_x2(uint32_t *const st[], const uint8_t *const blk[])
{
    shani_lanes(st, blk, 2);
}

MB_SHANI_TARGET static void shani_x4(uint32_t *const st[], const uint8_t *const blk[])
{
    shani_lanes(st, blk, 4);
}

/* One block for each of N lanes whose message schedule is already known: wk[l] holds
 * W[t] + K[t] for t = 0..63, so only the rounds run (no sha256msg1/msg2). */
MB_SHANI_TARGET static MB_ALWAYS_INLINE void shani_wk_lanes(uint32_t *const st[],
                                                            const uint32_t *const wk[],
                                                            const int N)
{
    __m128i s0[4], s1[4], save0[4], save1[4];
    MB_UNROLL
    for (int l = 0; l < N; l++) {
        s0[l] = save0[l] = _mm_loadu_si128((const __m128i *)st[l]);
        s1[l] = save1[l] = _mm_loadu_si128((const __m128i *)(st[l] + 4));
    }
    MB_UNROLL
    for (int g = 0; g < 16; g++) {
        MB_UNROLL
        for (int l = 0; l < N; l++) {
            const __m128i lo = _mm_loadu_si128((const __m128i *)(wk[l] + 4 * g));
            const __m128i hi = _mm_loadl_epi64((const __m128i *)(wk[l] + 4 * g + 2));
            s1[l] = _mm_sha256rnds2_epu32(s1[l], s0[l], lo);
            s0[l] = _mm_sha256rnds2_epu32(s0[l], s1[l], hi);
        }
    }
    MB_UNROLL
    for (int l = 0; l < N; l++) {
        _mm_storeu_si128((__m128i *)st[l], _mm_add_epi32(s0[l], save0[l]));
        _mm_storeu_si128((__m128i *)(st[l] + 4), _mm_add_epi32(s1[l], save1[l]));
    }
}

MB_SHANI_TARGET static void shani_wk_x1(uint32_t *const st[], const uint32_t *const wk[])
{
    shani_wk_lanes(st, wk, 1);
}

MB_SHANI_TARGET static void shani_wk_x2(uint32_t *const st[], const uint32_t *const wk[])
{
    shani_wk_lanes(st, wk, 2);
}

MB_SHANI_TARGET static void shani_wk_x4(uint32_t *const st[], const uint32_t *const wk[])
{
    shani_wk_lanes(st, wk, 4);
}

static int cpu_has_shani(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & bit_SSSE3) || !(c & bit_SSE4_1))
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (b >> 29) & 1; /* CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29] */
}

#else /* !MB_X86 */

static int cpu_has_shani(void) { return 0; }

#endif

/* ---------------------------------------------------------------------------------------------
 * Path selection. -1 = not decided yet; decided lazily from CPUID on first use.
 */
static int g_shani = -1;
static int g_cpu_shani = -1;

int medbench_sha256_cpu_has_shani(void)
{
    if (g_cpu_shani < 0)
        g_cpu_shani = cpu_has_shani();
    return g_cpu_shani;
}

int medbench_sha256_shani_enabled(void)
{
    if (g_shani < 0)
        g_shani = medbench_sha256_cpu_has_shani();
    return g_shani;
}

#if MB_X86
/* The last block of every 65-byte message (a Merkle node 0x01 || left || right, or 65 bytes of
 * data) is [b, 0x80, 0 ... 0, 520 as 64 bits]: only its first byte b varies. Its message schedule
 * is therefore one of 256, computed once: W[t] + K[t] for each b. The rounds of that block then
 * skip the schedule instructions, which share the SHA unit with the rounds. The ready flag is
 * published with release/acquire so a batch never sees it before the table. */
static uint32_t g_tail65[256][64];
static int g_tail65_ready = 0;

static int tail65_ready(void)
{
    return __atomic_load_n(&g_tail65_ready, __ATOMIC_ACQUIRE);
}

static void build_tail65(void)
{
    for (int b = 0; b < 256; b++) {
        uint32_t w[64];
        memset(w, 0, sizeof w);
        w[0] = ((uint32_t)b << 24) | 0x00800000u;
        w[15] = 65 * 8;
        for (int t = 16; t < 64; t++)
            w[t] = SSIG1(w[t - 2]) + w[t - 7] + SSIG0(w[t - 15]) + w[t - 16];
        for (int t = 0; t < 64; t++)
            g_tail65[b][t] = w[t] + K256[t];
    }
    __atomic_store_n(&g_tail65_ready, 1, __ATOMIC_RELEASE);
}
#endif

int medbench_sha256_set_shani(int enable)
{
    g_shani = enable ? medbench_sha256_cpu_has_shani() : 0;
#if MB_X86
    /* Built here, normally at module import (under the import lock). */
    if (g_shani && !tail65_ready())
        build_tail65();
#endif
    return g_shani;
}

/* How many messages the SHA-NI path interleaves: 4 normally; 1 or 2 only to measure what the
 * interleaving is worth (benchmarks). */
static int g_lanes = 4;

int medbench_sha256_set_lanes(int lanes)
{
    g_lanes = lanes >= 4 ? 4 : lanes >= 2 ? 2 : 1;
    return g_lanes;
}

int medbench_sha256_lanes(void)
{
    return medbench_sha256_shani_enabled() ? g_lanes : 1;
}

/* ---------------------------------------------------------------------------------------------
 * Work counters (see sha256.h). Batches run with the GIL released, possibly in several threads
 * at once, hence the atomics; they are touched once per call, never per block.
 */
static uint64_t g_messages = 0;
static uint64_t g_compressions = 0;

static void count_work(uint64_t messages, uint64_t compressions)
{
#if defined(__GNUC__) || defined(__clang__)
    __atomic_fetch_add(&g_messages, messages, __ATOMIC_RELAXED);
    __atomic_fetch_add(&g_compressions, compressions, __ATOMIC_RELAXED);
#else
    g_messages += messages;
    g_compressions += compressions;
#endif
}

void medbench_sha256_counters(uint64_t *messages, uint64_t *compressions)
{
#if defined(__GNUC__) || defined(__clang__)
    *messages = __atomic_load_n(&g_messages, __ATOMIC_RELAXED);
    *compressions = __atomic_load_n(&g_compressions, __ATOMIC_RELAXED);
#else
    *messages = g_messages;
    *compressions = g_compressions;
#endif
}

/* ---------------------------------------------------------------------------------------------
 * Messages and lanes.
 */
typedef struct {
    const uint8_t *const *ptrs; /* per-message pointers, or NULL for the strided layout */
    const size_t *lens;
    const uint8_t *base;
    size_t stride;
    size_t len;
    int prefix;
    uint8_t *const *outs; /* per-message digest destinations, or NULL: out + 32 * i */
} source_t;

/* Where the digest of message i goes. */
static inline uint8_t *digest_at(const source_t *src, uint8_t *out, size_t i)
{
    return src->outs ? src->outs[i] : out + 32 * i;
}

typedef struct {
    uint32_t st[8];
    const uint8_t *data;
    size_t len;    /* data bytes */
    size_t total;  /* prefix + data bytes: the message length L of FIPS 180-4 */
    size_t block;  /* next block to compress */
    size_t blocks; /* blocks of the padded message */
    size_t index;  /* which message of the batch */
    int prefix;
    uint8_t buf[64];
} lane_t;

static void lane_start(lane_t *lane, const source_t *src, size_t index, int shani)
{
    if (src->ptrs) {
        lane->data = src->ptrs[index];
        lane->len = src->lens[index];
    } else {
        lane->data = src->base + index * src->stride;
        lane->len = src->len;
    }
    lane->prefix = src->prefix;
    lane->total = lane->len + (src->prefix >= 0 ? 1 : 0);
    /* FIPS 180-4 section 5.1.1: L bits, a 1 bit, zeros, a 64-bit length: ceil((L + 9) / 64). */
    lane->blocks = (lane->total + 72) / 64;
    lane->block = 0;
    lane->index = index;
#if MB_X86
    if (shani) {
        shani_state_in(lane->st, H0);
        return;
    }
#endif
    (void)shani;
    memcpy(lane->st, H0, sizeof H0);
}

/* The next 64-byte block of the lane's padded message: a pointer into the data when the block
 * is whole data bytes, otherwise assembled in lane->buf (prefix, tail, padding, length). */
static const uint8_t *lane_block(lane_t *lane)
{
    const size_t off = lane->block * 64; /* offset in the prefixed message stream */
    const size_t total = lane->total;
    if (lane->prefix < 0 && off + 64 <= total)
        return lane->data + off;
    uint8_t *buf = lane->buf;
    size_t have = 0;
    if (off < total) {
        have = total - off < 64 ? total - off : 64;
        if (lane->prefix < 0) {
            memcpy(buf, lane->data + off, have);
        } else if (off == 0) {
            buf[0] = (uint8_t)lane->prefix;
            if (have > 1)
                memcpy(buf + 1, lane->data, have - 1);
        } else {
            memcpy(buf, lane->data + off - 1, have);
        }
        if (have == 64)
            return buf;
    }
    memset(buf + have, 0, 64 - have);
    if (total >= off) /* the 1 bit right after the message, if it falls in this block */
        buf[total - off] = 0x80;
    if (lane->block + 1 == lane->blocks)
        store_be64(buf + 56, (uint64_t)total * 8);
    return buf;
}

/* Write the digest of a finished chaining state (in the layout of the path) to out[0..32). */
static void state_digest(const uint32_t st[8], uint8_t *out, int shani)
{
#if MB_X86
    if (shani) {
        shani_digest(st, out);
        return;
    }
#endif
    uint32_t natural[8];
#if MB_X86
    if (shani)
        shani_state_out(natural, st);
    else
#endif
        memcpy(natural, st, sizeof natural);
    (void)shani;
    for (int i = 0; i < 8; i++)
        store_be32(out + 4 * i, natural[i]);
}

static void lane_finish(const lane_t *lane, const source_t *src, uint8_t *out, int shani)
{
    state_digest(lane->st, digest_at(src, out, lane->index), shani);
}

/* Compress one block for each of k (1..4) independent states. */
static void compress_k(int k, uint32_t *st[4], const uint8_t *blk[4], int shani)
{
#if MB_X86
    if (shani) {
        if (k == 1) {
            shani_x1(st, blk);
        } else if (k == 2) {
            shani_x2(st, blk);
        } else {
            uint32_t spare_state[8] = {0};
            if (k == 3) { /* the spare lane absorbs the unused slot */
                st[3] = spare_state;
                blk[3] = blk[0];
            }
            shani_x4(st, blk);
        }
        return;
    }
#endif
    (void)shani;
    for (int i = 0; i < k; i++)
        portable_compress(st[i], blk[i]);
}

/* Copy bytes [from, from + n) of the prefixed message stream ([prefix] || data) to dst. */
static inline void copy_stream(uint8_t *dst, const uint8_t *data, int prefix, size_t from, size_t n)
{
    if (n == 0)
        return;
    if (prefix < 0) {
        memcpy(dst, data + from, n);
    } else if (from == 0) {
        dst[0] = (uint8_t)prefix;
        memcpy(dst + 1, data, n - 1);
    } else {
        memcpy(dst, data + from - 1, n);
    }
}

/* Messages of one length: groups of four hashed in lockstep without a scheduler. The padded tail
 * (last one or two blocks) differs between the messages only in its message bytes, so it is laid
 * out once as a template and each message copies in just its own tail bytes. */
static uint64_t run_fixed(const source_t *src, size_t count, size_t len, uint8_t *out)
{
    uint64_t done = 0; /* blocks compressed */
    const int shani = medbench_sha256_shani_enabled();
    const int prefix = src->prefix;
    const size_t total = len + (prefix >= 0 ? 1 : 0);
    const size_t blocks = (total + 72) / 64;
    const size_t whole = total / 64;          /* blocks made of message bytes only */
    const size_t tail_from = whole * 64;      /* stream offset of the tail */
    const size_t tail_len = total - tail_from; /* message bytes in the tail: 0..63 */
    const size_t tail_blocks = blocks - whole; /* 1 or 2 */
    uint8_t tmpl[128];
    memset(tmpl, 0, sizeof tmpl);
    tmpl[tail_len] = 0x80;
    store_be64(tmpl + 64 * tail_blocks - 8, (uint64_t)total * 8);
    uint32_t init[8];
#if MB_X86
    if (shani)
        shani_state_in(init, H0);
    else
#endif
        memcpy(init, H0, sizeof init);
    const int group = medbench_sha256_lanes();
#if MB_X86
    const int tail65 = shani && total == 65 && tail65_ready();
#else
    const int tail65 = 0;
#endif
    uint32_t states[4][8];
    uint8_t bufs[4][128];
    for (size_t i = 0; i < count; i += (size_t)group) {
        const size_t left = count - i;
        const int k = left < (size_t)group ? (int)left : group;
        if (k > 4) /* never: tells the compiler the lane arrays cannot be overrun */
            break;
        const uint8_t *data[4];
        uint32_t *st[4];
        const uint8_t *blk[4];
        for (int l = 0; l < k; l++) {
            data[l] = src->ptrs ? src->ptrs[i + l] : src->base + (i + l) * src->stride;
            memcpy(states[l], init, sizeof init);
        }
        for (size_t b = 0; b < whole; b++) {
            for (int l = 0; l < k; l++) {
                st[l] = states[l];
                if (prefix < 0) {
                    blk[l] = data[l] + 64 * b;
                } else {
                    /* constant-size copies: inlined, no library call */
                    if (b == 0) {
                        bufs[l][0] = (uint8_t)prefix;
                        memcpy(bufs[l] + 1, data[l], 63);
                    } else {
                        memcpy(bufs[l], data[l] + 64 * b - 1, 64);
                    }
                    blk[l] = bufs[l];
                }
            }
            compress_k(k, st, blk, shani);
            done += (uint64_t)k;
        }
        for (int l = 0; l < k && !tail65; l++) {
            if (tail_blocks == 1)
                memcpy(bufs[l], tmpl, 64);
            else
                memcpy(bufs[l], tmpl, 128);
            if (tail_len == 1 && tail_from > 0) /* e.g. a Merkle node's last byte */
                bufs[l][0] = data[l][tail_from - (prefix >= 0 ? 1 : 0)];
            else
                copy_stream(bufs[l], data[l], prefix, tail_from, tail_len);
        }
#if MB_X86
        if (tail65) {
            const uint32_t *wk[4];
            for (int l = 0; l < k; l++) {
                st[l] = states[l];
                wk[l] = g_tail65[data[l][64 - (prefix >= 0 ? 1 : 0)]];
            }
            if (k == 1) {
                shani_wk_x1(st, wk);
            } else if (k == 2) {
                shani_wk_x2(st, wk);
            } else {
                uint32_t spare_state[8] = {0};
                if (k == 3) {
                    st[3] = spare_state;
                    wk[3] = wk[0];
                }
                shani_wk_x4(st, wk);
            }
            done += (uint64_t)k;
            for (int l = 0; l < k; l++)
                state_digest(states[l], digest_at(src, out, i + l), shani);
            continue;
        }
#endif
        for (size_t t = 0; t < tail_blocks; t++) {
            for (int l = 0; l < k; l++) {
                st[l] = states[l];
                blk[l] = bufs[l] + 64 * t;
            }
            compress_k(k, st, blk, shani);
            done += (uint64_t)k;
        }
        for (int l = 0; l < k; l++)
            state_digest(states[l], digest_at(src, out, i + l), shani);
    }
    return done;
}

/* Hash every message of src: up to four lanes in flight, refilled as they finish. */
static uint64_t run_lanes(const source_t *src, size_t count, uint8_t *out)
{
    uint64_t done = 0;
    if (count == 0)
        return 0;
    const int shani = medbench_sha256_shani_enabled();
    const int nlanes = medbench_sha256_lanes();
    lane_t lanes[4];
    int busy[4] = {0, 0, 0, 0};
    size_t next = 0;
    for (int l = 0; l < nlanes && next < count; l++) {
        lane_start(&lanes[l], src, next++, shani);
        busy[l] = 1;
    }
    for (;;) {
        uint32_t *st[4];
        const uint8_t *blk[4];
        int k = 0;
        for (int l = 0; l < nlanes; l++) {
            if (busy[l]) {
                st[k] = lanes[l].st;
                blk[k] = lane_block(&lanes[l]);
                k++;
            }
        }
        if (k == 0)
            break;
        compress_k(k, st, blk, shani);
        done += (uint64_t)k;
        for (int l = 0; l < nlanes; l++) {
            if (!busy[l])
                continue;
            lane_t *lane = &lanes[l];
            if (++lane->block < lane->blocks)
                continue;
            lane_finish(lane, src, out, shani);
            if (next < count)
                lane_start(lane, src, next++, shani);
            else
                busy[l] = 0;
        }
    }
    return done;
}

/* Hash already padded blocks as one message: the short single messages of proof checking. */
static uint64_t hash_padded(const uint8_t *blocks, size_t nblocks, uint8_t *out)
{
    const int shani = medbench_sha256_shani_enabled();
    uint32_t st[8];
    uint32_t *stp[4] = {st, NULL, NULL, NULL};
    const uint8_t *blk[4] = {NULL, NULL, NULL, NULL};
#if MB_X86
    if (shani)
        shani_state_in(st, H0);
    else
#endif
        memcpy(st, H0, sizeof st);
    for (size_t b = 0; b < nblocks; b++) {
        blk[0] = blocks + 64 * b;
        compress_k(1, stp, blk, shani);
    }
    state_digest(st, out, shani);
    return nblocks;
}

/* One message of at most 119 bytes (prefix included): padded on the stack, no lane machinery. */
static uint64_t run_short(const uint8_t *data, size_t len, int prefix, uint8_t *out)
{
    uint8_t blocks[128];
    const size_t total = len + (prefix >= 0 ? 1 : 0);
    const size_t nblocks = (total + 72) / 64;
    memset(blocks, 0, sizeof blocks);
    copy_stream(blocks, data, prefix, 0, total);
    blocks[total] = 0x80;
    store_be64(blocks + 64 * nblocks - 8, (uint64_t)total * 8);
    return hash_padded(blocks, nblocks, out);
}

/* Hash every message of src; counts the messages and the blocks compressed. */
static void run_batch(const source_t *src, size_t count, uint8_t *out)
{
    uint64_t done;
    if (count == 0)
        return;
    if (count == 1 && (src->ptrs ? src->lens[0] : src->len) + 1 <= 119) {
        done = run_short(src->ptrs ? src->ptrs[0] : src->base, src->ptrs ? src->lens[0] : src->len,
                         src->prefix, digest_at(src, out, 0));
    } else if (!src->ptrs) {
        done = run_fixed(src, count, src->len, out);
    } else {
        size_t i = 1;
        while (i < count && src->lens[i] == src->lens[0])
            i++;
        if (i == count && count > 1)
            done = run_fixed(src, count, src->lens[0], out);
        else
            done = run_lanes(src, count, out);
    }
    count_work(count, done);
}

void medbench_sha256(const uint8_t *data, size_t len, uint8_t out[MEDBENCH_SHA256_DIGEST])
{
    const uint8_t *ptrs[1] = {data};
    size_t lens[1] = {len};
    source_t src = {ptrs, lens, NULL, 0, 0, MEDBENCH_SHA256_NO_PREFIX, NULL};
    run_batch(&src, 1, out);
}

void medbench_sha256_node(const uint8_t *left, const uint8_t *right,
                          uint8_t out[MEDBENCH_SHA256_DIGEST])
{
    uint8_t blocks[128];
    blocks[0] = 0x01;
    memcpy(blocks + 1, left, 32);
    memcpy(blocks + 33, right, 32);
    blocks[65] = 0x80;
    memset(blocks + 66, 0, 128 - 66);
    store_be64(blocks + 120, 65 * 8);
    count_work(1, hash_padded(blocks, 2, out));
}

void medbench_sha256_batch(const uint8_t *const *ptrs, const size_t *lens, size_t count,
                           int prefix, uint8_t *out)
{
    source_t src = {ptrs, lens, NULL, 0, 0, prefix, NULL};
    run_batch(&src, count, out);
}

void medbench_sha256_batch_into(const uint8_t *const *ptrs, const size_t *lens, size_t count,
                                int prefix, uint8_t *const *outs)
{
    source_t src = {ptrs, lens, NULL, 0, 0, prefix, outs};
    run_batch(&src, count, NULL);
}

void medbench_sha256_strided(const uint8_t *base, size_t stride, size_t len, size_t count,
                             int prefix, uint8_t *out)
{
    source_t src = {NULL, NULL, base, stride, len, prefix, NULL};
    run_batch(&src, count, out);
}
