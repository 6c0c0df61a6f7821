package dev.tessera.kernels.cuda;

import dev.tessera.bindings.cuda.cuda_h;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.tessera.kernels.cuda.CudaException.check;

/**
 * One GPU as Tessera uses it: the device's primary context, one non-blocking stream every op is queued on, and the
 * module loaded from the tessera.fatbin resource. Owns the {@link Arena} for the driver's out-parameters.
 * Device memory is addressed by CUdeviceptr values (long).
 */
final class CudaDevice implements AutoCloseable {
    static final String FATBIN_RESOURCE = "tessera.fatbin";
    static final String NO_KERNELS = "this build has no CUDA kernels (nvcc was not found at build time)";

    final int ordinal;
    private final int device;
    final String name;
    /** Compute capability as major * 10 + minor (90 for an H100). */
    final int computeCapability;
    final MemorySegment context;
    final MemorySegment stream;
    final MemorySegment module;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment out = arena.allocate(ValueLayout.JAVA_LONG);

    CudaDevice(int ordinal) {
        byte[] image = fatbin();
        this.ordinal = ordinal;
        check(cuda_h.cuInit(0), "cuInit");
        MemorySegment count = arena.allocate(ValueLayout.JAVA_INT);
        check(cuda_h.cuDeviceGetCount(count), "cuDeviceGetCount");
        int numDevices = count.get(ValueLayout.JAVA_INT, 0);
        if (ordinal < 0 || ordinal >= numDevices)
            throw new CudaException("CUDA device " + ordinal + " requested, this machine has " + numDevices);
        check(cuda_h.cuDeviceGet(count, ordinal), "cuDeviceGet(" + ordinal + ")");
        this.device = count.get(ValueLayout.JAVA_INT, 0);
        MemorySegment nameBuf = arena.allocate(256);
        check(cuda_h.cuDeviceGetName(nameBuf, 256, device), "cuDeviceGetName");
        this.name = nameBuf.getString(0);
        this.computeCapability = 10 * attribute(cuda_h.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
                + attribute(cuda_h.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        check(cuda_h.cuDevicePrimaryCtxRetain(out, device), "cuDevicePrimaryCtxRetain");
        this.context = out.get(ValueLayout.ADDRESS, 0);
        makeCurrent();
        check(cuda_h.cuStreamCreate(out, cuda_h.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        this.stream = out.get(ValueLayout.ADDRESS, 0);
        MemorySegment imageSeg = arena.allocate(image.length + 1L, 16);
        MemorySegment.copy(image, 0, imageSeg, ValueLayout.JAVA_BYTE, 0, image.length);
        check(cuda_h.cuModuleLoadData(out, imageSeg), "cuModuleLoadData(" + FATBIN_RESOURCE + ", " + image.length + " bytes) on " + name);
        this.module = out.get(ValueLayout.ADDRESS, 0);
    }

    private int attribute(int attribute) {
        MemorySegment value = arena.allocate(ValueLayout.JAVA_INT);
        check(cuda_h.cuDeviceGetAttribute(value, attribute, device), "cuDeviceGetAttribute(" + attribute + ")");
        return value.get(ValueLayout.JAVA_INT, 0);
    }

    /** The fatbin nvcc built into the classes, or a one-line explanation of why there is none. */
    static byte[] fatbin() {
        try (InputStream in = CudaDevice.class.getResourceAsStream(FATBIN_RESOURCE)) {
            if (in == null) throw new CudaException(NO_KERNELS);
            return in.readAllBytes();
        } catch (IOException e) {
            throw new CudaException("reading " + FATBIN_RESOURCE + ": " + e.getMessage());
        }
    }

    /** The driver keeps the current context per thread; every backend entry point calls this (cheap). */
    void makeCurrent() {
        check(cuda_h.cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    MemorySegment function(String kernelName) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(ValueLayout.ADDRESS);
            check(cuda_h.cuModuleGetFunction(f, module, a.allocateFrom(kernelName)), "cuModuleGetFunction(" + kernelName + ")");
            return f.get(ValueLayout.ADDRESS, 0);
        }
    }

    /** Device memory not allocated by anyone now, in bytes (cuMemGetInfo). */
    long freeBytes() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(ValueLayout.JAVA_LONG), total = arena.allocate(ValueLayout.JAVA_LONG);
            check(cuda_h.cuMemGetInfo_v2(free, total), "cuMemGetInfo on " + name);
            return free.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    long allocate(long sizeBytes) {
        synchronized (out) {
            check(cuda_h.cuMemAlloc_v2(out, Math.max(sizeBytes, 1)), "cuMemAlloc(" + sizeBytes + " bytes) on " + name);
            return out.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    void free(long pointer) {
        if (pointer != 0) check(cuda_h.cuMemFree_v2(pointer), "cuMemFree");
    }

    void zero(long pointer, long sizeBytes) {
        check(cuda_h.cuMemsetD8_v2(pointer, (byte) 0, sizeBytes), "cuMemsetD8");
    }

    /** Copies host bytes to the device in stream order; the host memory may be reused when this returns. */
    void copyToDevice(long dst, MemorySegment src, long sizeBytes) {
        check(cuda_h.cuMemcpyHtoDAsync_v2(dst, src, sizeBytes, stream), "cuMemcpyHtoDAsync(" + sizeBytes + " bytes)");
    }

    /** Queues a device-to-host copy; call {@link #synchronize()} before reading dst. */
    void copyToHost(MemorySegment dst, long src, long sizeBytes) {
        check(cuda_h.cuMemcpyDtoHAsync_v2(dst, src, sizeBytes, stream), "cuMemcpyDtoHAsync(" + sizeBytes + " bytes)");
    }

    void synchronize() {
        check(cuda_h.cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    @Override
    public void close() {
        cuda_h.cuModuleUnload(module);
        cuda_h.cuStreamDestroy_v2(stream);
        cuda_h.cuDevicePrimaryCtxRelease_v2(device);
        arena.close();
    }
}
