// combine_experts: acc[t][i] += sum over s < k of weights[t * k + s] * slots[t * k + s][i], one block per token t.
// As CpuExperts.combine and llama.cpp's graph: the weighted slots are summed in slot order, then added to acc.
#include "common.cuh"

extern "C" __global__ void combine_experts(float* __restrict__ acc, const float* __restrict__ slots,
                                           const float* __restrict__ weights, int k, int width) {
    kernel_enter();
    int t = blockIdx.x;
    const float* w = weights + (long long) t * k;
    const float* s = slots + (long long) t * k * width;
    float* a = acc + (long long) t * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        float sum = 0.f;
        for (int j = 0; j < k; j++) sum += w[j] * s[(long long) j * width + i];
        a[i] += sum;
    }
}
