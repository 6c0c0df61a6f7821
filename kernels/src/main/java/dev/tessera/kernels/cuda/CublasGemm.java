package dev.tessera.kernels.cuda;

import dev.tessera.bindings.cublas.cublas_api_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.tessera.kernels.cuda.LaunchGeometry.*;

/**
 * Matmuls of more than MAX_MATVEC_TOKENS tokens: the weight dequantized to F16 and the activations converted to F16,
 * then cublasGemmEx (F16 in, F32 accumulate) on the backend's stream. Eager only: the scratch may grow and cuBLAS
 * may allocate, which a captured step cannot.
 */
final class CublasGemm implements AutoCloseable {
    private final CudaBackend backend;
    private final CudaDevice device;
    private final CudaKernels kernels;
    private final MemorySegment out;
    private final MemorySegment one;
    private final MemorySegment zero;
    private MemorySegment cublas;
    /** F16 copies of the weight and the activations, grown on demand (freed with the backend's other allocations). */
    private long weightF16, weightF16Bytes, xF16, xF16Bytes;

    CublasGemm(CudaBackend backend, CudaDevice device, CudaKernels kernels, Arena arena) {
        this.backend = backend;
        this.device = device;
        this.kernels = kernels;
        this.out = arena.allocate(ValueLayout.JAVA_LONG);
        this.one = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 1f);
        this.zero = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 0f);
    }

    /** out = x · Wᵀ with W dequantized to F16; cuBLAS is column-major, so it computes outᵀ[rows][T] = W · xᵀ. */
    void run(CudaWeight w, CudaActivations x, int numTokens, CudaActivations out) {
        if (backend.recording()) throw new IllegalStateException("a " + numTokens + "-token matmul inside a captured step");
        long wBytes = 2L * w.rows() * w.cols(), xBytes = 2L * numTokens * w.cols();
        if (wBytes > weightF16Bytes) { backend.free(weightF16); weightF16 = backend.allocate(wBytes); weightF16Bytes = wBytes; }
        if (xBytes > xF16Bytes) { backend.free(xF16); xF16 = backend.allocate(xBytes); xF16Bytes = xBytes; }
        long units = w.rows() * unitsPerRow(w.type(), w.cols());
        kernels.args().ptr(w.pointer()).ptr(weightF16).i32(w.rows()).i32(w.cols())
                .launch(kernels.dequantF16(w.type()), "dequant_f16 " + w.name(), elementwiseBlocks(units), 1, ELEMENTWISE_THREADS);
        long n = (long) numTokens * w.cols();
        kernels.args().ptr(x.pointer()).ptr(xF16).i64(n)
                .launch(kernels.convertF32ToF16, "convert_f32_to_f16", elementwiseBlocks(n), 1, ELEMENTWISE_THREADS);
        // UNVERIFIED (no GPU here): argument order and leading dimensions of the column-major GEMM.
        CudaException.checkBlas(cublas_api_h.cublasGemmEx(cublas(), cublas_api_h.CUBLAS_OP_T, cublas_api_h.CUBLAS_OP_N,
                w.rows(), numTokens, w.cols(), one,
                MemorySegment.ofAddress(weightF16), cublas_api_h.CUDA_R_16F, w.cols(),
                MemorySegment.ofAddress(xF16), cublas_api_h.CUDA_R_16F, w.cols(), zero,
                MemorySegment.ofAddress(out.pointer()), cublas_api_h.CUDA_R_32F, w.rows(),
                cublas_api_h.CUBLAS_COMPUTE_32F, cublas_api_h.CUBLAS_GEMM_DEFAULT), "cublasGemmEx(" + w.name() + ")");
    }

    private MemorySegment cublas() {
        if (cublas == null) {
            CudaException.checkBlas(cublas_api_h.cublasCreate_v2(out), "cublasCreate");
            MemorySegment handle = out.get(ValueLayout.ADDRESS, 0);
            CudaException.checkBlas(cublas_api_h.cublasSetStream_v2(handle, device.stream), "cublasSetStream");
            cublas = handle;
        }
        return cublas;
    }

    @Override
    public void close() {
        if (cublas != null) cublas_api_h.cublasDestroy_v2(cublas);
    }
}
