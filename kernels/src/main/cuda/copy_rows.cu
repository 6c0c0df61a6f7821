// copy_rows: dst[dst_rows ? dst_rows[r] : r] = src[src_rows ? src_rows[r] : r] for rows r < gridDim.x of `width`
// floats. The grouped expert matmul's gather (src_rows: each slot's input row, grouped by expert, so an expert's
// tokens sit together for one matvec) and scatter (dst_rows: the slot each result row belongs to). One block per row.
#include "common.cuh"

extern "C" __global__ void copy_rows(float* __restrict__ dst, const int* __restrict__ dst_rows,
                                     const float* __restrict__ src, const int* __restrict__ src_rows, int width) {
    kernel_enter();
    int r = blockIdx.x;
    const float* s = src + (long long) (src_rows ? src_rows[r] : r) * width;
    float* d = dst + (long long) (dst_rows ? dst_rows[r] : r) * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) d[i] = s[i];
}
