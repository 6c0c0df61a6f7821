// swiglu: gate[i] = silu(gate[i]) * up[i] over n = numTokens * width floats.
#include "common.cuh"

extern "C" __global__ void swiglu(float* __restrict__ gate, const float* __restrict__ up, long long n) {
    kernel_enter();
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float g = gate[i];
        gate[i] = g / (1.f + expf(-g)) * up[i];
    }
}
