// Matrix-vector kernels matvec_f16_{1,2,4,8,16} for f16 weights in GGUF layout: 16-byte loads (FmtF16x8 in
// common.cuh) when the row length is a multiple of 8, 8-byte loads (FmtF16) otherwise.
#include "matvec.cuh"

MATVEC_KERNELS_WIDE(matvec_f16, FmtF16, FmtF16x8)
