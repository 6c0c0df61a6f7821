package dev.tessera.bindings.cuda;

import dev.tessera.bindings.NativeLibrary;

import java.lang.foreign.AddressLayout;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.UnionLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * FFM bindings for the CUDA driver API, {@code cuda.h} (libcuda.so.1), in jextract's shape: one static method per C
 * function with the exported symbol's name and the C parameter order, constants named as in the header. Exported
 * symbols are the versioned ones the header's macros select ({@code cuMemAlloc} is {@code cuMemAlloc_v2}).
 * {@code cuEventElapsedTime} is bound twice: CUDA 13's header maps it to {@code _v2}, which drivers before 12.8 lack.
 * CUdeviceptr is a 64-bit integer; handles are addresses. No logic here: kernels/cuda checks the CUresults.
 */
@SuppressWarnings({"unused", "checkstyle:MethodName", "checkstyle:ConstantName"})
public final class cuda_h {
    private cuda_h() {}

    public static final ValueLayout.OfByte C_CHAR = ValueLayout.JAVA_BYTE;
    public static final ValueLayout.OfInt C_INT = ValueLayout.JAVA_INT;
    public static final ValueLayout.OfLong C_LONG = ValueLayout.JAVA_LONG;
    public static final ValueLayout.OfLong C_LONG_LONG = ValueLayout.JAVA_LONG;
    public static final ValueLayout.OfFloat C_FLOAT = ValueLayout.JAVA_FLOAT;
    public static final AddressLayout C_POINTER = ValueLayout.ADDRESS;

    // Typedefs: the test compares each one's size with sizeof in the real header.
    public static final ValueLayout.OfInt CUresult = C_INT;
    public static final ValueLayout.OfInt CUdevice = C_INT;
    public static final ValueLayout.OfInt CUdevice_attribute = C_INT;
    public static final ValueLayout.OfInt CUjit_option = C_INT;
    public static final ValueLayout.OfInt CUstreamCaptureMode = C_INT;
    public static final ValueLayout.OfInt CUfunction_attribute = C_INT;
    public static final ValueLayout.OfInt CUlaunchAttributeID = C_INT;
    public static final ValueLayout.OfLong CUdeviceptr = C_LONG_LONG;
    public static final AddressLayout CUcontext = C_POINTER;
    public static final AddressLayout CUmodule = C_POINTER;
    public static final AddressLayout CUfunction = C_POINTER;
    public static final AddressLayout CUstream = C_POINTER;
    public static final AddressLayout CUevent = C_POINTER;
    public static final AddressLayout CUgraph = C_POINTER;
    public static final AddressLayout CUgraphExec = C_POINTER;

    // CUresult
    public static final int CUDA_SUCCESS = 0;
    public static final int CUDA_ERROR_INVALID_VALUE = 1;
    public static final int CUDA_ERROR_OUT_OF_MEMORY = 2;
    public static final int CUDA_ERROR_NOT_INITIALIZED = 3;
    public static final int CUDA_ERROR_DEINITIALIZED = 4;
    public static final int CUDA_ERROR_STUB_LIBRARY = 34;
    public static final int CUDA_ERROR_DEVICE_UNAVAILABLE = 46;
    public static final int CUDA_ERROR_NO_DEVICE = 100;
    public static final int CUDA_ERROR_INVALID_DEVICE = 101;
    public static final int CUDA_ERROR_INVALID_IMAGE = 200;
    public static final int CUDA_ERROR_INVALID_CONTEXT = 201;
    public static final int CUDA_ERROR_NO_BINARY_FOR_GPU = 209;
    public static final int CUDA_ERROR_INVALID_PTX = 218;
    public static final int CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222;
    public static final int CUDA_ERROR_INVALID_HANDLE = 400;
    public static final int CUDA_ERROR_NOT_FOUND = 500;
    public static final int CUDA_ERROR_NOT_READY = 600;
    public static final int CUDA_ERROR_ILLEGAL_ADDRESS = 700;
    public static final int CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701;
    public static final int CUDA_ERROR_LAUNCH_FAILED = 719;
    public static final int CUDA_ERROR_NOT_SUPPORTED = 801;
    public static final int CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803;
    public static final int CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE = 804;
    public static final int CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900;
    public static final int CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901;
    public static final int CUDA_ERROR_UNKNOWN = 999;

    // CUdevice_attribute
    public static final int CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8;
    public static final int CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK = 12;
    public static final int CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13;
    public static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    public static final int CU_DEVICE_ATTRIBUTE_INTEGRATED = 18;
    public static final int CU_DEVICE_ATTRIBUTE_ECC_ENABLED = 32;
    public static final int CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33;
    public static final int CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36;
    public static final int CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37;
    public static final int CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39;
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR = 81;
    public static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

    // CUstream_flags, CUevent_flags, CUstreamCaptureMode
    public static final int CU_STREAM_DEFAULT = 0x0;
    public static final int CU_STREAM_NON_BLOCKING = 0x1;
    public static final int CU_EVENT_DEFAULT = 0x0;
    public static final int CU_EVENT_BLOCKING_SYNC = 0x1;
    public static final int CU_EVENT_DISABLE_TIMING = 0x2;
    public static final int CU_STREAM_CAPTURE_MODE_GLOBAL = 0;
    public static final int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
    public static final int CU_STREAM_CAPTURE_MODE_RELAXED = 2;

    // cuMemHostAlloc flags (#define)
    public static final int CU_MEMHOSTALLOC_PORTABLE = 0x01;
    public static final int CU_MEMHOSTALLOC_DEVICEMAP = 0x02;
    public static final int CU_MEMHOSTALLOC_WRITECOMBINED = 0x04;

    // CUjit_option, CUfunction_attribute, CUgraphInstantiate_flags
    public static final int CU_JIT_INFO_LOG_BUFFER = 3;
    public static final int CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4;
    public static final int CU_JIT_ERROR_LOG_BUFFER = 5;
    public static final int CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
    public static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    public static final int CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH = 1;

    // CUlaunchAttributeID
    public static final int CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;

    /** {@snippet lang=c : typedef union CUlaunchAttributeValue_union { char pad[64]; ... } CUlaunchAttributeValue; } */
    public static final UnionLayout CUlaunchAttributeValue = MemoryLayout.unionLayout(
            MemoryLayout.sequenceLayout(64, C_CHAR).withName("pad")).withName("CUlaunchAttributeValue");

    /** {@snippet lang=c : typedef struct CUlaunchAttribute_st { CUlaunchAttributeID id; char pad[4]; CUlaunchAttributeValue value; } CUlaunchAttribute; } */
    public static final StructLayout CUlaunchAttribute = MemoryLayout.structLayout(
            CUlaunchAttributeID.withName("id"),
            MemoryLayout.sequenceLayout(4, C_CHAR).withName("pad"),
            CUlaunchAttributeValue.withName("value")).withName("CUlaunchAttribute");

    /** {@snippet lang=c : typedef struct CUlaunchConfig_st { unsigned int gridDimX ... sharedMemBytes; CUstream hStream; CUlaunchAttribute *attrs; unsigned int numAttrs; } CUlaunchConfig; } */
    public static final StructLayout CUlaunchConfig = MemoryLayout.structLayout(
            C_INT.withName("gridDimX"), C_INT.withName("gridDimY"), C_INT.withName("gridDimZ"),
            C_INT.withName("blockDimX"), C_INT.withName("blockDimY"), C_INT.withName("blockDimZ"),
            C_INT.withName("sharedMemBytes"), MemoryLayout.paddingLayout(4),
            CUstream.withName("hStream"),
            C_POINTER.withName("attrs"),
            C_INT.withName("numAttrs"), MemoryLayout.paddingLayout(4)).withName("CUlaunchConfig");

    /** Opened on the first call of any function, never at class load. */
    private static final class Library {
        static final NativeLibrary LIB = NativeLibrary.open("CUDA", "libcuda.so.1");
    }

    /** Where the library was loaded from, or the one-line reason it is unavailable (opens it on first use). */
    public static String libraryStatus() {
        return Library.LIB.describe();
    }

    public static boolean libraryAvailable() {
        return Library.LIB.available();
    }

    private static final class cuInit$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuInit", FunctionDescriptor.of(CUresult, C_INT));
    }

    /** {@snippet lang=c : CUresult cuInit(unsigned int Flags) } */
    public static int cuInit(int Flags) {
        try {
            return (int) cuInit$.HANDLE.invokeExact(Flags);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuDriverGetVersion$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuDriverGetVersion", FunctionDescriptor.of(CUresult, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuDriverGetVersion(int *driverVersion) } */
    public static int cuDriverGetVersion(MemorySegment driverVersion) {
        try {
            return (int) cuDriverGetVersion$.HANDLE.invokeExact(driverVersion);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuDeviceGetCount$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuDeviceGetCount", FunctionDescriptor.of(CUresult, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuDeviceGetCount(int *count) } */
    public static int cuDeviceGetCount(MemorySegment count) {
        try {
            return (int) cuDeviceGetCount$.HANDLE.invokeExact(count);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuDeviceGet$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuDeviceGet", FunctionDescriptor.of(CUresult, C_POINTER, C_INT));
    }

    /** {@snippet lang=c : CUresult cuDeviceGet(CUdevice *device, int ordinal) } */
    public static int cuDeviceGet(MemorySegment device, int ordinal) {
        try {
            return (int) cuDeviceGet$.HANDLE.invokeExact(device, ordinal);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuDeviceGetName$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuDeviceGetName", FunctionDescriptor.of(CUresult, C_POINTER, C_INT, CUdevice));
    }

    /** {@snippet lang=c : CUresult cuDeviceGetName(char *name, int len, CUdevice dev) } */
    public static int cuDeviceGetName(MemorySegment name, int len, int dev) {
        try {
            return (int) cuDeviceGetName$.HANDLE.invokeExact(name, len, dev);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuDeviceGetAttribute$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuDeviceGetAttribute", FunctionDescriptor.of(CUresult, C_POINTER, CUdevice_attribute, CUdevice));
    }

    /** {@snippet lang=c : CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev) } */
    public static int cuDeviceGetAttribute(MemorySegment pi, int attrib, int dev) {
        try {
            return (int) cuDeviceGetAttribute$.HANDLE.invokeExact(pi, attrib, dev);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuDeviceTotalMem_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuDeviceTotalMem_v2", FunctionDescriptor.of(CUresult, C_POINTER, CUdevice));
    }

    /** {@snippet lang=c : CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) } */
    public static int cuDeviceTotalMem_v2(MemorySegment bytes, int dev) {
        try {
            return (int) cuDeviceTotalMem_v2$.HANDLE.invokeExact(bytes, dev);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemGetInfo_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemGetInfo_v2", FunctionDescriptor.of(CUresult, C_POINTER, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuMemGetInfo_v2(size_t *free, size_t *total) } */
    public static int cuMemGetInfo_v2(MemorySegment free, MemorySegment total) {
        try {
            return (int) cuMemGetInfo_v2$.HANDLE.invokeExact(free, total);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuDevicePrimaryCtxRetain$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuDevicePrimaryCtxRetain", FunctionDescriptor.of(CUresult, C_POINTER, CUdevice));
    }

    /** {@snippet lang=c : CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) } */
    public static int cuDevicePrimaryCtxRetain(MemorySegment pctx, int dev) {
        try {
            return (int) cuDevicePrimaryCtxRetain$.HANDLE.invokeExact(pctx, dev);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuDevicePrimaryCtxRelease_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuDevicePrimaryCtxRelease_v2", FunctionDescriptor.of(CUresult, CUdevice));
    }

    /** {@snippet lang=c : CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) } */
    public static int cuDevicePrimaryCtxRelease_v2(int dev) {
        try {
            return (int) cuDevicePrimaryCtxRelease_v2$.HANDLE.invokeExact(dev);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuCtxSetCurrent$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuCtxSetCurrent", FunctionDescriptor.of(CUresult, CUcontext));
    }

    /** {@snippet lang=c : CUresult cuCtxSetCurrent(CUcontext ctx) } */
    public static int cuCtxSetCurrent(MemorySegment ctx) {
        try {
            return (int) cuCtxSetCurrent$.HANDLE.invokeExact(ctx);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuCtxGetCurrent$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuCtxGetCurrent", FunctionDescriptor.of(CUresult, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuCtxGetCurrent(CUcontext *pctx) } */
    public static int cuCtxGetCurrent(MemorySegment pctx) {
        try {
            return (int) cuCtxGetCurrent$.HANDLE.invokeExact(pctx);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuCtxSynchronize$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuCtxSynchronize", FunctionDescriptor.of(CUresult));
    }

    /** {@snippet lang=c : CUresult cuCtxSynchronize(void) } */
    public static int cuCtxSynchronize() {
        try {
            return (int) cuCtxSynchronize$.HANDLE.invokeExact();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuStreamCreate$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuStreamCreate", FunctionDescriptor.of(CUresult, C_POINTER, C_INT));
    }

    /** {@snippet lang=c : CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags) } */
    public static int cuStreamCreate(MemorySegment phStream, int Flags) {
        try {
            return (int) cuStreamCreate$.HANDLE.invokeExact(phStream, Flags);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuStreamDestroy_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuStreamDestroy_v2", FunctionDescriptor.of(CUresult, CUstream));
    }

    /** {@snippet lang=c : CUresult cuStreamDestroy_v2(CUstream hStream) } */
    public static int cuStreamDestroy_v2(MemorySegment hStream) {
        try {
            return (int) cuStreamDestroy_v2$.HANDLE.invokeExact(hStream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuStreamSynchronize$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuStreamSynchronize", FunctionDescriptor.of(CUresult, CUstream));
    }

    /** {@snippet lang=c : CUresult cuStreamSynchronize(CUstream hStream) } */
    public static int cuStreamSynchronize(MemorySegment hStream) {
        try {
            return (int) cuStreamSynchronize$.HANDLE.invokeExact(hStream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuStreamQuery$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuStreamQuery", FunctionDescriptor.of(CUresult, CUstream));
    }

    /** {@snippet lang=c : CUresult cuStreamQuery(CUstream hStream) } */
    public static int cuStreamQuery(MemorySegment hStream) {
        try {
            return (int) cuStreamQuery$.HANDLE.invokeExact(hStream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuStreamWaitEvent$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuStreamWaitEvent", FunctionDescriptor.of(CUresult, CUstream, CUevent, C_INT));
    }

    /** {@snippet lang=c : CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) } */
    public static int cuStreamWaitEvent(MemorySegment hStream, MemorySegment hEvent, int Flags) {
        try {
            return (int) cuStreamWaitEvent$.HANDLE.invokeExact(hStream, hEvent, Flags);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuEventCreate$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuEventCreate", FunctionDescriptor.of(CUresult, C_POINTER, C_INT));
    }

    /** {@snippet lang=c : CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags) } */
    public static int cuEventCreate(MemorySegment phEvent, int Flags) {
        try {
            return (int) cuEventCreate$.HANDLE.invokeExact(phEvent, Flags);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuEventRecord$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuEventRecord", FunctionDescriptor.of(CUresult, CUevent, CUstream));
    }

    /** {@snippet lang=c : CUresult cuEventRecord(CUevent hEvent, CUstream hStream) } */
    public static int cuEventRecord(MemorySegment hEvent, MemorySegment hStream) {
        try {
            return (int) cuEventRecord$.HANDLE.invokeExact(hEvent, hStream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuEventSynchronize$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuEventSynchronize", FunctionDescriptor.of(CUresult, CUevent));
    }

    /** {@snippet lang=c : CUresult cuEventSynchronize(CUevent hEvent) } */
    public static int cuEventSynchronize(MemorySegment hEvent) {
        try {
            return (int) cuEventSynchronize$.HANDLE.invokeExact(hEvent);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuEventElapsedTime$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuEventElapsedTime", FunctionDescriptor.of(CUresult, C_POINTER, CUevent, CUevent));
    }

    /** {@snippet lang=c : CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd) } */
    public static int cuEventElapsedTime(MemorySegment pMilliseconds, MemorySegment hStart, MemorySegment hEnd) {
        try {
            return (int) cuEventElapsedTime$.HANDLE.invokeExact(pMilliseconds, hStart, hEnd);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuEventElapsedTime_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuEventElapsedTime_v2", FunctionDescriptor.of(CUresult, C_POINTER, CUevent, CUevent));
    }

    /** {@snippet lang=c : CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd) } */
    public static int cuEventElapsedTime_v2(MemorySegment pMilliseconds, MemorySegment hStart, MemorySegment hEnd) {
        try {
            return (int) cuEventElapsedTime_v2$.HANDLE.invokeExact(pMilliseconds, hStart, hEnd);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuEventDestroy_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuEventDestroy_v2", FunctionDescriptor.of(CUresult, CUevent));
    }

    /** {@snippet lang=c : CUresult cuEventDestroy_v2(CUevent hEvent) } */
    public static int cuEventDestroy_v2(MemorySegment hEvent) {
        try {
            return (int) cuEventDestroy_v2$.HANDLE.invokeExact(hEvent);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemAlloc_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemAlloc_v2", FunctionDescriptor.of(CUresult, C_POINTER, C_LONG));
    }

    /** {@snippet lang=c : CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) } */
    public static int cuMemAlloc_v2(MemorySegment dptr, long bytesize) {
        try {
            return (int) cuMemAlloc_v2$.HANDLE.invokeExact(dptr, bytesize);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemFree_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemFree_v2", FunctionDescriptor.of(CUresult, CUdeviceptr));
    }

    /** {@snippet lang=c : CUresult cuMemFree_v2(CUdeviceptr dptr) } */
    public static int cuMemFree_v2(long dptr) {
        try {
            return (int) cuMemFree_v2$.HANDLE.invokeExact(dptr);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemsetD8_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemsetD8_v2", FunctionDescriptor.of(CUresult, CUdeviceptr, C_CHAR, C_LONG));
    }

    /** {@snippet lang=c : CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N) } */
    public static int cuMemsetD8_v2(long dstDevice, byte uc, long N) {
        try {
            return (int) cuMemsetD8_v2$.HANDLE.invokeExact(dstDevice, uc, N);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemsetD32_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemsetD32_v2", FunctionDescriptor.of(CUresult, CUdeviceptr, C_INT, C_LONG));
    }

    /** {@snippet lang=c : CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N) } */
    public static int cuMemsetD32_v2(long dstDevice, int ui, long N) {
        try {
            return (int) cuMemsetD32_v2$.HANDLE.invokeExact(dstDevice, ui, N);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemcpyHtoD_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemcpyHtoD_v2", FunctionDescriptor.of(CUresult, CUdeviceptr, C_POINTER, C_LONG));
    }

    /** {@snippet lang=c : CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount) } */
    public static int cuMemcpyHtoD_v2(long dstDevice, MemorySegment srcHost, long ByteCount) {
        try {
            return (int) cuMemcpyHtoD_v2$.HANDLE.invokeExact(dstDevice, srcHost, ByteCount);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemcpyDtoH_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemcpyDtoH_v2", FunctionDescriptor.of(CUresult, C_POINTER, CUdeviceptr, C_LONG));
    }

    /** {@snippet lang=c : CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount) } */
    public static int cuMemcpyDtoH_v2(MemorySegment dstHost, long srcDevice, long ByteCount) {
        try {
            return (int) cuMemcpyDtoH_v2$.HANDLE.invokeExact(dstHost, srcDevice, ByteCount);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemcpyDtoD_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemcpyDtoD_v2", FunctionDescriptor.of(CUresult, CUdeviceptr, CUdeviceptr, C_LONG));
    }

    /** {@snippet lang=c : CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount) } */
    public static int cuMemcpyDtoD_v2(long dstDevice, long srcDevice, long ByteCount) {
        try {
            return (int) cuMemcpyDtoD_v2$.HANDLE.invokeExact(dstDevice, srcDevice, ByteCount);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemcpyHtoDAsync_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemcpyHtoDAsync_v2", FunctionDescriptor.of(CUresult, CUdeviceptr, C_POINTER, C_LONG, CUstream));
    }

    /** {@snippet lang=c : CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream) } */
    public static int cuMemcpyHtoDAsync_v2(long dstDevice, MemorySegment srcHost, long ByteCount, MemorySegment hStream) {
        try {
            return (int) cuMemcpyHtoDAsync_v2$.HANDLE.invokeExact(dstDevice, srcHost, ByteCount, hStream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemcpyDtoHAsync_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemcpyDtoHAsync_v2", FunctionDescriptor.of(CUresult, C_POINTER, CUdeviceptr, C_LONG, CUstream));
    }

    /** {@snippet lang=c : CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream) } */
    public static int cuMemcpyDtoHAsync_v2(MemorySegment dstHost, long srcDevice, long ByteCount, MemorySegment hStream) {
        try {
            return (int) cuMemcpyDtoHAsync_v2$.HANDLE.invokeExact(dstHost, srcDevice, ByteCount, hStream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemcpyDtoDAsync_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemcpyDtoDAsync_v2", FunctionDescriptor.of(CUresult, CUdeviceptr, CUdeviceptr, C_LONG, CUstream));
    }

    /** {@snippet lang=c : CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream) } */
    public static int cuMemcpyDtoDAsync_v2(long dstDevice, long srcDevice, long ByteCount, MemorySegment hStream) {
        try {
            return (int) cuMemcpyDtoDAsync_v2$.HANDLE.invokeExact(dstDevice, srcDevice, ByteCount, hStream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemHostAlloc$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemHostAlloc", FunctionDescriptor.of(CUresult, C_POINTER, C_LONG, C_INT));
    }

    /** {@snippet lang=c : CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags) } */
    public static int cuMemHostAlloc(MemorySegment pp, long bytesize, int Flags) {
        try {
            return (int) cuMemHostAlloc$.HANDLE.invokeExact(pp, bytesize, Flags);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuMemFreeHost$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuMemFreeHost", FunctionDescriptor.of(CUresult, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuMemFreeHost(void *p) } */
    public static int cuMemFreeHost(MemorySegment p) {
        try {
            return (int) cuMemFreeHost$.HANDLE.invokeExact(p);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuModuleLoadData$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuModuleLoadData", FunctionDescriptor.of(CUresult, C_POINTER, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuModuleLoadData(CUmodule *module, const void *image) } */
    public static int cuModuleLoadData(MemorySegment module, MemorySegment image) {
        try {
            return (int) cuModuleLoadData$.HANDLE.invokeExact(module, image);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuModuleLoadDataEx$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuModuleLoadDataEx", FunctionDescriptor.of(CUresult, C_POINTER, C_POINTER, C_INT, C_POINTER, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions, CUjit_option *options, void **optionValues) } */
    public static int cuModuleLoadDataEx(MemorySegment module, MemorySegment image, int numOptions, MemorySegment options, MemorySegment optionValues) {
        try {
            return (int) cuModuleLoadDataEx$.HANDLE.invokeExact(module, image, numOptions, options, optionValues);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuModuleUnload$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuModuleUnload", FunctionDescriptor.of(CUresult, CUmodule));
    }

    /** {@snippet lang=c : CUresult cuModuleUnload(CUmodule hmod) } */
    public static int cuModuleUnload(MemorySegment hmod) {
        try {
            return (int) cuModuleUnload$.HANDLE.invokeExact(hmod);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuModuleGetFunction$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuModuleGetFunction", FunctionDescriptor.of(CUresult, C_POINTER, CUmodule, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name) } */
    public static int cuModuleGetFunction(MemorySegment hfunc, MemorySegment hmod, MemorySegment name) {
        try {
            return (int) cuModuleGetFunction$.HANDLE.invokeExact(hfunc, hmod, name);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuFuncSetAttribute$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuFuncSetAttribute", FunctionDescriptor.of(CUresult, CUfunction, CUfunction_attribute, C_INT));
    }

    /** {@snippet lang=c : CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) } */
    public static int cuFuncSetAttribute(MemorySegment hfunc, int attrib, int value) {
        try {
            return (int) cuFuncSetAttribute$.HANDLE.invokeExact(hfunc, attrib, value);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuLaunchKernel$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuLaunchKernel", FunctionDescriptor.of(CUresult, CUfunction, C_INT, C_INT, C_INT, C_INT, C_INT, C_INT, C_INT, CUstream, C_POINTER, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra) } */
    public static int cuLaunchKernel(MemorySegment f, int gridDimX, int gridDimY, int gridDimZ, int blockDimX, int blockDimY, int blockDimZ, int sharedMemBytes, MemorySegment hStream, MemorySegment kernelParams, MemorySegment extra) {
        try {
            return (int) cuLaunchKernel$.HANDLE.invokeExact(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, kernelParams, extra);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuLaunchKernelEx$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuLaunchKernelEx", FunctionDescriptor.of(CUresult, C_POINTER, CUfunction, C_POINTER, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra) } */
    public static int cuLaunchKernelEx(MemorySegment config, MemorySegment f, MemorySegment kernelParams, MemorySegment extra) {
        try {
            return (int) cuLaunchKernelEx$.HANDLE.invokeExact(config, f, kernelParams, extra);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuStreamBeginCapture_v2$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuStreamBeginCapture_v2", FunctionDescriptor.of(CUresult, CUstream, CUstreamCaptureMode));
    }

    /** {@snippet lang=c : CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) } */
    public static int cuStreamBeginCapture_v2(MemorySegment hStream, int mode) {
        try {
            return (int) cuStreamBeginCapture_v2$.HANDLE.invokeExact(hStream, mode);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuStreamEndCapture$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuStreamEndCapture", FunctionDescriptor.of(CUresult, CUstream, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph) } */
    public static int cuStreamEndCapture(MemorySegment hStream, MemorySegment phGraph) {
        try {
            return (int) cuStreamEndCapture$.HANDLE.invokeExact(hStream, phGraph);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuGraphInstantiateWithFlags$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuGraphInstantiateWithFlags", FunctionDescriptor.of(CUresult, C_POINTER, CUgraph, C_LONG_LONG));
    }

    /** {@snippet lang=c : CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags) } */
    public static int cuGraphInstantiateWithFlags(MemorySegment phGraphExec, MemorySegment hGraph, long flags) {
        try {
            return (int) cuGraphInstantiateWithFlags$.HANDLE.invokeExact(phGraphExec, hGraph, flags);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuGraphLaunch$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuGraphLaunch", FunctionDescriptor.of(CUresult, CUgraphExec, CUstream));
    }

    /** {@snippet lang=c : CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) } */
    public static int cuGraphLaunch(MemorySegment hGraphExec, MemorySegment hStream) {
        try {
            return (int) cuGraphLaunch$.HANDLE.invokeExact(hGraphExec, hStream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuGraphExecDestroy$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuGraphExecDestroy", FunctionDescriptor.of(CUresult, CUgraphExec));
    }

    /** {@snippet lang=c : CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) } */
    public static int cuGraphExecDestroy(MemorySegment hGraphExec) {
        try {
            return (int) cuGraphExecDestroy$.HANDLE.invokeExact(hGraphExec);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuGraphDestroy$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuGraphDestroy", FunctionDescriptor.of(CUresult, CUgraph));
    }

    /** {@snippet lang=c : CUresult cuGraphDestroy(CUgraph hGraph) } */
    public static int cuGraphDestroy(MemorySegment hGraph) {
        try {
            return (int) cuGraphDestroy$.HANDLE.invokeExact(hGraph);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuGetErrorName$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuGetErrorName", FunctionDescriptor.of(CUresult, CUresult, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuGetErrorName(CUresult error, const char **pStr) } */
    public static int cuGetErrorName(int error, MemorySegment pStr) {
        try {
            return (int) cuGetErrorName$.HANDLE.invokeExact(error, pStr);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class cuGetErrorString$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("cuGetErrorString", FunctionDescriptor.of(CUresult, CUresult, C_POINTER));
    }

    /** {@snippet lang=c : CUresult cuGetErrorString(CUresult error, const char **pStr) } */
    public static int cuGetErrorString(int error, MemorySegment pStr) {
        try {
            return (int) cuGetErrorString$.HANDLE.invokeExact(error, pStr);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

}
