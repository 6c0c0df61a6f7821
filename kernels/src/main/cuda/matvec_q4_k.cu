// Matrix-vector kernels matvec_q4_k_{1,2,4,8,16} for q4_k weights in GGUF layout (see FmtQ4K in common.cuh).
#include "matvec.cuh"

MATVEC_KERNELS(matvec_q4_k, FmtQ4K)
