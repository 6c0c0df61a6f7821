package dev.tessera.kernels.cpu;

import dev.tessera.kernels.TensorType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Decode matmuls as the engine runs them (one token, or a batch of a few with TYPE:ROWS:COLS:COPIES:TOKENS): many
 * matrices, together far larger than the last-level cache, called in turn on a pool of threads, so every weight byte
 * comes from DRAM. Several kinds may be mixed, as in a model (the
 * JIT then sees both kernels at the matmul's call site). Not a test; run its main from the test classpath:
 * {@code ... dev.tessera.kernels.cpu.StreamTiming THREADS SECONDS TYPE:ROWS:COLS:COPIES ...}, e.g.
 * {@code 2 6 Q4_K:8192:2048:24 Q6_K:2048:8192:8}. Prints per kind the wall-clock GMAC/s and the GB/s of weight bytes
 * read (panel bytes where the type has panels), over all rounds after a warm-up.
 */
public final class StreamTiming {
    private record Kind(String spec, CpuWeight[] ws, long bytes, long macs, float[] x, float[] out, int tokens) {}

    public static void main(String[] args) {
        int threads = Integer.parseInt(args[0]);
        double seconds = Double.parseDouble(args[1]);
        Random random = new Random(7);
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(threads)) {
            List<Kind> kinds = new ArrayList<>();
            for (int a = 2; a < args.length; a++) {
                String[] p = args[a].split(":");
                TensorType type = TensorType.valueOf(p[0]);
                int rows = Integer.parseInt(p[1]), cols = Integer.parseInt(p[2]), copies = Integer.parseInt(p[3]);
                int tokens = p.length > 4 ? Integer.parseInt(p[4]) : 1;
                CpuWeight[] ws = new CpuWeight[copies];
                long bytes = 0;
                for (int c = 0; c < copies; c++) {
                    MemorySegment data = arena.allocate(type.byteSize((long) rows * cols), 64);
                    long s = random.nextLong() | 1;
                    for (long i = 0; i < data.byteSize(); i += 8) {
                        s ^= s << 13;
                        s ^= s >>> 7;
                        s ^= s << 17;
                        data.set(ValueLayout.JAVA_LONG_UNALIGNED, i, s);
                    }
                    MatMulTiming.fixScales(type, data);
                    ws[c] = CpuWeight.of("w" + c, type, data, rows, cols);
                    bytes += ws[c].panels() != null ? ws[c].panels().byteSize() : data.byteSize();
                }
                float[] x = new float[tokens * cols];
                for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
                kinds.add(new Kind(args[a], ws, bytes, (long) rows * cols * copies * tokens, x, new float[tokens * rows], tokens));
            }
            MatMul mm = new MatMul(pool);
            long[] nanos = new long[kinds.size()];
            int rounds = 0;
            for (long deadline = 0, start = System.nanoTime(); ; rounds++) {
                if (rounds == 3) {  // warm-up done
                    java.util.Arrays.fill(nanos, 0);
                    start = System.nanoTime();
                    deadline = start + (long) (seconds * 1e9);
                }
                if (rounds > 3 && System.nanoTime() > deadline) break;
                // Interleaved as a model's layers are: one matrix of each kind, then the next.
                int most = kinds.stream().mapToInt(k -> k.ws.length).max().orElse(0);
                for (int c = 0; c < most; c++)
                    for (int k = 0; k < kinds.size(); k++) {
                        Kind kind = kinds.get(k);
                        if (c >= kind.ws.length) continue;
                        long t0 = System.nanoTime();
                        mm.run(kind.ws[c], kind.x, kind.tokens, kind.out, kind.ws[c].rows());
                        nanos[k] += System.nanoTime() - t0;
                    }
            }
            long total = 0;
            for (int k = 0; k < kinds.size(); k++) {
                Kind kind = kinds.get(k);
                int measured = rounds - 3;
                double gmacs = (double) kind.macs * measured / nanos[k];
                total += nanos[k];
                System.out.printf("%-22s %4.0f MB  threads=%d rounds=%d  %.1f GMAC/s  %.1f GB/s  %.0f ms%n", kind.spec, kind.bytes / 1e6, threads,
                        measured, gmacs, (double) kind.bytes * measured / nanos[k], nanos[k] / 1e6);
            }
            System.out.printf("total %.0f ms%n", total / 1e6);
        }
    }
}
