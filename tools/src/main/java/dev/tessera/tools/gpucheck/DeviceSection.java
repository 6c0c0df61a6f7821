package dev.tessera.tools.gpucheck;

import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.DeviceSelector;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Locale;

import static dev.tessera.tools.gpucheck.CheckReport.log;

/** Device facts from the driver: name, compute capability, SMs, memory and its theoretical bandwidth, driver version. */
final class DeviceSection extends CheckSection {
    DeviceSection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "device";
    }

    @Override
    void run() {
        if (cpuOnly) {
            report.row("device", "device", "CPU only (dry run), " + Runtime.getRuntime().availableProcessors() + " cores", "SKIP");
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            check(cuda_h.cuInit(0), "cuInit");
            MemorySegment i = arena.allocate(cuda_h.C_INT);
            check(cuda_h.cuDriverGetVersion(i), "cuDriverGetVersion");
            int version = i.get(cuda_h.C_INT, 0);
            check(cuda_h.cuDeviceGetCount(i), "cuDeviceGetCount");
            int count = i.get(cuda_h.C_INT, 0);
            int ordinal = DeviceSelector.parse(device).index();
            check(cuda_h.cuDeviceGet(i, ordinal), "cuDeviceGet");
            int dev = i.get(cuda_h.C_INT, 0);
            MemorySegment name = arena.allocate(256);
            check(cuda_h.cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
            MemorySegment bytes = arena.allocate(cuda_h.C_LONG);
            check(cuda_h.cuDeviceTotalMem_v2(bytes, dev), "cuDeviceTotalMem");
            int major = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
            int minor = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
            int sms = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
            int clockKhz = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_CLOCK_RATE, dev);
            int memClockKhz = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, dev);
            int busBits = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, dev);
            int l2 = attribute(arena, cuda_h.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, dev);
            // Double data rate: two transfers per memory clock over the whole bus.
            double peak = 2.0 * memClockKhz * 1e3 * busBits / 8;
            String deviceName = name.getString(0);
            log("device %d of %d: %s, sm_%d%d, %d SMs at %d MHz, %.1f GiB, %d-bit bus at %d MHz (peak %.0f GB/s), L2 %d MiB, driver %d.%d",
                    ordinal, count, deviceName, major, minor, sms, clockKhz / 1000, bytes.get(cuda_h.C_LONG, 0) / (double) (1L << 30),
                    busBits, memClockKhz / 1000, peak / 1e9, l2 >> 20, version / 1000, version % 1000 / 10);
            report.row("device", "name", deviceName + " (sm_" + major + minor + ", " + sms + " SMs)", "ok");
            report.row("device", "memory", String.format(Locale.ROOT, "%.1f GiB, peak %.0f GB/s", bytes.get(cuda_h.C_LONG, 0) / (double) (1L << 30), peak / 1e9), "ok");
            report.row("device", "driver", "CUDA " + version / 1000 + "." + version % 1000 / 10 + " (" + cuda_h.libraryStatus() + ")", "ok");
        }
    }

    private static int attribute(Arena arena, int attribute, int dev) {
        MemorySegment v = arena.allocate(cuda_h.C_INT);
        check(cuda_h.cuDeviceGetAttribute(v, attribute, dev), "cuDeviceGetAttribute(" + attribute + ")");
        return v.get(cuda_h.C_INT, 0);
    }


    /** Throws with the driver's name for a failed CUresult. */
    static void check(int rc, String what) {
        if (rc == cuda_h.CUDA_SUCCESS) return;
        String name = "CUresult " + rc;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment p = arena.allocate(cuda_h.C_POINTER);
            if (cuda_h.cuGetErrorName(rc, p) == cuda_h.CUDA_SUCCESS) name = p.get(cuda_h.C_POINTER, 0).reinterpret(256).getString(0);
        }
        throw new IllegalStateException(what + " failed: " + name + " (" + rc + ")");
    }
}
