// Matrix-vector kernels matvec_q6_k_{1,2,4,8,16} for q6_k weights in GGUF layout (see FmtQ6K in common.cuh).
#include "matvec.cuh"

MATVEC_KERNELS(matvec_q6_k, FmtQ6K)
