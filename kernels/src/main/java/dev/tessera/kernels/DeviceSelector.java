package dev.tessera.kernels;

import dev.tessera.bindings.LibraryUnavailableException;
import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.cpu.CpuBackend;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.reflect.InvocationTargetException;

/**
 * Turns {@code --device auto|cpu|cuda|cuda:N} into a {@link Backend}. {@code auto} takes CUDA device 0 when the driver
 * loads, initialises and reports a device, and otherwise the CPU, saying why in one line on the log. Asking for
 * {@code cuda} where there is none is an error, never a silent fallback.
 */
public final class DeviceSelector {
    static final String CUDA_BACKEND_CLASS = "dev.tessera.kernels.cuda.CudaBackend";

    private DeviceSelector() {}

    public enum Kind { AUTO, CPU, CUDA }

    /** A parsed {@code --device} value; index is the CUDA ordinal (0 for auto and cpu). */
    public record Device(Kind kind, int index) {
        @Override
        public String toString() {
            return switch (kind) {
                case AUTO -> "auto";
                case CPU -> "cpu";
                case CUDA -> "cuda:" + index;
            };
        }
    }

    /** The device a {@code --device} value names, when it cannot be used. The message is one line. */
    public static final class DeviceUnavailableException extends RuntimeException {
        public DeviceUnavailableException(String message) {
            super(message);
        }
    }

    /** Parses auto, cpu, cuda (= cuda:0) or cuda:N; anything else is an IllegalArgumentException naming the value. */
    public static Device parse(String spec) {
        String s = spec == null ? "" : spec.trim();
        if (s.equals("auto")) return new Device(Kind.AUTO, 0);
        if (s.equals("cpu")) return new Device(Kind.CPU, 0);
        if (s.equals("cuda")) return new Device(Kind.CUDA, 0);
        if (s.startsWith("cuda:")) {
            try {
                int index = Integer.parseInt(s.substring(5));
                if (index >= 0) return new Device(Kind.CUDA, index);
            } catch (NumberFormatException e) {
                // reported below
            }
        }
        throw new IllegalArgumentException("--device must be auto, cpu, cuda or cuda:N, got '" + spec + "'");
    }

    /** Parses the spec and creates its backend, logging an auto fallback to stderr. */
    public static Backend create(String spec, int numThreads) {
        return create(parse(spec), numThreads, System.err);
    }

    public static Backend create(Device device, int numThreads, PrintStream log) {
        Device chosen = resolve(device, log);
        return chosen.kind() == Kind.CPU ? new CpuBackend(numThreads) : newCudaBackend(chosen.index());
    }

    /**
     * auto becomes cuda:0 or cpu (logging {@code tessera: no CUDA device (reason); using the CPU}); cuda:N is checked
     * and throws DeviceUnavailableException with the reason when the device is not there; cpu stays cpu.
     */
    public static Device resolve(Device device, PrintStream log) {
        return switch (device.kind()) {
            case CPU -> device;
            case AUTO -> {
                String reason = cudaUnavailableReason(0);
                if (reason == null) yield new Device(Kind.CUDA, 0);
                log.println("tessera: no CUDA device (" + reason + "); using the CPU");
                yield new Device(Kind.CPU, 0);
            }
            case CUDA -> {
                String reason = cudaUnavailableReason(device.index());
                if (reason != null) throw new DeviceUnavailableException(reason.startsWith("CUDA unavailable") ? reason : "CUDA unavailable: " + reason);
                yield device;
            }
        };
    }

    /** Null when CUDA device {@code index} can be used; otherwise why not, in one line. */
    public static String cudaUnavailableReason(int index) {
        try (Arena arena = Arena.ofConfined()) {
            int rc = cuda_h.cuInit(0);
            if (rc != cuda_h.CUDA_SUCCESS) return "cuInit failed: " + errorName(rc, arena);
            MemorySegment count = arena.allocate(cuda_h.C_INT);
            rc = cuda_h.cuDeviceGetCount(count);
            if (rc != cuda_h.CUDA_SUCCESS) return "cuDeviceGetCount failed: " + errorName(rc, arena);
            int numDevices = count.get(cuda_h.C_INT, 0);
            if (numDevices == 0) return "the driver reports no CUDA devices";
            if (index >= numDevices) return "cuda:" + index + " asked for, but the driver reports " + numDevices + " device" + (numDevices == 1 ? "" : "s");
            return null;
        } catch (LibraryUnavailableException e) {
            return e.getMessage();
        }
    }

    private static String errorName(int rc, Arena arena) {
        MemorySegment name = arena.allocate(cuda_h.C_POINTER);
        if (cuda_h.cuGetErrorName(rc, name) != cuda_h.CUDA_SUCCESS) return "CUresult " + rc;
        return name.get(cuda_h.C_POINTER, 0).reinterpret(256).getString(0) + " (" + rc + ")";
    }

    /** Reflective so kernels compiles whether or not the CUDA backend is part of this build. */
    private static Backend newCudaBackend(int index) {
        try {
            return (Backend) Class.forName(CUDA_BACKEND_CLASS).getConstructor(int.class).newInstance(index);
        } catch (ClassNotFoundException | NoSuchMethodException e) {
            throw new DeviceUnavailableException("CUDA unavailable: this build has no " + CUDA_BACKEND_CLASS + "(int)");
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            if (e.getCause() instanceof Error err) throw err;
            throw new IllegalStateException(e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot construct " + CUDA_BACKEND_CLASS + ": " + e, e);
        }
    }
}
