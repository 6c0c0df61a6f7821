// dequant_f16_<format>: a whole weight to row-major F16 before cublasGemmEx (prefill, many tokens).
#include "dequant_f16.cuh"

DEQUANT_F16_KERNEL(dequant_f16_f32, FmtF32)
DEQUANT_F16_KERNEL(dequant_f16_f16, FmtF16)
DEQUANT_F16_KERNEL(dequant_f16_bf16, FmtBf16)
DEQUANT_F16_KERNEL(dequant_f16_q8_0, FmtQ8_0)
DEQUANT_F16_KERNEL(dequant_f16_q4_0, FmtQ4_0)
DEQUANT_F16_KERNEL(dequant_f16_q4_k, FmtQ4K)
DEQUANT_F16_KERNEL(dequant_f16_q6_k, FmtQ6K)

// Activations F32 -> F16 for the GEMM's B operand.
extern "C" __global__ void convert_f32_to_f16(const float* in, __half* out, long long n) {
    kernel_enter();
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __float2half_rn(in[i]);
}
