package dev.tessera.kernels.cuda;

import dev.tessera.bindings.cublas.cublas_api_h;
import dev.tessera.bindings.cuda.cuda_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** A CUDA driver or cuBLAS call that did not succeed, as one line: what was called, the status name and its text. */
public final class CudaException extends RuntimeException {
    public CudaException(String message) {
        super(message);
    }

    /** Throws unless {@code result} is CUDA_SUCCESS. */
    static void check(int result, String call) {
        if (result != cuda_h.CUDA_SUCCESS) throw new CudaException(call + " failed: " + describe(result));
    }

    /** Throws unless {@code status} is CUBLAS_STATUS_SUCCESS. */
    static void checkBlas(int status, String call) {
        if (status == cublas_api_h.CUBLAS_STATUS_SUCCESS) return;
        String text;
        try {
            text = cublas_api_h.cublasGetStatusString(status).reinterpret(256).getString(0);
        } catch (RuntimeException e) {
            text = "cublasStatus " + status;
        }
        throw new CudaException(call + " failed: " + text);
    }

    /** "CUDA_ERROR_OUT_OF_MEMORY (out of memory)", or the bare number when the driver cannot name it. */
    static String describe(int result) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment p = arena.allocate(ValueLayout.ADDRESS);
            String name = cuda_h.cuGetErrorName(result, p) == cuda_h.CUDA_SUCCESS ? cString(p) : "CUresult " + result;
            String text = cuda_h.cuGetErrorString(result, p) == cuda_h.CUDA_SUCCESS ? cString(p) : "";
            return text.isEmpty() ? name : name + " (" + text + ")";
        } catch (RuntimeException e) {
            return "CUresult " + result;
        }
    }

    private static String cString(MemorySegment pointerToString) {
        MemorySegment s = pointerToString.get(ValueLayout.ADDRESS, 0);
        return s.equals(MemorySegment.NULL) ? "" : s.reinterpret(1024).getString(0);
    }
}
