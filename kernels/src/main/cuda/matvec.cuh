// Dequantizing matrix-vector product for up to NT tokens at once: out[t][r] = W[r] . x[t].
// One warp per weight row, MATVEC_ROWS rows per block. Lanes walk the row's units (see common.cuh) with a stride of
// 32, so a warp reads a contiguous stretch of the row per step; each decoded unit is reused for all NT tokens, so the
// weight is read once per launch however many tokens there are. x and out rows are `cols` and `rows` floats apart.
#pragma once
#include "common.cuh"

#define MATVEC_ROWS 4

template <class Fmt, int NT>
static __device__ __forceinline__ void matvec_body(const uint8_t* __restrict__ w, const float* __restrict__ x,
                                                   float* __restrict__ out, int rows, int cols, int numTokens) {
    int lane = threadIdx.x % WARP;
    int row = blockIdx.x * MATVEC_ROWS + threadIdx.x / WARP;
    if (row >= rows) return;
    long long rowBytes = (long long) (cols / Fmt::BLOCK) * Fmt::BLOCK_BYTES;
    const uint8_t* wr = w + row * rowBytes;
    int numUnits = cols / Fmt::BLOCK * Fmt::UNITS_PER_BLOCK;
    const float* xt[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) xt[t] = x + (long long) min(t, numTokens - 1) * cols;  // spare lanes re-read a live row
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
    // Unrolled so each lane has several independent weight loads in flight: a 2048-column row is only 16 warp
    // steps long, and with one load outstanding per lane the small matrices of a decode step were latency bound.
#pragma unroll 4
    for (int u = lane; u < numUnits; u += WARP) {
        float v[Fmt::RUNS * 4];
        int start[Fmt::RUNS];
        Fmt::load(wr, u, v, start);
#pragma unroll
        for (int r = 0; r < Fmt::RUNS; r++) {
#pragma unroll
            for (int t = 0; t < NT; t++) {
                float4 xv = *(const float4*) (xt[t] + start[r]);
                acc[t] += v[4 * r] * xv.x + v[4 * r + 1] * xv.y + v[4 * r + 2] * xv.z + v[4 * r + 3] * xv.w;
            }
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float s = warp_sum(acc[t]);
        if (lane == 0 && t < numTokens) out[(long long) t * rows + row] = s;
    }
}

// One kernel per format and token tier (1, 2, 4, 8, 16); the host picks the smallest tier >= numTokens.
#define MATVEC_KERNELS(name, Fmt)                                                                              \
    extern "C" __global__ void __launch_bounds__(MATVEC_ROWS * WARP) name##_1(const uint8_t* w, const float* x, float* out, int rows, int cols, int n) { matvec_body<Fmt, 1>(w, x, out, rows, cols, n); } \
    extern "C" __global__ void __launch_bounds__(MATVEC_ROWS * WARP) name##_2(const uint8_t* w, const float* x, float* out, int rows, int cols, int n) { matvec_body<Fmt, 2>(w, x, out, rows, cols, n); } \
    extern "C" __global__ void __launch_bounds__(MATVEC_ROWS * WARP) name##_4(const uint8_t* w, const float* x, float* out, int rows, int cols, int n) { matvec_body<Fmt, 4>(w, x, out, rows, cols, n); } \
    extern "C" __global__ void __launch_bounds__(MATVEC_ROWS * WARP) name##_8(const uint8_t* w, const float* x, float* out, int rows, int cols, int n) { matvec_body<Fmt, 8>(w, x, out, rows, cols, n); } \
    extern "C" __global__ void __launch_bounds__(MATVEC_ROWS * WARP) name##_16(const uint8_t* w, const float* x, float* out, int rows, int cols, int n) { matvec_body<Fmt, 16>(w, x, out, rows, cols, n); }
