// Matrix-vector kernels matvec_bf16_{1,2,4,8,16} for bf16 weights in GGUF layout (see FmtBf16 in common.cuh).
#include "matvec.cuh"

MATVEC_KERNELS(matvec_bf16, FmtBf16)
