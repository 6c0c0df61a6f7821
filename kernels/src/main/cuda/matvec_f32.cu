// Matrix-vector kernels matvec_f32_{1,2,4,8,16} for f32 weights in GGUF layout (see FmtF32 in common.cuh).
#include "matvec.cuh"

MATVEC_KERNELS(matvec_f32, FmtF32)
