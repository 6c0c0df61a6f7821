// Token selection on the device, one block per logits row (blockDim a power of two, <= 1024).
//   argmax: index of the largest logit; ties go to the lowest index.
//   sample_top_k_top_p: keeps the k largest logits (k <= SAMPLE_MAX_K, ties to the lowest index), takes
//   softmax(logit / temperature) over them, keeps the shortest prefix whose probability reaches topP (at least one),
//   and picks from it with the given uniform number r in [0, 1): the first i with cumulative mass > r * mass.
#include "common.cuh"

#define SAMPLE_MAX_K 256

// True when (v, i) ranks before (bv, bi): larger value, then lower index.
static __device__ __forceinline__ bool ranks_before(float v, int i, float bv, int bi) {
    return v > bv || (v == bv && i < bi);
}

// Block-wide best (value, index); every thread gets the result. red* are blockDim-sized shared arrays.
static __device__ void block_best(float* v, int* i, float* redV, int* redI) {
    redV[threadIdx.x] = *v;
    redI[threadIdx.x] = *i;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s && ranks_before(redV[threadIdx.x + s], redI[threadIdx.x + s], redV[threadIdx.x], redI[threadIdx.x])) {
            redV[threadIdx.x] = redV[threadIdx.x + s];
            redI[threadIdx.x] = redI[threadIdx.x + s];
        }
        __syncthreads();
    }
    *v = redV[0];
    *i = redI[0];
    __syncthreads();
}

extern "C" __global__ void argmax(const float* __restrict__ logits, int vocabSize, int* __restrict__ out) {
    kernel_enter();
    __shared__ float redV[1024];
    __shared__ int redI[1024];
    const float* row = logits + (long long) blockIdx.x * vocabSize;
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < vocabSize; i += blockDim.x)
        if (ranks_before(row[i], i, bv, bi)) { bv = row[i]; bi = i; }
    block_best(&bv, &bi, redV, redI);
    if (threadIdx.x == 0) out[blockIdx.x] = bi;
}

// randoms[row] is the row's uniform number; k is clamped to [1, min(vocabSize, SAMPLE_MAX_K)].
extern "C" __global__ void sample_top_k_top_p(const float* __restrict__ logits, int vocabSize, int k, float topP,
                                              float temperature, const float* __restrict__ randoms,
                                              int* __restrict__ out) {
    kernel_enter();
    __shared__ float redV[1024];
    __shared__ int redI[1024];
    __shared__ float topV[SAMPLE_MAX_K];
    __shared__ int topI[SAMPLE_MAX_K];
    const float* row = logits + (long long) blockIdx.x * vocabSize;
    k = max(1, min(k, min(vocabSize, SAMPLE_MAX_K)));
    float prevV = INFINITY;
    int prevI = -1;
    // Pass n finds the best element ranking after the (n-1)-th pick: k passes give the top k in order.
    for (int n = 0; n < k; n++) {
        float bv = -INFINITY;
        int bi = 0x7fffffff;
        for (int i = threadIdx.x; i < vocabSize; i += blockDim.x) {
            float v = row[i];
            if (ranks_before(prevV, prevI, v, i) && ranks_before(v, i, bv, bi)) { bv = v; bi = i; }
        }
        block_best(&bv, &bi, redV, redI);
        if (threadIdx.x == 0) { topV[n] = bv; topI[n] = bi; }
        prevV = bv;
        prevI = bi;
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    float invT = 1.f / temperature, mass = 0.f;
    for (int n = 0; n < k; n++) mass += expf((topV[n] - topV[0]) * invT);
    float kept = 0.f;
    int numKept = 0;
    while (numKept < k) {  // shortest prefix reaching topP
        kept += expf((topV[numKept] - topV[0]) * invT);
        numKept++;
        if (kept >= topP * mass) break;
    }
    float target = randoms[blockIdx.x] * kept, cum = 0.f;
    int pick = topI[numKept - 1];
    for (int n = 0; n < numKept; n++) {
        cum += expf((topV[n] - topV[0]) * invT);
        if (cum > target) { pick = topI[n]; break; }
    }
    out[blockIdx.x] = pick;
}
