// add_bias: x[t][i] += bias[i] for n = numTokens * width floats.
#include "common.cuh"

extern "C" __global__ void add_bias(float* __restrict__ x, const float* __restrict__ bias, int width, long long n) {
    kernel_enter();
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += bias[i % width];
}
