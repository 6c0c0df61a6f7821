// kv_store_<f32|f16>: writes k[t], v[t] into their sequence's cache at position positions[t] of layer `layer`,
// through the sequence's block table (see kv_row in common.cuh), as floats or as halves. One block per token.
#include "common.cuh"

template <class T>
static __device__ __forceinline__ void kv_store_body(const float* __restrict__ k, const float* __restrict__ v,
                                                     const uint8_t* staging, int maxTokens, int layer, int numLayers,
                                                     int kvDim) {
    kernel_enter();
    Staging st = staging_view(staging, maxTokens);
    int t = blockIdx.x;
    int pos = st.positions[t];
    T* kd = kv_row<T>(st, t, layer, numLayers, kvDim, pos, 0);
    T* vd = kv_row<T>(st, t, layer, numLayers, kvDim, pos, 1);
    for (int i = threadIdx.x; i < kvDim; i += blockDim.x) {
        kv_put(kd + i, k[(long long) t * kvDim + i]);
        kv_put(vd + i, v[(long long) t * kvDim + i]);
    }
}

#define KV_STORE_KERNEL(name, T)                                                                                     \
    extern "C" __global__ void name(const float* k, const float* v, const uint8_t* staging, int maxTokens, int layer, \
                                    int numLayers, int kvDim) {                                                      \
        kv_store_body<T>(k, v, staging, maxTokens, layer, numLayers, kvDim);                                        \
    }

KV_STORE_KERNEL(kv_store_f32, float)
KV_STORE_KERNEL(kv_store_f16, __half)
