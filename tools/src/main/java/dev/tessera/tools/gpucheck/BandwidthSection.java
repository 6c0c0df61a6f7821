package dev.tessera.tools.gpucheck;

import dev.tessera.bindings.LibraryUnavailableException;
import dev.tessera.bindings.cuda.cuda_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Locale;

import static dev.tessera.tools.gpucheck.CheckReport.log;

/** The copy roofline: device-to-device copy bandwidth timed with events, and each batch-1 decode of the decode section as a fraction of it. */
final class BandwidthSection extends CheckSection {
    private final DecodeSection decode;

    BandwidthSection(CheckSetup setup, CheckReport report, DecodeSection decode) {
        super(setup, report);
        this.decode = decode;
    }

    @Override
    String name() {
        return "bandwidth";
    }

    @Override
    void run() {
        long size = quick ? 256L << 20 : 1L << 30;
        int reps = 10;
        double bytesPerS = cpuOnly ? hostCopyBandwidth(Math.min(size, 256L << 20), 5) : deviceCopyBandwidth(size, reps);
        String what = cpuOnly ? "host memcpy (dry run)" : "cuMemcpyDtoD " + (size >> 20) + " MiB";
        log("bandwidth: %s %.1f GB/s (read + write)", what, bytesPerS / 1e9);
        report.row("bandwidth", what, String.format(Locale.ROOT, "%.1f GB/s", bytesPerS / 1e9), "ok");
        if (decode.rates.isEmpty()) {
            report.row("bandwidth", "decode b1 / roofline", "n/a (the decode section measured no model)", "SKIP");
            return;
        }
        // A batch-1 decode step reads every weight once, so the copy bandwidth over the bytes a token reads is its ceiling.
        for (DecodeSection.DecodeRate rate : decode.rates) {
            double ideal = bytesPerS / rate.bytesPerToken(), fraction = rate.tokensPerS() / ideal;
            log("roofline: %s decode b1 reads %.2f GB of weights per token; at %.1f GB/s the ceiling is %.1f tok/s; measured %.1f = %.0f%%",
                    rate.label(), rate.bytesPerToken() / 1e9, bytesPerS / 1e9, ideal, rate.tokensPerS(), 100 * fraction);
            report.row("bandwidth", rate.label() + " decode b1 / roofline", String.format(Locale.ROOT, "%.0f%% (%.1f of %.1f tok/s, %.2f GB a token)",
                    100 * fraction, rate.tokensPerS(), ideal, rate.bytesPerToken() / 1e9), "ok");
        }
    }

    /** Device-to-device copy bandwidth counting the read and the write, timed with events on the legacy stream. */
    static double deviceCopyBandwidth(long size, int reps) {
        try (Arena arena = Arena.ofConfined()) {
            DeviceSection.check(cuda_h.cuInit(0), "cuInit");
            MemorySegment i = arena.allocate(cuda_h.C_INT);
            DeviceSection.check(cuda_h.cuDeviceGet(i, 0), "cuDeviceGet");
            int dev = i.get(cuda_h.C_INT, 0);
            MemorySegment ctx = arena.allocate(cuda_h.C_POINTER);
            DeviceSection.check(cuda_h.cuDevicePrimaryCtxRetain(ctx, dev), "cuDevicePrimaryCtxRetain");
            MemorySegment previous = arena.allocate(cuda_h.C_POINTER);
            DeviceSection.check(cuda_h.cuCtxGetCurrent(previous), "cuCtxGetCurrent");
            DeviceSection.check(cuda_h.cuCtxSetCurrent(ctx.get(cuda_h.C_POINTER, 0)), "cuCtxSetCurrent");
            MemorySegment p = arena.allocate(cuda_h.C_LONG_LONG);
            long src = 0, dst = 0;
            MemorySegment start = MemorySegment.NULL, end = MemorySegment.NULL;
            try {
                DeviceSection.check(cuda_h.cuMemAlloc_v2(p, size), "cuMemAlloc " + size);
                src = p.get(cuda_h.C_LONG_LONG, 0);
                DeviceSection.check(cuda_h.cuMemAlloc_v2(p, size), "cuMemAlloc " + size);
                dst = p.get(cuda_h.C_LONG_LONG, 0);
                DeviceSection.check(cuda_h.cuMemsetD8_v2(src, (byte) 1, size), "cuMemsetD8");
                MemorySegment e = arena.allocate(cuda_h.C_POINTER);
                DeviceSection.check(cuda_h.cuEventCreate(e, cuda_h.CU_EVENT_DEFAULT), "cuEventCreate");
                start = e.get(cuda_h.C_POINTER, 0);
                DeviceSection.check(cuda_h.cuEventCreate(e, cuda_h.CU_EVENT_DEFAULT), "cuEventCreate");
                end = e.get(cuda_h.C_POINTER, 0);
                DeviceSection.check(cuda_h.cuMemcpyDtoDAsync_v2(dst, src, size, MemorySegment.NULL), "cuMemcpyDtoDAsync");
                DeviceSection.check(cuda_h.cuCtxSynchronize(), "cuCtxSynchronize");
                DeviceSection.check(cuda_h.cuEventRecord(start, MemorySegment.NULL), "cuEventRecord");
                for (int r = 0; r < reps; r++) DeviceSection.check(cuda_h.cuMemcpyDtoDAsync_v2(dst, src, size, MemorySegment.NULL), "cuMemcpyDtoDAsync");
                DeviceSection.check(cuda_h.cuEventRecord(end, MemorySegment.NULL), "cuEventRecord");
                DeviceSection.check(cuda_h.cuEventSynchronize(end), "cuEventSynchronize");
                MemorySegment ms = arena.allocate(cuda_h.C_FLOAT);
                int rc;
                try {
                    rc = cuda_h.cuEventElapsedTime_v2(ms, start, end);
                } catch (LibraryUnavailableException old) {
                    rc = cuda_h.cuEventElapsedTime(ms, start, end); // drivers before 12.8 export only the first version
                }
                DeviceSection.check(rc, "cuEventElapsedTime");
                double seconds = ms.get(cuda_h.C_FLOAT, 0) / 1e3;
                return 2.0 * size * reps / seconds;
            } finally {
                if (!start.equals(MemorySegment.NULL)) cuda_h.cuEventDestroy_v2(start);
                if (!end.equals(MemorySegment.NULL)) cuda_h.cuEventDestroy_v2(end);
                if (src != 0) cuda_h.cuMemFree_v2(src);
                if (dst != 0) cuda_h.cuMemFree_v2(dst);
                cuda_h.cuCtxSetCurrent(previous.get(cuda_h.C_POINTER, 0));
                cuda_h.cuDevicePrimaryCtxRelease_v2(dev);
            }
        }
    }

    /** The dry run's stand-in: host memory copy bandwidth, read + write. */
    static double hostCopyBandwidth(long size, int reps) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(size, 64), dst = arena.allocate(size, 64);
            src.fill((byte) 1);
            MemorySegment.copy(src, 0, dst, 0, size);
            long t0 = System.nanoTime();
            for (int r = 0; r < reps; r++) MemorySegment.copy(src, 0, dst, 0, size);
            return 2.0 * size * reps / ((System.nanoTime() - t0) / 1e9);
        }
    }
}
