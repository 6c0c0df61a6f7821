// rms_norm: out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * gamma. One block per row. out may be x (the per-head q/k norms
// run in place): each thread reads its elements before it writes them, so x and out are not __restrict__.
#include "common.cuh"

extern "C" __global__ void rms_norm(const float* x, const float* __restrict__ gamma, float* out, int width, float eps) {
    kernel_enter();
    __shared__ float partial[32];
    const float* xr = x + (long long) blockIdx.x * width;
    float* orow = out + (long long) blockIdx.x * width;
    float ss = 0.f;
    for (int i = threadIdx.x; i < width; i += blockDim.x) ss += xr[i] * xr[i];
    ss = warp_sum(ss);
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, numWarps = blockDim.x / WARP;
    if (lane == 0) partial[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        ss = lane < numWarps ? partial[lane] : 0.f;
        ss = warp_sum(ss);
        if (lane == 0) partial[0] = ss;
    }
    __syncthreads();
    float scale = (float) (1.0 / sqrt((double) partial[0] / width + eps));
    for (int i = threadIdx.x; i < width; i += blockDim.x) orow[i] = xr[i] * scale * gamma[i];
}
