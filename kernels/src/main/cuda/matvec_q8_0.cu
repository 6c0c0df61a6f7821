// Matrix-vector kernels matvec_q8_0_{1,2,4,8,16} for q8_0 weights in GGUF layout (see FmtQ8_0 in common.cuh).
#include "matvec.cuh"

MATVEC_KERNELS(matvec_q8_0, FmtQ8_0)
