package dev.tessera.bindings.cublas;

import dev.tessera.bindings.NativeLibrary;

import java.lang.foreign.AddressLayout;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * FFM bindings for cuBLAS, {@code cublas_api.h} (libcublas.so.13, else libcublas.so.12; libcublasLt is opened first
 * from the same folder), in jextract's shape. Symbols are the exported {@code _v2} names that {@code cublas_v2.h}
 * maps the plain names to. cuBLAS is column-major: a row-major [rows][cols] weight is a column-major [cols][rows]
 * matrix, so y = W x is {@code cublasGemmEx(OP_T, OP_N, rows, numTokens, cols, ...)}. Values come from the
 * documented API; the header check compares them with cublas_api.h wherever the header is installed.
 */
@SuppressWarnings({"unused", "checkstyle:MethodName", "checkstyle:ConstantName"})
public final class cublas_api_h {
    private cublas_api_h() {}

    public static final ValueLayout.OfByte C_CHAR = ValueLayout.JAVA_BYTE;
    public static final ValueLayout.OfInt C_INT = ValueLayout.JAVA_INT;
    public static final ValueLayout.OfLong C_LONG = ValueLayout.JAVA_LONG;
    public static final ValueLayout.OfLong C_LONG_LONG = ValueLayout.JAVA_LONG;
    public static final ValueLayout.OfFloat C_FLOAT = ValueLayout.JAVA_FLOAT;
    public static final AddressLayout C_POINTER = ValueLayout.ADDRESS;

    // Typedefs: the test compares each one's size with sizeof in the real header.
    public static final ValueLayout.OfInt cublasStatus_t = C_INT;
    public static final ValueLayout.OfInt cublasOperation_t = C_INT;
    public static final ValueLayout.OfInt cublasMath_t = C_INT;
    public static final ValueLayout.OfInt cublasComputeType_t = C_INT;
    public static final ValueLayout.OfInt cublasGemmAlgo_t = C_INT;
    public static final ValueLayout.OfInt cudaDataType = C_INT;
    public static final AddressLayout cublasHandle_t = C_POINTER;
    public static final AddressLayout cudaStream_t = C_POINTER;

    // cublasStatus_t
    public static final int CUBLAS_STATUS_SUCCESS = 0;
    public static final int CUBLAS_STATUS_NOT_INITIALIZED = 1;
    public static final int CUBLAS_STATUS_ALLOC_FAILED = 3;
    public static final int CUBLAS_STATUS_INVALID_VALUE = 7;
    public static final int CUBLAS_STATUS_ARCH_MISMATCH = 8;
    public static final int CUBLAS_STATUS_MAPPING_ERROR = 11;
    public static final int CUBLAS_STATUS_EXECUTION_FAILED = 13;
    public static final int CUBLAS_STATUS_INTERNAL_ERROR = 14;
    public static final int CUBLAS_STATUS_NOT_SUPPORTED = 15;
    public static final int CUBLAS_STATUS_LICENSE_ERROR = 16;

    // cublasOperation_t
    public static final int CUBLAS_OP_N = 0;
    public static final int CUBLAS_OP_T = 1;
    public static final int CUBLAS_OP_C = 2;

    // cudaDataType (library_types.h)
    public static final int CUDA_R_32F = 0;
    public static final int CUDA_R_16F = 2;
    public static final int CUDA_R_8I = 3;
    public static final int CUDA_R_32I = 10;
    public static final int CUDA_R_16BF = 14;

    // cublasComputeType_t
    public static final int CUBLAS_COMPUTE_16F = 64;
    public static final int CUBLAS_COMPUTE_32F = 68;
    public static final int CUBLAS_COMPUTE_32F_PEDANTIC = 69;
    public static final int CUBLAS_COMPUTE_32I = 72;
    public static final int CUBLAS_COMPUTE_32F_FAST_16F = 74;
    public static final int CUBLAS_COMPUTE_32F_FAST_16BF = 75;
    public static final int CUBLAS_COMPUTE_32F_FAST_TF32 = 77;

    // cublasGemmAlgo_t
    public static final int CUBLAS_GEMM_DEFAULT = -1;
    public static final int CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99;

    // cublasMath_t
    public static final int CUBLAS_DEFAULT_MATH = 0;
    public static final int CUBLAS_TENSOR_OP_MATH = 1;
    public static final int CUBLAS_PEDANTIC_MATH = 2;
    public static final int CUBLAS_TF32_TENSOR_OP_MATH = 3;
    public static final int CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16;

    /** Opened on the first call of any function, never at class load. */
    private static final class Library {
        static final NativeLibrary LIB = NativeLibrary.open("cuBLAS", new String[] {"libcublas.so.13", "libcublas.so.12"}, new String[] {"libcublasLt.so.13", "libcublasLt.so.12"});
    }

    /** Where the library was loaded from, or the one-line reason it is unavailable (opens it on first use). */
    public static String libraryStatus() {
        return Library.LIB.describe();
    }

    public static boolean libraryAvailable() {
        return Library.LIB.available();
    }

    private static final class cublasCreate_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cublasCreate_v2", FunctionDescriptor.of(cublasStatus_t, C_POINTER));
    }

    /** {@snippet lang=c : cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) } */
    public static int cublasCreate_v2(MemorySegment handle) {
        try {
            return (int) cublasCreate_v2$.HANDLE.invokeExact(handle);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cublasDestroy_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cublasDestroy_v2", FunctionDescriptor.of(cublasStatus_t, cublasHandle_t));
    }

    /** {@snippet lang=c : cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) } */
    public static int cublasDestroy_v2(MemorySegment handle) {
        try {
            return (int) cublasDestroy_v2$.HANDLE.invokeExact(handle);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cublasGetVersion_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cublasGetVersion_v2", FunctionDescriptor.of(cublasStatus_t, cublasHandle_t, C_POINTER));
    }

    /** {@snippet lang=c : cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int *version) } */
    public static int cublasGetVersion_v2(MemorySegment handle, MemorySegment version) {
        try {
            return (int) cublasGetVersion_v2$.HANDLE.invokeExact(handle, version);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cublasSetStream_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cublasSetStream_v2", FunctionDescriptor.of(cublasStatus_t, cublasHandle_t, cudaStream_t));
    }

    /** {@snippet lang=c : cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) } */
    public static int cublasSetStream_v2(MemorySegment handle, MemorySegment streamId) {
        try {
            return (int) cublasSetStream_v2$.HANDLE.invokeExact(handle, streamId);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cublasSetWorkspace_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cublasSetWorkspace_v2", FunctionDescriptor.of(cublasStatus_t, cublasHandle_t, C_POINTER, C_LONG));
    }

    /** {@snippet lang=c : cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace, size_t workspaceSizeInBytes) } */
    public static int cublasSetWorkspace_v2(MemorySegment handle, MemorySegment workspace, long workspaceSizeInBytes) {
        try {
            return (int) cublasSetWorkspace_v2$.HANDLE.invokeExact(handle, workspace, workspaceSizeInBytes);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cublasSetMathMode$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cublasSetMathMode", FunctionDescriptor.of(cublasStatus_t, cublasHandle_t, cublasMath_t));
    }

    /** {@snippet lang=c : cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) } */
    public static int cublasSetMathMode(MemorySegment handle, int mode) {
        try {
            return (int) cublasSetMathMode$.HANDLE.invokeExact(handle, mode);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cublasGemmEx$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cublasGemmEx", FunctionDescriptor.of(cublasStatus_t, cublasHandle_t, cublasOperation_t, cublasOperation_t, C_INT, C_INT, C_INT, C_POINTER, C_POINTER, cudaDataType, C_INT, C_POINTER, cudaDataType, C_INT, C_POINTER, C_POINTER, cudaDataType, C_INT, cublasComputeType_t, cublasGemmAlgo_t));
    }

    /** {@snippet lang=c : cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B, cudaDataType Btype, int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc, cublasComputeType_t computeType, cublasGemmAlgo_t algo) } */
    public static int cublasGemmEx(MemorySegment handle, int transa, int transb, int m, int n, int k, MemorySegment alpha, MemorySegment A, int Atype, int lda, MemorySegment B, int Btype, int ldb, MemorySegment beta, MemorySegment C, int Ctype, int ldc, int computeType, int algo) {
        try {
            return (int) cublasGemmEx$.HANDLE.invokeExact(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, computeType, algo);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cublasGemmStridedBatchedEx$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cublasGemmStridedBatchedEx", FunctionDescriptor.of(cublasStatus_t, cublasHandle_t, cublasOperation_t, cublasOperation_t, C_INT, C_INT, C_INT, C_POINTER, C_POINTER, cudaDataType, C_INT, C_LONG_LONG, C_POINTER, cudaDataType, C_INT, C_LONG_LONG, C_POINTER, C_POINTER, cudaDataType, C_INT, C_LONG_LONG, C_INT, cublasComputeType_t, cublasGemmAlgo_t));
    }

    /** {@snippet lang=c : cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype, int lda, long long int strideA, const void *B, cudaDataType Btype, int ldb, long long int strideB, const void *beta, void *C, cudaDataType Ctype, int ldc, long long int strideC, int batchCount, cublasComputeType_t computeType, cublasGemmAlgo_t algo) } */
    public static int cublasGemmStridedBatchedEx(MemorySegment handle, int transa, int transb, int m, int n, int k, MemorySegment alpha, MemorySegment A, int Atype, int lda, long strideA, MemorySegment B, int Btype, int ldb, long strideB, MemorySegment beta, MemorySegment C, int Ctype, int ldc, long strideC, int batchCount, int computeType, int algo) {
        try {
            return (int) cublasGemmStridedBatchedEx$.HANDLE.invokeExact(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cublasGetStatusString$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cublasGetStatusString", FunctionDescriptor.of(C_POINTER, cublasStatus_t));
    }

    /** {@snippet lang=c : const char *cublasGetStatusString(cublasStatus_t status) } */
    public static MemorySegment cublasGetStatusString(int status) {
        try {
            return (MemorySegment) cublasGetStatusString$.HANDLE.invokeExact(status);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

}
