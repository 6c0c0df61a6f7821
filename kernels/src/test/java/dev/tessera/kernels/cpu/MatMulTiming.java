package dev.tessera.kernels.cpu;

import dev.tessera.kernels.TensorType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Random;

/**
 * A quick A/B timer for MatMul on a noisy machine: per-call CPU time of the calling thread (one thread, so the
 * pool adds nothing), the minimum over repetitions. Not a test; run its main from the test classpath:
 * {@code java --add-modules jdk.incubator.vector -cp ... dev.tessera.kernels.cpu.MatMulTiming Q4_0 8192 2048 1,8,128}.
 * A first pass over all token counts only warms up the JIT. Prints GMAC/s for the weight as loaded by the backend and, for Q4_0, as the plain mapped row layout.
 */
public final class MatMulTiming {
    public static void main(String[] args) {
        TensorType type = TensorType.valueOf(args.length > 0 ? args[0] : "Q4_0");
        int rows = args.length > 1 ? Integer.parseInt(args[1]) : 8192, cols = args.length > 2 ? Integer.parseInt(args[2]) : 2048;
        String[] tokenList = (args.length > 3 ? args[3] : "1,4,8,16,128").split(",");
        double seconds = args.length > 4 ? Double.parseDouble(args[4]) : 2.0;
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        Random random = new Random(7);
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(1)) {
            MemorySegment data = arena.allocate(type.byteSize((long) rows * cols), 64);
            for (long i = 0; i < data.byteSize(); i += 8) data.set(ValueLayout.JAVA_LONG_UNALIGNED, i, random.nextLong());
            fixScales(type, data);
            long t0 = System.nanoTime();
            CpuWeight loaded = CpuWeight.of("w", type, data, rows, cols);
            long t1 = System.nanoTime();
            for (int i = 0; i < 10; i++) loaded = CpuWeight.of("w", type, data, rows, cols);
            System.out.printf("load (repack) first %.0f MB/s, then %.0f MB/s%n", data.byteSize() / ((t1 - t0) / 1e3),
                    10 * data.byteSize() / ((System.nanoTime() - t1) / 1e3));
            CpuWeight plain = new CpuWeight("w", type, data, rows, cols);
            MatMul mm = new MatMul(pool);
            for (int pass = 0; pass < 2; pass++)
            for (String ts : tokenList) {
                int tokens = Integer.parseInt(ts.trim());
                float[] x = new float[tokens * cols], out = new float[tokens * rows];
                for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
                StringBuilder line = new StringBuilder(String.format("%s %dx%d tokens=%d", type, rows, cols, tokens));
                for (CpuWeight w : loaded.panels() != null ? new CpuWeight[]{plain, loaded} : new CpuWeight[]{loaded}) {
                    long best = Long.MAX_VALUE, deadline = System.nanoTime() + (long) ((pass == 0 ? 0.3 : 1) * seconds * 1e9);
                    int calls = 0;
                    while (System.nanoTime() < deadline || calls < 5) {
                        long c0 = mx.getCurrentThreadCpuTime();
                        mm.run(w, x, tokens, out, rows);
                        best = Math.min(best, mx.getCurrentThreadCpuTime() - c0);
                        calls++;
                    }
                    line.append(String.format("  %s %.1f GMAC/s (%.3f ms)", w.panels() != null ? "panels" : "rows", (double) rows * cols * tokens / best, best / 1e6));
                }
                if (pass == 1) System.out.println(line);
            }
        }
    }

    /** Sets every block's f16 scales of random bytes to 0.01, so no value is Inf or NaN. */
    static void fixScales(TensorType type, MemorySegment data) {
        short scale = Float.floatToFloat16(0.01f);
        int[] halves = switch (type) {  // byte offsets of a block's f16 scales
            case Q4_0, Q8_0, Q5_0, IQ4_NL, IQ4_XS -> new int[]{0};
            case Q4_K, Q5_K, Q4_1, Q5_1 -> new int[]{0, 2};
            case Q6_K -> new int[]{208};
            case Q3_K -> new int[]{108};
            case Q2_K -> new int[]{80, 82};
            default -> new int[0];
        };
        for (long o = 0; o < data.byteSize(); o += type.blockBytes)
            for (int h : halves) data.set(ValueLayout.JAVA_SHORT_UNALIGNED, o + h, scale);
    }
}
