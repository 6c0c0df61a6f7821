// kv_store: writes k[t], v[t] into their sequence's cache at position positions[t] of layer `layer`, through the
// sequence's block table (see kv_row in common.cuh). One block per token.
#include "common.cuh"

extern "C" __global__ void kv_store(const float* __restrict__ k, const float* __restrict__ v, const uint8_t* staging,
                                    int maxTokens, int layer, int numLayers, int kvDim) {
    Staging st = staging_view(staging, maxTokens);
    int t = blockIdx.x;
    int pos = st.positions[t];
    float* kd = kv_row(st, t, layer, numLayers, kvDim, pos, 0);
    float* vd = kv_row(st, t, layer, numLayers, kvDim, pos, 1);
    for (int i = threadIdx.x; i < kvDim; i += blockDim.x) {
        kd[i] = k[(long long) t * kvDim + i];
        vd[i] = v[(long long) t * kvDim + i];
    }
}
