// Shared by every Tessera kernel: GGUF block layouts, half/bfloat16 decoding, warp reductions.
// Weights stay in GGUF block layout on the device, byte for byte as in the file, so blocks are only as aligned as
// their size allows: Q8_0 (34 B), Q4_0 (18 B) and Q6_K (210 B) blocks are 2-byte aligned, Q4_K (144 B) 16-byte.
#pragma once
#include <cuda_fp16.h>
#include <stdint.h>

#define WARP 32

// Programmatic dependent launch (sm_90 on; the host sets the launch attribute, see CudaKernels): a kernel may start
// while the previous kernel in the stream still runs. Every kernel calls kernel_enter() before it reads or writes
// anything another kernel touches: it waits until the previous kernel has finished and its writes are visible, then
// lets the next kernel launch, so at most one kernel runs ahead and it can only prefetch weights. Launched without
// the attribute (or built for sm_80), both instructions are no-ops.
static __device__ __forceinline__ void kernel_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Pulls bytes [p, p + n) into L2 with one instruction per 128-byte line, spread over `count` threads (this is thread
// `index`): a hint, it changes no values.
static __device__ __forceinline__ void prefetch_l2(const uint8_t* p, long long n, int index, int count) {
    for (long long off = (long long) index * 128; off < n; off += (long long) count * 128)
        asm volatile("prefetch.global.L2 [%0];" :: "l"(p + off));
}

static __device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

static __device__ __forceinline__ float f16_at(const uint8_t* p) {
    return __half2float(__ushort_as_half(*(const uint16_t*) p));
}

static __device__ __forceinline__ float bf16_bits(uint32_t bits16) {
    return __uint_as_float(bits16 << 16);
}

// Four bytes at a 2-byte aligned address, little-endian.
static __device__ __forceinline__ uint32_t u32_at2(const uint8_t* p) {
    const uint16_t* s = (const uint16_t*) p;
    return (uint32_t) s[0] | ((uint32_t) s[1] << 16);
}

// Every format is read in "units": a unit is RUNS runs of 4 consecutive values that one thread decodes together.
// load(row, u, v, start) decodes unit u of a row into v[RUNS*4] and gives each run's first column in start[].
// UNITS_PER_BLOCK units cover one GGUF block of BLOCK values (BLOCK_BYTES bytes).

struct FmtF32 {  // plain floats, unit = 4 values (one 16-byte load)
    static constexpr int BLOCK = 4, BLOCK_BYTES = 16, RUNS = 1, UNITS_PER_BLOCK = 1;
    static __device__ __forceinline__ void load(const uint8_t* row, int u, float* v, int* start) {
        float4 f = ((const float4*) row)[u];
        v[0] = f.x; v[1] = f.y; v[2] = f.z; v[3] = f.w;
        start[0] = 4 * u;
    }
};

struct FmtF16 {  // IEEE half, unit = 4 values (8-byte load)
    static constexpr int BLOCK = 4, BLOCK_BYTES = 8, RUNS = 1, UNITS_PER_BLOCK = 1;
    static __device__ __forceinline__ void load(const uint8_t* row, int u, float* v, int* start) {
        uint2 b = ((const uint2*) row)[u];
        float2 lo = __half22float2(*(const __half2*) &b.x), hi = __half22float2(*(const __half2*) &b.y);
        v[0] = lo.x; v[1] = lo.y; v[2] = hi.x; v[3] = hi.y;
        start[0] = 4 * u;
    }
};

// IEEE half read 8 values (one 16-byte load) at a time: what the matvec uses when cols is a multiple of 8, so a warp
// moves 512 bytes of weight per step instead of 256. Split into fetch (the raw load, streamed past the caches: each
// weight byte is read once per step) and decode, so the matvec can issue all of a step's loads before using any.
struct FmtF16x8 {
    static constexpr int BLOCK = 8, BLOCK_BYTES = 16, RUNS = 2, UNITS_PER_BLOCK = 1;
    using Raw = uint4;
    static __device__ __forceinline__ Raw fetch(const uint8_t* row, int u) {
        return __ldcs((const uint4*) row + u);
    }
    static __device__ __forceinline__ void decode(Raw b, int u, float* v, int* start) {
        float2 a0 = __half22float2(*(const __half2*) &b.x), a1 = __half22float2(*(const __half2*) &b.y);
        float2 a2 = __half22float2(*(const __half2*) &b.z), a3 = __half22float2(*(const __half2*) &b.w);
        v[0] = a0.x; v[1] = a0.y; v[2] = a1.x; v[3] = a1.y;
        v[4] = a2.x; v[5] = a2.y; v[6] = a3.x; v[7] = a3.y;
        start[0] = 8 * u;
        start[1] = 8 * u + 4;
    }
    static __device__ __forceinline__ void load(const uint8_t* row, int u, float* v, int* start) {
        decode(fetch(row, u), u, v, start);
    }
};

struct FmtBf16 {  // bfloat16 = high half of a float, unit = 4 values (8-byte load)
    static constexpr int BLOCK = 4, BLOCK_BYTES = 8, RUNS = 1, UNITS_PER_BLOCK = 1;
    static __device__ __forceinline__ void load(const uint8_t* row, int u, float* v, int* start) {
        uint2 b = ((const uint2*) row)[u];
        v[0] = bf16_bits(b.x & 0xffff); v[1] = bf16_bits(b.x >> 16);
        v[2] = bf16_bits(b.y & 0xffff); v[3] = bf16_bits(b.y >> 16);
        start[0] = 4 * u;
    }
};

// block_q8_0: f16 d; int8 qs[32]. value j = d * qs[j]. Unit = 8 values (4 units per block).
struct FmtQ8_0 {
    static constexpr int BLOCK = 32, BLOCK_BYTES = 34, RUNS = 2, UNITS_PER_BLOCK = 4;
    static __device__ __forceinline__ void load(const uint8_t* row, int u, float* v, int* start) {
        int b = u >> 2, p = u & 3;
        const uint8_t* blk = row + BLOCK_BYTES * b;
        float d = f16_at(blk);
        uint32_t w0 = u32_at2(blk + 2 + 8 * p), w1 = u32_at2(blk + 6 + 8 * p);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            v[i] = d * (float) (int8_t) (w0 >> (8 * i));
            v[4 + i] = d * (float) (int8_t) (w1 >> (8 * i));
        }
        start[0] = BLOCK * b + 8 * p;
        start[1] = BLOCK * b + 8 * p + 4;
    }
};

// block_q4_0: f16 d; u8 qs[16]. value j (j < 16) = d * ((qs[j] & 15) - 8), value j + 16 = d * ((qs[j] >> 4) - 8).
// Unit p (4 per block) takes qs[4p .. 4p+4): values 4p..4p+3 and 16+4p..16+4p+3.
struct FmtQ4_0 {
    static constexpr int BLOCK = 32, BLOCK_BYTES = 18, RUNS = 2, UNITS_PER_BLOCK = 4;
    static __device__ __forceinline__ void load(const uint8_t* row, int u, float* v, int* start) {
        int b = u >> 2, p = u & 3;
        const uint8_t* blk = row + BLOCK_BYTES * b;
        float d = f16_at(blk);
        uint32_t q = u32_at2(blk + 2 + 4 * p);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint32_t byte = (q >> (8 * i)) & 0xff;
            v[i] = d * (float) ((int) (byte & 15) - 8);
            v[4 + i] = d * (float) ((int) (byte >> 4) - 8);
        }
        start[0] = BLOCK * b + 4 * p;
        start[1] = BLOCK * b + 16 + 4 * p;
    }
};

// block_q4_K: f16 d; f16 dmin; u8 scales[12]; u8 qs[128]. Eight sub-blocks of 32 values have 6-bit scale sc and
// min m packed in scales (ggml get_scale_min_k4); value = d*sc*q - dmin*m. Sub-blocks 2c, 2c+1 take the low and high
// nibbles of qs[32c .. 32c+32). Unit (8 per block) = chunk c, half h: qs[32c+16h .. +16) -> values
// 64c+16h+l (low nibble, sub-block 2c) and 64c+32+16h+l (high nibble, sub-block 2c+1), l < 16.
static __device__ __forceinline__ void q4k_scale_min(const uint8_t* s, int j, int* sc, int* m) {
    if (j < 4) { *sc = s[j] & 63; *m = s[j + 4] & 63; }
    else { *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4); *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4); }
}

struct FmtQ4K {
    static constexpr int BLOCK = 256, BLOCK_BYTES = 144, RUNS = 8, UNITS_PER_BLOCK = 8;
    static __device__ __forceinline__ void load(const uint8_t* row, int u, float* v, int* start) {
        int b = u >> 3, c = (u >> 1) & 3, h = u & 1;
        const uint8_t* blk = row + BLOCK_BYTES * b;
        float d = f16_at(blk), dmin = f16_at(blk + 2);
        int sc0, m0, sc1, m1;
        q4k_scale_min(blk + 4, 2 * c, &sc0, &m0);
        q4k_scale_min(blk + 4, 2 * c + 1, &sc1, &m1);
        float d0 = d * sc0, mm0 = dmin * m0, d1 = d * sc1, mm1 = dmin * m1;
        uint4 q = *(const uint4*) (blk + 16 + 32 * c + 16 * h);  // 16-byte aligned: blocks are 144 bytes
        uint32_t words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int i = 0; i < 16; i++) {
            uint32_t byte = (words[i >> 2] >> (8 * (i & 3))) & 0xff;
            v[i] = d0 * (float) (byte & 15) - mm0;
            v[16 + i] = d1 * (float) (byte >> 4) - mm1;
        }
        int base = BLOCK * b + 64 * c + 16 * h;
#pragma unroll
        for (int r = 0; r < 4; r++) { start[r] = base + 4 * r; start[4 + r] = base + 32 + 4 * r; }
    }
};

// block_q6_K: u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d. Half h (128 values) uses ql[64h..], qh[32h..],
// scales[8h..]; for l < 32, values 128h + 32k + l (k = 0..3) take the low nibble of ql[l], ql[l+32], then the high
// nibbles, with bits 2k..2k+1 of qh[l] on top, minus 32; value = d * scales[8h + l/16 + 2k] * q.
// Unit (16 per block) = half h, l0 = 4j (j < 8): values 128h + 32k + l0 .. +4 for k = 0..3.
struct FmtQ6K {
    static constexpr int BLOCK = 256, BLOCK_BYTES = 210, RUNS = 4, UNITS_PER_BLOCK = 16;
    static __device__ __forceinline__ void load(const uint8_t* row, int u, float* v, int* start) {
        int b = u >> 4, h = (u >> 3) & 1, l0 = 4 * (u & 7);
        const uint8_t* blk = row + BLOCK_BYTES * b;
        float d = f16_at(blk + 208);
        uint32_t qa = u32_at2(blk + 64 * h + l0), qb = u32_at2(blk + 64 * h + 32 + l0);
        uint32_t qh = u32_at2(blk + 128 + 32 * h + l0);
        const int8_t* sc = (const int8_t*) (blk + 192 + 8 * h + l0 / 16);
        float s0 = d * sc[0], s1 = d * sc[2], s2 = d * sc[4], s3 = d * sc[6];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            uint32_t a = (qa >> (8 * i)) & 0xff, bb = (qb >> (8 * i)) & 0xff, hb = (qh >> (8 * i)) & 0xff;
            v[i]      = s0 * (float) ((int) ((a & 15) | ((hb & 3) << 4)) - 32);
            v[4 + i]  = s1 * (float) ((int) ((bb & 15) | (((hb >> 2) & 3) << 4)) - 32);
            v[8 + i]  = s2 * (float) ((int) ((a >> 4) | (((hb >> 4) & 3) << 4)) - 32);
            v[12 + i] = s3 * (float) ((int) ((bb >> 4) | (((hb >> 6) & 3) << 4)) - 32);
        }
        int base = BLOCK * b + 128 * h + l0;
#pragma unroll
        for (int k = 0; k < 4; k++) start[k] = base + 32 * k;
    }
};

// Staged per-token data for one step, written by the host before the kernels (or a replayed graph) run.
// Layout of the staging buffer for maxTokens M (offsets in bytes):
//   int64 cache_base[M]  device address of the token's KV cache (K for all layers, then V)
//   int64 block_table[M] device address of the sequence's int block table
//   int32 num_blocks[M]  blocks per layer in that cache
//   int32 positions[M]
//   int32 tokens[M]
struct Staging {
    const long long* cache_base;
    const long long* block_table;
    const int* num_blocks;
    const int* positions;
    const int* tokens;
};

static __device__ __forceinline__ Staging staging_view(const uint8_t* s, int maxTokens) {
    Staging v;
    v.cache_base = (const long long*) s;
    v.block_table = (const long long*) (s + 8LL * maxTokens);
    v.num_blocks = (const int*) (s + 16LL * maxTokens);
    v.positions = (const int*) (s + 20LL * maxTokens);
    v.tokens = (const int*) (s + 24LL * maxTokens);
    return v;
}

#define KV_BLOCK 16

// Address of the K (or V, when is_value) row of position pos of a sequence's cache, layer `layer`.
// Cache layout: [2][numLayers][numBlocks][KV_BLOCK][kvDim] elements of T (float, or __half for an F16 store);
// block_table maps logical to physical blocks. A private cache owns its numBlocks; a shared store's numBlocks is the
// pool size, and each sequence's table picks its blocks out of it.
template <class T>
static __device__ __forceinline__ T* kv_row(const Staging& st, int t, int layer, int numLayers, int kvDim,
                                            int pos, int is_value) {
    T* base = (T*) st.cache_base[t];
    const int* table = (const int*) st.block_table[t];
    long long nb = st.num_blocks[t];
    long long phys = table[pos / KV_BLOCK];
    long long rowIdx = (((long long) is_value * numLayers + layer) * nb + phys) * KV_BLOCK + pos % KV_BLOCK;
    return base + rowIdx * kvDim;
}

// Cached element <-> float: an F16 store keeps halves (rounded to nearest even) and computes in float.
static __device__ __forceinline__ float kv_get(float v) { return v; }
static __device__ __forceinline__ float kv_get(__half v) { return __half2float(v); }
static __device__ __forceinline__ void kv_put(float* p, float v) { *p = v; }
static __device__ __forceinline__ void kv_put(__half* p, float v) { *p = __float2half_rn(v); }
