// Online-softmax state of one query head held by one warp: lane owns head elements lane, lane+32, ... (< headDim).
#pragma once
#include "common.cuh"

#define ATT_MAX_HEAD_DIM 256
#define ATT_PER_LANE (ATT_MAX_HEAD_DIM / WARP)

struct WarpSoftmax {
    float m, l;
    float acc[ATT_PER_LANE];
    float q[ATT_PER_LANE];

    __device__ __forceinline__ void init(const float* qHead, int headDim, float scale) {
        int lane = threadIdx.x % WARP;
        m = -INFINITY;
        l = 0.f;
#pragma unroll
        for (int i = 0; i < ATT_PER_LANE; i++) {
            int e = lane + WARP * i;
            acc[i] = 0.f;
            q[i] = e < headDim ? qHead[e] * scale : 0.f;  // pre-scaled by 1/sqrt(headDim)
        }
    }

    // Adds key/value row j (headDim elements each, float or half, global or shared memory) to the running softmax.
    template <class T>
    __device__ __forceinline__ void step(const T* key, const T* value, int headDim) {
        int lane = threadIdx.x % WARP;
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < ATT_PER_LANE; i++) {
            int e = lane + WARP * i;
            if (e < headDim) s += q[i] * kv_get(key[e]);
        }
        s = warp_sum(s);
        float mNew = fmaxf(m, s);
        float corr = __expf(m - mNew), p = __expf(s - mNew);
        l = l * corr + p;
#pragma unroll
        for (int i = 0; i < ATT_PER_LANE; i++) {
            int e = lane + WARP * i;
            acc[i] = acc[i] * corr + (e < headDim ? p * kv_get(value[e]) : 0.f);
        }
        m = mNew;
    }
};
