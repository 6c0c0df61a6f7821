// attention_decode: out[t][head] = softmax(q . K^T / sqrt(headDim)) . V over positions 0..positions[t] of the
// token's own sequence, reading K/V through its block table. Works for any batch (each token may belong to a
// different sequence); the host uses it for decode and mixed batches. Grid (numHeads, numTokens); the block's warps
// split the positions and merge their online-softmax states at the end. The grid does not depend on sequence
// lengths, so a captured graph stays valid as they grow.
#include "attention.cuh"

// 16 warps: a decode step walks its positions 16 at a time. Each position costs a dependent global load and a warp
// reduction, so with 4 warps a few hundred positions made a long serial chain per head.
#define DECODE_WARPS 16

extern "C" __global__ void __launch_bounds__(DECODE_WARPS * WARP)
attention_decode(const float* __restrict__ q, float* __restrict__ out, const uint8_t* staging, int maxTokens,
                 int layer, int numLayers, int numHeads, int numKvHeads, int headDim) {
    __shared__ float sm[DECODE_WARPS], sl[DECODE_WARPS];
    __shared__ float sacc[DECODE_WARPS][ATT_MAX_HEAD_DIM];
    Staging st = staging_view(staging, maxTokens);
    int h = blockIdx.x, t = blockIdx.y;
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    int kvDim = numKvHeads * headDim;
    int kvHead = h / (numHeads / numKvHeads);
    int len = st.positions[t] + 1;
    WarpSoftmax s;
    s.init(q + (long long) t * numHeads * headDim + h * headDim, headDim, rsqrtf((float) headDim));
    for (int j = warp; j < len; j += DECODE_WARPS) {
        const float* kr = kv_row(st, t, layer, numLayers, kvDim, j, 0) + kvHead * headDim;
        const float* vr = kv_row(st, t, layer, numLayers, kvDim, j, 1) + kvHead * headDim;
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
    for (int w = 0; w < DECODE_WARPS; w++) lAll += sl[w] * __expf(sm[w] - mAll);  // empty warps: l = 0, m = -inf
    float* o = out + (long long) t * numHeads * headDim + h * headDim;
    for (int e = threadIdx.x; e < headDim; e += blockDim.x) {
        float v = 0.f;
        for (int w = 0; w < DECODE_WARPS; w++) v += sacc[w][e] * __expf(sm[w] - mAll);
        o[e] = v / lAll;
    }
}
