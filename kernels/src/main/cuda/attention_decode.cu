// attention_decode_<f32|f16>: out[t][head] = softmax(q . K^T / sqrt(headDim)) . V over positions 0..positions[t] of
// the token's own sequence, reading K/V (float or half) through its block table. Works for any batch (each token may
// belong to a different sequence); the host uses it for decode and mixed batches.
// Grid (numHeads, numTokens, numSplits): split s of a (token, head) takes one contiguous chunk of the positions, the
// block's warps walk that chunk and merge their online-softmax states in shared memory. With one split the block
// writes the output; with more (split-K, so a batch-1 step fills more than numHeads blocks) each block writes its
// (max, sum, unnormalized acc) to `partial`, and the last block of the (token, head) to arrive, counted in
// `counters`, merges them and resets its counter for the next launch. The grid does not depend on sequence lengths,
// so a captured graph stays valid as they grow.
#include "attention.cuh"

// 8 warps x up to 16 splits (the host's DECODE_SPLITS): at batch 1 with 32 heads, 4096 warps walk the positions
// instead of 512, so each takes a few of them rather than dozens.
#define DECODE_WARPS 8

template <class T>
static __device__ __forceinline__ void attention_decode_body(const float* __restrict__ q, float* __restrict__ out,
        const uint8_t* staging, int maxTokens, int layer, int numLayers, int numHeads, int numKvHeads, int headDim,
        float* partial, int* counters) {
    kernel_enter();
    __shared__ float sm[DECODE_WARPS], sl[DECODE_WARPS];
    __shared__ float sacc[DECODE_WARPS][ATT_MAX_HEAD_DIM];
    __shared__ int isLast;
    Staging st = staging_view(staging, maxTokens);
    int h = blockIdx.x, t = blockIdx.y, split = blockIdx.z, numSplits = gridDim.z;
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    int kvDim = numKvHeads * headDim;
    int kvHead = h / (numHeads / numKvHeads);
    int len = st.positions[t] + 1;
    int chunk = (len + numSplits - 1) / numSplits;
    int j0 = split * chunk, j1 = min(len, j0 + chunk);
    WarpSoftmax s;
    s.init(q + (long long) t * numHeads * headDim + h * headDim, headDim, rsqrtf((float) headDim));
    for (int j = j0 + warp; j < j1; j += DECODE_WARPS) {
        const T* kr = kv_row<T>(st, t, layer, numLayers, kvDim, j, 0) + kvHead * headDim;
        const T* vr = kv_row<T>(st, t, layer, numLayers, kvDim, j, 1) + kvHead * headDim;
        s.step(kr, vr, headDim);
    }
    if (lane == 0) { sm[warp] = s.m; sl[warp] = s.l; }
#pragma unroll
    for (int i = 0; i < ATT_PER_LANE; i++) {
        int e = lane + WARP * i;
        if (e < headDim) sacc[warp][e] = s.acc[i];
    }
    __syncthreads();
    float mAll = -INFINITY;
    for (int w = 0; w < DECODE_WARPS; w++) mAll = fmaxf(mAll, sm[w]);
    float lAll = 0.f;
    // A warp (or a whole split) that saw no position has m = -inf, l = 0: it weighs nothing (no -inf - -inf).
    for (int w = 0; w < DECODE_WARPS; w++) lAll += sm[w] == -INFINITY ? 0.f : sl[w] * __expf(sm[w] - mAll);
    if (numSplits == 1) {
        float* o = out + (long long) t * numHeads * headDim + h * headDim;
        for (int e = threadIdx.x; e < headDim; e += blockDim.x) {
            float v = 0.f;
            for (int w = 0; w < DECODE_WARPS; w++) if (sm[w] != -INFINITY) v += sacc[w][e] * __expf(sm[w] - mAll);
            o[e] = v / lAll;
        }
        return;
    }
    // partial: [numTokens][numHeads][numSplits][2 + headDim] = max, sum, acc relative to max.
    int stride = 2 + headDim;
    float* mine = partial + (((long long) t * numHeads + h) * numSplits + split) * stride;
    for (int e = threadIdx.x; e < headDim; e += blockDim.x) {
        float v = 0.f;
        for (int w = 0; w < DECODE_WARPS; w++) if (sm[w] != -INFINITY) v += sacc[w][e] * __expf(sm[w] - mAll);
        mine[2 + e] = v;
    }
    if (threadIdx.x == 0) { mine[0] = mAll; mine[1] = lAll; }
    __threadfence();
    __syncthreads();
    int* counter = counters + (long long) t * numHeads + h;
    if (threadIdx.x == 0) isLast = atomicAdd(counter, 1) == numSplits - 1;
    __syncthreads();
    if (!isLast) return;
    __threadfence();
    const float* all = partial + ((long long) t * numHeads + h) * numSplits * stride;
    float m = -INFINITY;
    for (int p = 0; p < numSplits; p++) m = fmaxf(m, __ldcg(all + p * stride));
    float l = 0.f;
    for (int p = 0; p < numSplits; p++) {
        float mp = __ldcg(all + p * stride);
        if (mp != -INFINITY) l += __ldcg(all + p * stride + 1) * __expf(mp - m);
    }
    float* o = out + (long long) t * numHeads * headDim + h * headDim;
    for (int e = threadIdx.x; e < headDim; e += blockDim.x) {
        float v = 0.f;
        for (int p = 0; p < numSplits; p++) {
            float mp = __ldcg(all + p * stride);
            if (mp != -INFINITY) v += __ldcg(all + p * stride + 2 + e) * __expf(mp - m);
        }
        o[e] = v / l;
    }
    if (threadIdx.x == 0) *counter = 0;
}

#define ATTENTION_DECODE_KERNEL(name, T)                                                                          \
    extern "C" __global__ void __launch_bounds__(DECODE_WARPS * WARP)                                             \
    name(const float* q, float* out, const uint8_t* staging, int maxTokens, int layer, int numLayers, int numHeads, \
         int numKvHeads, int headDim, float* partial, int* counters) {                                            \
        attention_decode_body<T>(q, out, staging, maxTokens, layer, numLayers, numHeads, numKvHeads, headDim,    \
                                 partial, counters);                                                              \
    }

ATTENTION_DECODE_KERNEL(attention_decode_f32, float)
ATTENTION_DECODE_KERNEL(attention_decode_f16, __half)
