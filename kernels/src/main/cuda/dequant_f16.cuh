// Dequantizes a whole GGUF weight [rows][cols] into row-major F16, the input cuBLAS GEMM takes for prefill.
// One thread per unit (see common.cuh); consecutive threads take consecutive units, so reads are contiguous.
#pragma once
#include "common.cuh"

template <class Fmt>
static __device__ __forceinline__ void dequant_f16_body(const uint8_t* __restrict__ w, __half* __restrict__ out,
                                                        int rows, int cols) {
    kernel_enter();
    long long unitsPerRow = (long long) cols / Fmt::BLOCK * Fmt::UNITS_PER_BLOCK;
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= unitsPerRow * rows) return;
    long long row = i / unitsPerRow;
    int u = (int) (i % unitsPerRow);
    long long rowBytes = (long long) (cols / Fmt::BLOCK) * Fmt::BLOCK_BYTES;
    float v[Fmt::RUNS * 4];
    int start[Fmt::RUNS];
    Fmt::load(w + row * rowBytes, u, v, start);
    __half* o = out + row * cols;
#pragma unroll
    for (int r = 0; r < Fmt::RUNS; r++) {
        __half2 a = __floats2half2_rn(v[4 * r], v[4 * r + 1]), b = __floats2half2_rn(v[4 * r + 2], v[4 * r + 3]);
        __half2* dst = (__half2*) (o + start[r]);  // start is a multiple of 4, cols of 4: 8-byte aligned
        dst[0] = a;
        dst[1] = b;
    }
}

#define DEQUANT_F16_KERNEL(name, Fmt) \
    extern "C" __global__ void name(const uint8_t* w, __half* out, int rows, int cols) { dequant_f16_body<Fmt>(w, out, rows, cols); }
