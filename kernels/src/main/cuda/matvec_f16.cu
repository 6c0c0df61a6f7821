// Matrix-vector kernels matvec_f16_{1,2,4,8,16} for f16 weights in GGUF layout (see FmtF16 in common.cuh).
#include "matvec.cuh"

MATVEC_KERNELS(matvec_f16, FmtF16)
