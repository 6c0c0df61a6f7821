// embed_<format>: out[t] = row tokens[t] of the embedding table, dequantized to F32. One block per token; token ids
// come from the staging buffer so a replayed graph reads the step's tokens.
#include "common.cuh"

template <class Fmt>
static __device__ __forceinline__ void embed_body(const uint8_t* table, const uint8_t* staging, int maxTokens,
                                                  float* out, int cols) {
    kernel_enter();
    Staging st = staging_view(staging, maxTokens);
    int t = blockIdx.x;
    long long rowBytes = (long long) (cols / Fmt::BLOCK) * Fmt::BLOCK_BYTES;
    const uint8_t* row = table + st.tokens[t] * rowBytes;
    float* o = out + (long long) t * cols;
    int numUnits = cols / Fmt::BLOCK * Fmt::UNITS_PER_BLOCK;
    for (int u = threadIdx.x; u < numUnits; u += blockDim.x) {
        float v[Fmt::RUNS * 4];
        int start[Fmt::RUNS];
        Fmt::load(row, u, v, start);
#pragma unroll
        for (int r = 0; r < Fmt::RUNS; r++)
            *(float4*) (o + start[r]) = make_float4(v[4 * r], v[4 * r + 1], v[4 * r + 2], v[4 * r + 3]);
    }
}

#define EMBED_KERNEL(name, Fmt) \
    extern "C" __global__ void name(const uint8_t* table, const uint8_t* staging, int maxTokens, float* out, int cols) { embed_body<Fmt>(table, staging, maxTokens, out, cols); }

EMBED_KERNEL(embed_f32, FmtF32)
EMBED_KERNEL(embed_f16, FmtF16)
EMBED_KERNEL(embed_bf16, FmtBf16)
EMBED_KERNEL(embed_q8_0, FmtQ8_0)
EMBED_KERNEL(embed_q4_0, FmtQ4_0)
EMBED_KERNEL(embed_q4_k, FmtQ4K)
EMBED_KERNEL(embed_q6_k, FmtQ6K)
