// rope_kv_store_<f32|f16>: rope of the queries and keys of a layer, then the keys and values into the cache, in one
// launch instead of three (rope q, rope k, kv_store). The host fuses them when rope(q) and rope(k) are followed by
// attention over the same tokens and positions. Rotation as in rope.cu (angles in double), so results are the ones
// the separate kernels give: q[t] and k[t] are rotated in place, and the rotated k[t] and v[t] go to the cache slot
// of positions[t] (see kv_row in common.cuh). Grid: one block per token.
#include "common.cuh"

#define ROPE_MAX_HALF 128  // ropeDim <= headDim <= 256

template <class T>
static __device__ __forceinline__ void rope_kv_store_body(float* q, float* k, const float* __restrict__ v,
        const uint8_t* staging, int maxTokens, int layer, int numLayers, int numHeads, int numKvHeads, int headDim,
        int ropeDim, const float* __restrict__ invFreq, int neox) {
    kernel_enter();
    Staging st = staging_view(staging, maxTokens);
    int t = blockIdx.x;
    int half = ropeDim / 2;
    int kvDim = numKvHeads * headDim;
    int pos = st.positions[t];
    double dpos = pos;
    float* qt = q + (long long) t * numHeads * headDim;
    float* kt = k + (long long) t * kvDim;
    // Every head of the token turns by the same angles: one double sincos per pair, not per pair and head.
    __shared__ float ssin[ROPE_MAX_HALF], scos[ROPE_MAX_HALF];
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        double s, c;
        sincos(dpos * (double) invFreq[i], &s, &c);
        ssin[i] = (float) s;
        scos[i] = (float) c;
    }
    __syncthreads();
    for (int j = threadIdx.x; j < (numHeads + numKvHeads) * half; j += blockDim.x) {
        int h = j / half, i = j % half;
        float sn = ssin[i], cs = scos[i];
        float* head = h < numHeads ? qt + h * headDim : kt + (h - numHeads) * headDim;
        int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        float v0 = head[i0], v1 = head[i1];
        head[i0] = v0 * cs - v1 * sn;
        head[i1] = v0 * sn + v1 * cs;
    }
    __syncthreads();  // the rotated keys are read back below by other threads
    T* kd = kv_row<T>(st, t, layer, numLayers, kvDim, pos, 0);
    T* vd = kv_row<T>(st, t, layer, numLayers, kvDim, pos, 1);
    for (int i = threadIdx.x; i < kvDim; i += blockDim.x) {
        kv_put(kd + i, kt[i]);
        kv_put(vd + i, v[(long long) t * kvDim + i]);
    }
}

#define ROPE_KV_STORE_KERNEL(name, T)                                                                                \
    extern "C" __global__ void name(float* q, float* k, const float* v, const uint8_t* staging, int maxTokens,       \
                                    int layer, int numLayers, int numHeads, int numKvHeads, int headDim, int ropeDim, \
                                    const float* invFreq, int neox) {                                                \
        rope_kv_store_body<T>(q, k, v, staging, maxTokens, layer, numLayers, numHeads, numKvHeads, headDim, ropeDim,  \
                              invFreq, neox);                                                                        \
    }

ROPE_KV_STORE_KERNEL(rope_kv_store_f32, float)
ROPE_KV_STORE_KERNEL(rope_kv_store_f16, __half)
