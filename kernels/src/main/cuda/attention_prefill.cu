// attention_prefill_<f32|f16>: causal attention for a batch whose tokens all belong to ONE sequence (the host checks).
// Grid (numHeads, ceil(numTokens / PREFILL_QUERIES)); warp w handles query token blockIdx.y * PREFILL_QUERIES + w.
// K/V rows of the sequence are staged through shared memory PREFILL_TILE positions at a time and reused by every
// query of the block (converted to float: an F16 store is read as halves); each warp stops at its own position
// (causal mask).
#include "attention.cuh"

#define PREFILL_QUERIES 8
#define PREFILL_TILE 16

template <class T>
static __device__ __forceinline__ void attention_prefill_body(const float* __restrict__ q, float* __restrict__ out,
        const uint8_t* staging, int maxTokens, int numTokens, int layer, int numLayers, int numHeads, int numKvHeads,
        int headDim) {
    kernel_enter();
    __shared__ float sk[PREFILL_TILE][ATT_MAX_HEAD_DIM];
    __shared__ float sv[PREFILL_TILE][ATT_MAX_HEAD_DIM];
    __shared__ int smaxPos;
    Staging st = staging_view(staging, maxTokens);
    int h = blockIdx.x;
    int warp = threadIdx.x / WARP;
    int t0 = blockIdx.y * PREFILL_QUERIES;
    int t = t0 + warp;
    bool live = t < numTokens;
    int kvDim = numKvHeads * headDim;
    int kvHead = h / (numHeads / numKvHeads);
    int myPos = live ? st.positions[t] : -1;
    if (threadIdx.x == 0) {
        int mp = 0;
        for (int i = t0; i < min(t0 + PREFILL_QUERIES, numTokens); i++) mp = max(mp, st.positions[i]);
        smaxPos = mp;
    }
    __syncthreads();
    int maxPos = smaxPos;
    WarpSoftmax s;
    s.init(q + (long long) (live ? t : t0) * numHeads * headDim + h * headDim, headDim, rsqrtf((float) headDim));
    for (int j0 = 0; j0 <= maxPos; j0 += PREFILL_TILE) {
        int n = min(PREFILL_TILE, maxPos + 1 - j0);
        for (int i = threadIdx.x; i < n * headDim; i += blockDim.x) {
            int r = i / headDim, e = i % headDim;
            sk[r][e] = kv_get(kv_row<T>(st, t0, layer, numLayers, kvDim, j0 + r, 0)[kvHead * headDim + e]);
            sv[r][e] = kv_get(kv_row<T>(st, t0, layer, numLayers, kvDim, j0 + r, 1)[kvHead * headDim + e]);
        }
        __syncthreads();
        int last = min(n, myPos + 1 - j0);  // warp-uniform: the whole warp serves one query
        for (int r = 0; r < last; r++) s.step(sk[r], sv[r], headDim);
        __syncthreads();
    }
    if (!live) return;
    float inv = 1.f / s.l;
    int lane = threadIdx.x % WARP;
    float* o = out + (long long) t * numHeads * headDim + h * headDim;
#pragma unroll
    for (int i = 0; i < ATT_PER_LANE; i++) {
        int e = lane + WARP * i;
        if (e < headDim) o[e] = s.acc[i] * inv;
    }
}

#define ATTENTION_PREFILL_KERNEL(name, T)                                                                          \
    extern "C" __global__ void __launch_bounds__(PREFILL_QUERIES * WARP)                                           \
    name(const float* q, float* out, const uint8_t* staging, int maxTokens, int numTokens, int layer, int numLayers, \
         int numHeads, int numKvHeads, int headDim) {                                                              \
        attention_prefill_body<T>(q, out, staging, maxTokens, numTokens, layer, numLayers, numHeads, numKvHeads,  \
                                  headDim);                                                                        \
    }

ATTENTION_PREFILL_KERNEL(attention_prefill_f32, float)
ATTENTION_PREFILL_KERNEL(attention_prefill_f16, __half)
