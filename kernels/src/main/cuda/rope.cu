// rope: rotates each head of x[t] by the angle positions[t] * invFreq[i] for pair i < ropeDim/2. Normal (Llama)
// rope pairs (2i, 2i+1), NeoX pairs (i, i + ropeDim/2). Positions come from the staging buffer (a replayed graph
// reads the step's positions). Angles in double as on the CPU: at position 1e5 a float angle is off by ~1e-2 rad.
// Grid: one block per token; threads over numHeads * ropeDim/2 pairs.
#include "common.cuh"

extern "C" __global__ void rope(float* x, const uint8_t* staging, int maxTokens, int width, int numHeads,
                                int headDim, int ropeDim, const float* __restrict__ invFreq, int neox) {
    kernel_enter();
    Staging st = staging_view(staging, maxTokens);
    int t = blockIdx.x;
    int half = ropeDim / 2;
    double pos = st.positions[t];
    for (int j = threadIdx.x; j < numHeads * half; j += blockDim.x) {
        int h = j / half, i = j % half;
        double s, c;
        sincos(pos * (double) invFreq[i], &s, &c);
        float sn = (float) s, cs = (float) c;
        float* head = x + (long long) t * width + h * headDim;
        int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        float v0 = head[i0], v1 = head[i1];
        head[i0] = v0 * cs - v1 * sn;
        head[i1] = v0 * sn + v1 * cs;
    }
}
