// add_sigmoid_gated: acc[t][i] += sigmoid(gate[t * gate_width]) * x[t][i] over n = numTokens * width floats:
// Qwen2-MoE's shared expert, scaled by its one-logit gate.
#include "common.cuh"

extern "C" __global__ void add_sigmoid_gated(float* __restrict__ acc, const float* __restrict__ x,
                                             const float* __restrict__ gate, int gate_width, int width, long long n) {
    kernel_enter();
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float g = 1.f / (1.f + expf(-gate[(i / width) * gate_width]));
        acc[i] += g * x[i];
    }
}
