// Dequantizing matrix-vector product for up to NT tokens at once: out[t][r] = W[r] . x[t].
// One warp per weight row, MATVEC_ROWS rows per block. Lanes walk the row's units (see common.cuh) with a stride of
// 32, so a warp reads a contiguous stretch of the row per step; each decoded unit is reused for all NT tokens, so the
// weight is read once per launch however many tokens there are. x and out rows are `cols` and `rows` floats apart.
//
// One launch may cover up to three weights of the same format and width that read the same x ("segments": Q, K and V,
// or gate and up), and finish with an epilogue instead of a separate elementwise kernel:
//   MATVEC_STORE    out_s[t][r] = W_s[r] . x[t] for every segment s
//   MATVEC_RESIDUAL one segment; also acc[t][r] += that value (the residual connection, acc is [t][rows0])
//   MATVEC_SWIGLU   two segments of equal rows (gate, up), walked together by one warp per row r:
//                   out0[t][r] = silu(g) * u, out1[t][r] = u (what swiglu leaves in gate and up)
#pragma once
#include "common.cuh"

#define MATVEC_ROWS 4
#define MATVEC_STORE 0
#define MATVEC_RESIDUAL 1
#define MATVEC_SWIGLU 2

// Adds decoded values v (runs starting at start[]) of one weight row times the NT token rows into acc.
template <class Fmt, int NT>
static __device__ __forceinline__ void matvec_fma(const float* v, const int* start, const float* const* xt, float (&acc)[NT]) {
#pragma unroll
    for (int r = 0; r < Fmt::RUNS; r++) {
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float4 xv = *(const float4*) (xt[t] + start[r]);
            acc[t] += v[4 * r] * xv.x + v[4 * r + 1] * xv.y + v[4 * r + 2] * xv.z + v[4 * r + 3] * xv.w;
        }
    }
}

// Adds the dot products of unit u of K weight rows with the NT token rows into acc.
template <class Fmt, int NT, int K>
static __device__ __forceinline__ void matvec_unit(const uint8_t* const* wr, const float* const* xt, int u,
                                                   float (&acc)[K][NT]) {
#pragma unroll
    for (int k = 0; k < K; k++) {
        float v[Fmt::RUNS * 4];
        int start[Fmt::RUNS];
        Fmt::load(wr[k], u, v, start);
        matvec_fma<Fmt, NT>(v, start, xt, acc[k]);
    }
}

// Formats with a separate raw fetch (FmtF16x8) get their U units' loads issued first, then decoded.
template <class Fmt, class = void> struct HasRawFetch { static constexpr bool value = false; };
template <class Fmt> struct HasRawFetch<Fmt, decltype((void) sizeof(typename Fmt::Raw))> { static constexpr bool value = true; };

template <class Fmt, int NT, int K, int U>
static __device__ __forceinline__ void matvec_step(const uint8_t* const* wr, const float* const* xt, int u, int stride,
                                                   float (&acc)[K][NT]) {
    if constexpr (HasRawFetch<Fmt>::value) {
        typename Fmt::Raw raw[U][K];
#pragma unroll
        for (int i = 0; i < U; i++)
#pragma unroll
            for (int k = 0; k < K; k++) raw[i][k] = Fmt::fetch(wr[k], u + stride * i);
#pragma unroll
        for (int i = 0; i < U; i++)
#pragma unroll
            for (int k = 0; k < K; k++) {
                float v[Fmt::RUNS * 4];
                int start[Fmt::RUNS];
                Fmt::decode(raw[i][k], u + stride * i, v, start);
                matvec_fma<Fmt, NT>(v, start, xt, acc[k]);
            }
    } else {
#pragma unroll
        for (int i = 0; i < U; i++) matvec_unit<Fmt, NT, K>(wr, xt, u + stride * i, acc);
    }
}

// Part `part` of `split` of row `row` of K weights (wr[k] points at the row) against NT tokens: the split warps of
// a row take turns at 32-unit stretches, so together they still read the row front to back. Every lane gets the
// part's sums.
template <class Fmt, int NT, int K>
static __device__ __forceinline__ void matvec_row(const uint8_t* const* wr, const float* __restrict__ x, int cols,
                                                  int numTokens, int part, int split, float (&acc)[K][NT]) {
    // Units per lane per unrolled step: enough independent weight loads in flight to cover HBM latency (a warp with
    // one load outstanding per lane left the small matrices of a decode step latency bound), fewer when many tokens
    // or wide units already give each lane plenty of registers to fill.
    constexpr int U = NT >= 8 ? (K == 1 ? 2 : 1) : (NT <= 2 && Fmt::RUNS <= 2) ? 8 / K : 4 / K;
    int lane = threadIdx.x % WARP;
    int numUnits = cols / Fmt::BLOCK * Fmt::UNITS_PER_BLOCK;
    const float* xt[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) xt[t] = x + (long long) min(t, numTokens - 1) * cols;  // spare lanes re-read a live row
#pragma unroll
    for (int k = 0; k < K; k++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[k][t] = 0.f;
    int stride = WARP * split;
    int u = part * WARP + lane;
    // Full steps without bounds checks, so the U loads of a step are issued before the first is used.
    for (; u + stride * (U - 1) < numUnits; u += stride * U) {
        matvec_step<Fmt, NT, K, U>(wr, xt, u, stride, acc);
    }
    for (; u < numUnits; u += stride) matvec_unit<Fmt, NT, K>(wr, xt, u, acc);
#pragma unroll
    for (int k = 0; k < K; k++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[k][t] = warp_sum(acc[k][t]);
}

// Sums the split parts of each row in shared memory; part 0's warp ends with the row's totals. Called by every
// thread of the block (split is the same for the whole launch, so the barrier is uniform).
template <int NT, int K>
static __device__ __forceinline__ void matvec_split_sum(float (&s)[K][NT], int split) {
    __shared__ float red[MATVEC_ROWS][K][NT];
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    if (lane == 0)
#pragma unroll
        for (int k = 0; k < K; k++)
#pragma unroll
            for (int t = 0; t < NT; t++) red[warp][k][t] = s[k][t];
    __syncthreads();
    if (warp % split != 0) return;
#pragma unroll
    for (int k = 0; k < K; k++)
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float v = 0.f;
            for (int p = 0; p < split; p++) v += red[warp + p][k][t];
            s[k][t] = v;
        }
}

// split (1, 2 or 4) warps share a row: a block covers MATVEC_ROWS / split rows. Long rows (the FFN down projection)
// are split so each warp's loads are in flight at once instead of in several round trips.
template <class Fmt, int NT>
static __device__ __forceinline__ void matvec_body(const uint8_t* __restrict__ w0, float* __restrict__ out0, int rows0,
        const uint8_t* __restrict__ w1, float* __restrict__ out1, int rows1,
        const uint8_t* __restrict__ w2, float* __restrict__ out2, int rows2,
        float* __restrict__ acc, int mode, const float* __restrict__ x, int cols, int numTokens, int split,
        int prefetchBytes) {
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    int part = warp % split, rowsPerBlock = MATVEC_ROWS / split;
    long long rowBytes = (long long) (cols / Fmt::BLOCK) * Fmt::BLOCK_BYTES;
    int row = blockIdx.x * rowsPerBlock + warp / split;
    long long head = min(rowBytes, (long long) prefetchBytes);  // leading bytes of each row to prefetch
    if (mode == MATVEC_SWIGLU) {
        bool live = row < rows0;
        // Weights never depend on an earlier kernel: pull the head of this block's rows into L2 while the previous
        // kernel finishes, then wait for it (x and acc are its outputs).
        if (live) {
            prefetch_l2(w0 + row * rowBytes, head, part * WARP + lane, split * WARP);
            prefetch_l2(w1 + row * rowBytes, head, part * WARP + lane, split * WARP);
        }
        kernel_enter();
        float s[2][NT];
        if (live) {
            const uint8_t* wr[2] = {w0 + row * rowBytes, w1 + row * rowBytes};
            matvec_row<Fmt, NT, 2>(wr, x, cols, numTokens, part, split, s);
        }
        if (split > 1) matvec_split_sum<NT, 2>(s, split);
        if (!live || part != 0 || lane != 0) return;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= numTokens) break;
            float g = s[0][t], up = s[1][t];
            out0[(long long) t * rows0 + row] = g / (1.f + expf(-g)) * up;  // as in swiglu.cu
            out1[(long long) t * rows0 + row] = up;
        }
        return;
    }
    // Which segment this block's rows belong to: blocks [0, b0) are W0's, then W1's, then W2's.
    int b0 = (rows0 + rowsPerBlock - 1) / rowsPerBlock, b1 = (rows1 + rowsPerBlock - 1) / rowsPerBlock;
    const uint8_t* w = w0;
    float* out = out0;
    int rows = rows0;
    if ((int) blockIdx.x >= b0 + b1) { w = w2; out = out2; rows = rows2; row -= (b0 + b1) * rowsPerBlock; }
    else if ((int) blockIdx.x >= b0) { w = w1; out = out1; rows = rows1; row -= b0 * rowsPerBlock; }
    bool live = row < rows;
    if (live) prefetch_l2(w + row * rowBytes, head, part * WARP + lane, split * WARP);
    kernel_enter();
    float s[1][NT];
    if (live) {
        const uint8_t* wr[1] = {w + row * rowBytes};
        matvec_row<Fmt, NT, 1>(wr, x, cols, numTokens, part, split, s);
    }
    if (split > 1) matvec_split_sum<NT, 1>(s, split);
    if (!live || part != 0 || lane != 0) return;
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t >= numTokens) break;
        out[(long long) t * rows + row] = s[0][t];
        if (mode == MATVEC_RESIDUAL) acc[(long long) t * rows + row] += s[0][t];
    }
}

// One kernel per format and token tier (1, 2, 4, 8, 16); the host picks the smallest tier >= numTokens. Wide is a
// format reading more values per load, used when cols allows (F16: 8 per 16-byte load); Fmt itself otherwise.
#define MATVEC_ARGS const uint8_t* w0, float* out0, int rows0, const uint8_t* w1, float* out1, int rows1, \
                    const uint8_t* w2, float* out2, int rows2, float* acc, int mode, const float* x, int cols, int n, \
                    int split, int prefetchBytes
#define MATVEC_KERNEL(name, Fmt, Wide, NT)                                                                            \
    extern "C" __global__ void __launch_bounds__(MATVEC_ROWS * WARP) name(MATVEC_ARGS) {                            \
        if (Wide::BLOCK != Fmt::BLOCK && cols % Wide::BLOCK == 0)                                                   \
            matvec_body<Wide, NT>(w0, out0, rows0, w1, out1, rows1, w2, out2, rows2, acc, mode, x, cols, n, split, prefetchBytes); \
        else                                                                                                        \
            matvec_body<Fmt, NT>(w0, out0, rows0, w1, out1, rows1, w2, out2, rows2, acc, mode, x, cols, n, split, prefetchBytes); \
    }
#define MATVEC_KERNELS_WIDE(name, Fmt, Wide)  \
    MATVEC_KERNEL(name##_1, Fmt, Wide, 1)     \
    MATVEC_KERNEL(name##_2, Fmt, Wide, 2)     \
    MATVEC_KERNEL(name##_4, Fmt, Wide, 4)     \
    MATVEC_KERNEL(name##_8, Fmt, Wide, 8)     \
    MATVEC_KERNEL(name##_16, Fmt, Wide, 16)
#define MATVEC_KERNELS(name, Fmt) MATVEC_KERNELS_WIDE(name, Fmt, Fmt)
