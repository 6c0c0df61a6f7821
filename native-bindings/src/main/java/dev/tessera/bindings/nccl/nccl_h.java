package dev.tessera.bindings.nccl;

import dev.tessera.bindings.NativeLibrary;

import java.lang.foreign.AddressLayout;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * FFM bindings for NCCL, {@code nccl.h} (libnccl.so.2), in jextract's shape. {@code ncclUniqueId} is a 128-byte
 * struct passed by value to {@code ncclCommInitRank}. Values come from the documented API; the header check compares
 * them with nccl.h wherever the header is installed.
 */
@SuppressWarnings({"unused", "checkstyle:MethodName", "checkstyle:ConstantName"})
public final class nccl_h {
    private nccl_h() {}

    public static final ValueLayout.OfByte C_CHAR = ValueLayout.JAVA_BYTE;
    public static final ValueLayout.OfInt C_INT = ValueLayout.JAVA_INT;
    public static final ValueLayout.OfLong C_LONG = ValueLayout.JAVA_LONG;
    public static final ValueLayout.OfLong C_LONG_LONG = ValueLayout.JAVA_LONG;
    public static final ValueLayout.OfFloat C_FLOAT = ValueLayout.JAVA_FLOAT;
    public static final AddressLayout C_POINTER = ValueLayout.ADDRESS;

    // Typedefs: the test compares each one's size with sizeof in the real header.
    public static final ValueLayout.OfInt ncclResult_t = C_INT;
    public static final ValueLayout.OfInt ncclDataType_t = C_INT;
    public static final ValueLayout.OfInt ncclRedOp_t = C_INT;
    public static final AddressLayout ncclComm_t = C_POINTER;
    public static final AddressLayout cudaStream_t = C_POINTER;

    /** {@snippet lang=c : typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId; } Passed by value to ncclCommInitRank. */
    public static final StructLayout ncclUniqueId = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(128, C_CHAR).withName("internal")).withName("ncclUniqueId");

    // nccl.h #define
    public static final int NCCL_UNIQUE_ID_BYTES = 128;

    // ncclResult_t
    public static final int ncclSuccess = 0;
    public static final int ncclUnhandledCudaError = 1;
    public static final int ncclSystemError = 2;
    public static final int ncclInternalError = 3;
    public static final int ncclInvalidArgument = 4;
    public static final int ncclInvalidUsage = 5;
    public static final int ncclRemoteError = 6;
    public static final int ncclInProgress = 7;

    // ncclDataType_t
    public static final int ncclInt8 = 0;
    public static final int ncclChar = 0;
    public static final int ncclUint8 = 1;
    public static final int ncclInt32 = 2;
    public static final int ncclInt = 2;
    public static final int ncclUint32 = 3;
    public static final int ncclInt64 = 4;
    public static final int ncclUint64 = 5;
    public static final int ncclFloat16 = 6;
    public static final int ncclHalf = 6;
    public static final int ncclFloat32 = 7;
    public static final int ncclFloat = 7;
    public static final int ncclFloat64 = 8;
    public static final int ncclDouble = 8;
    public static final int ncclBfloat16 = 9;

    // ncclRedOp_t
    public static final int ncclSum = 0;
    public static final int ncclProd = 1;
    public static final int ncclMax = 2;
    public static final int ncclMin = 3;
    public static final int ncclAvg = 4;

    /** Opened on the first call of any function, never at class load. */
    private static final class Library {
        static final NativeLibrary LIB = NativeLibrary.open("NCCL", "libnccl.so.2");
    }

    /** Where the library was loaded from, or the one-line reason it is unavailable (opens it on first use). */
    public static String libraryStatus() {
        return Library.LIB.describe();
    }

    public static boolean libraryAvailable() {
        return Library.LIB.available();
    }

    private static final class ncclGetVersion$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclGetVersion", FunctionDescriptor.of(ncclResult_t, C_POINTER));
    }

    /** {@snippet lang=c : ncclResult_t ncclGetVersion(int *version) } */
    public static int ncclGetVersion(MemorySegment version) {
        try {
            return (int) ncclGetVersion$.HANDLE.invokeExact(version);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclGetUniqueId$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclGetUniqueId", FunctionDescriptor.of(ncclResult_t, C_POINTER));
    }

    /** {@snippet lang=c : ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId) } */
    public static int ncclGetUniqueId(MemorySegment uniqueId) {
        try {
            return (int) ncclGetUniqueId$.HANDLE.invokeExact(uniqueId);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclCommInitRank$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclCommInitRank", FunctionDescriptor.of(ncclResult_t, C_POINTER, C_INT, ncclUniqueId, C_INT));
    }

    /** {@snippet lang=c : ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank) } */
    public static int ncclCommInitRank(MemorySegment comm, int nranks, MemorySegment commId, int rank) {
        try {
            return (int) ncclCommInitRank$.HANDLE.invokeExact(comm, nranks, commId, rank);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclCommInitAll$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclCommInitAll", FunctionDescriptor.of(ncclResult_t, C_POINTER, C_INT, C_POINTER));
    }

    /** {@snippet lang=c : ncclResult_t ncclCommInitAll(ncclComm_t *comm, int ndev, const int *devlist) } */
    public static int ncclCommInitAll(MemorySegment comm, int ndev, MemorySegment devlist) {
        try {
            return (int) ncclCommInitAll$.HANDLE.invokeExact(comm, ndev, devlist);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclAllReduce$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclAllReduce", FunctionDescriptor.of(ncclResult_t, C_POINTER, C_POINTER, C_LONG, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t));
    }

    /** {@snippet lang=c : ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) } */
    public static int ncclAllReduce(MemorySegment sendbuff, MemorySegment recvbuff, long count, int datatype, int op, MemorySegment comm, MemorySegment stream) {
        try {
            return (int) ncclAllReduce$.HANDLE.invokeExact(sendbuff, recvbuff, count, datatype, op, comm, stream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclAllGather$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclAllGather", FunctionDescriptor.of(ncclResult_t, C_POINTER, C_POINTER, C_LONG, ncclDataType_t, ncclComm_t, cudaStream_t));
    }

    /** {@snippet lang=c : ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount, ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) } */
    public static int ncclAllGather(MemorySegment sendbuff, MemorySegment recvbuff, long sendcount, int datatype, MemorySegment comm, MemorySegment stream) {
        try {
            return (int) ncclAllGather$.HANDLE.invokeExact(sendbuff, recvbuff, sendcount, datatype, comm, stream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclSend$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclSend", FunctionDescriptor.of(ncclResult_t, C_POINTER, C_LONG, ncclDataType_t, C_INT, ncclComm_t, cudaStream_t));
    }

    /** {@snippet lang=c : ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm, cudaStream_t stream) } */
    public static int ncclSend(MemorySegment sendbuff, long count, int datatype, int peer, MemorySegment comm, MemorySegment stream) {
        try {
            return (int) ncclSend$.HANDLE.invokeExact(sendbuff, count, datatype, peer, comm, stream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclRecv$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclRecv", FunctionDescriptor.of(ncclResult_t, C_POINTER, C_LONG, ncclDataType_t, C_INT, ncclComm_t, cudaStream_t));
    }

    /** {@snippet lang=c : ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm, cudaStream_t stream) } */
    public static int ncclRecv(MemorySegment recvbuff, long count, int datatype, int peer, MemorySegment comm, MemorySegment stream) {
        try {
            return (int) ncclRecv$.HANDLE.invokeExact(recvbuff, count, datatype, peer, comm, stream);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclGroupStart$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclGroupStart", FunctionDescriptor.of(ncclResult_t));
    }

    /** {@snippet lang=c : ncclResult_t ncclGroupStart(void) } */
    public static int ncclGroupStart() {
        try {
            return (int) ncclGroupStart$.HANDLE.invokeExact();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclGroupEnd$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclGroupEnd", FunctionDescriptor.of(ncclResult_t));
    }

    /** {@snippet lang=c : ncclResult_t ncclGroupEnd(void) } */
    public static int ncclGroupEnd() {
        try {
            return (int) ncclGroupEnd$.HANDLE.invokeExact();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclCommDestroy$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclCommDestroy", FunctionDescriptor.of(ncclResult_t, ncclComm_t));
    }

    /** {@snippet lang=c : ncclResult_t ncclCommDestroy(ncclComm_t comm) } */
    public static int ncclCommDestroy(MemorySegment comm) {
        try {
            return (int) ncclCommDestroy$.HANDLE.invokeExact(comm);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclCommAbort$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclCommAbort", FunctionDescriptor.of(ncclResult_t, ncclComm_t));
    }

    /** {@snippet lang=c : ncclResult_t ncclCommAbort(ncclComm_t comm) } */
    public static int ncclCommAbort(MemorySegment comm) {
        try {
            return (int) ncclCommAbort$.HANDLE.invokeExact(comm);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

    private static final class ncclGetErrorString$ {
        static final MethodHandle HANDLE = Library.LIB.downcall("ncclGetErrorString", FunctionDescriptor.of(C_POINTER, ncclResult_t));
    }

    /** {@snippet lang=c : const char *ncclGetErrorString(ncclResult_t result) } */
    public static MemorySegment ncclGetErrorString(int result) {
        try {
            return (MemorySegment) ncclGetErrorString$.HANDLE.invokeExact(result);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("should not reach here", t);
        }
    }

}
