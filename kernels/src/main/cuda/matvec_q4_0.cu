// Matrix-vector kernels matvec_q4_0_{1,2,4,8,16} for q4_0 weights in GGUF layout (see FmtQ4_0 in common.cuh).
#include "matvec.cuh"

MATVEC_KERNELS(matvec_q4_0, FmtQ4_0)
