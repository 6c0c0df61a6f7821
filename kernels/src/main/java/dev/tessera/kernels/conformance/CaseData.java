package dev.tessera.kernels.conformance;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.PagedKvCache;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * Inputs of the conformance cases and the moves every case makes: random activations, random GGUF weight bytes of
 * any format, and uploads and downloads through the backend's own transfers.
 */
final class CaseData {
    private CaseData() {}

    static float[] gaussian(SplittableRandom random, int n, float std) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            // Box-Muller: one normal per pair of uniforms is plenty for test data.
            double u = 1 - random.nextDouble(), w = random.nextDouble();
            out[i] = (float) (std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w));
        }
        return out;
    }

    /**
     * Random GGUF bytes of a [rows][cols] tensor of {@code type}: plain formats hold normal values; block formats hold
     * random quants with small positive F16 scales (and mins) at each block's scale offsets, so every value is finite
     * and dot products stay near 1. No quantizer is needed: the kernels decode whatever bits they are given.
     */
    static MemorySegment tensor(Arena arena, SplittableRandom random, TensorType type, int rows, int cols) {
        long numElements = (long) rows * cols;
        long bytes = type.byteSize(numElements);
        MemorySegment s = arena.allocate(bytes, 64);
        switch (type) {
            case F32 -> { float[] v = gaussian(random, (int) numElements, 1f); MemorySegment.copy(v, 0, s, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, v.length); }
            case F16 -> { float[] v = gaussian(random, (int) numElements, 1f); for (int i = 0; i < v.length; i++) s.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, Float.floatToFloat16(v[i])); }
            case BF16 -> { float[] v = gaussian(random, (int) numElements, 1f); for (int i = 0; i < v.length; i++) s.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, (short) (Float.floatToRawIntBits(v[i]) >>> 16)); }
            default -> {
                for (long i = 0; i < bytes; i++) s.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt(256));
                long numBlocks = bytes / type.blockBytes;
                for (long k = 0; k < numBlocks; k++) {
                    long o = k * type.blockBytes;
                    switch (type) {
                        case Q8_0, Q4_0, Q5_0 -> half(s, o, random, 0.01f, 0.1f);
                        case IQ4_NL -> half(s, o, random, 0.0001f, 0.001f);  // levels up to 127
                        case IQ4_XS -> half(s, o, random, 0.00001f, 0.0001f);  // levels up to 127 times (ls - 32) up to 32
                        case Q4_1, Q5_1 -> { half(s, o, random, 0.01f, 0.1f); half(s, o + 2, random, -0.1f, 0.1f); }
                        case Q4_K, Q5_K -> { half(s, o, random, 0.001f, 0.01f); half(s, o + 2, random, 0.001f, 0.01f); }
                        case Q6_K -> half(s, o + 208, random, 0.0005f, 0.005f);  // d follows ql[128], qh[64], scales[16]
                        case Q2_K -> { half(s, o + 80, random, 0.001f, 0.01f); half(s, o + 82, random, 0.001f, 0.01f); }  // after scales[16], qs[64]
                        case Q3_K -> half(s, o + 108, random, 0.0005f, 0.005f);  // after hmask[32], qs[64], scales[12]
                        default -> throw new IllegalArgumentException("no conformance data for " + type);
                    }
                }
            }
        }
        return s;
    }

    private static void half(MemorySegment s, long offset, SplittableRandom random, float lo, float hi) {
        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, offset, Float.floatToFloat16(lo + (hi - lo) * (float) random.nextDouble()));
    }

    /** An F32 vector (a norm's gamma, a bias) as a [1][n] weight. */
    static MemorySegment vector(Arena arena, float[] values) {
        MemorySegment s = arena.allocate(4L * values.length, 64);
        MemorySegment.copy(values, 0, s, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, values.length);
        return s;
    }

    static Weight f32(Backend b, String name, MemorySegment data, int n) {
        return b.weight(name, TensorType.F32, data, 1, n);
    }

    static Activations upload(Backend b, float[] data, int numTokens, int width) {
        Activations a = b.allocate(numTokens, width);
        b.upload(data, a, numTokens);
        return a;
    }

    static float[] download(Backend b, Activations a, int numTokens) {
        float[] out = new float[numTokens * a.width()];
        b.download(a, out, numTokens);
        return out;
    }

    static float[] concat(float[]... parts) {
        int total = 0;
        for (float[] p : parts) total += p.length;
        float[] all = new float[total];
        int at = 0;
        for (float[] p : parts) { System.arraycopy(p, 0, all, at, p.length); at += p.length; }
        return all;
    }

    static PagedKvCache paged(KvBlockStore store, int[] ids, int n) {
        PagedKvCache cache = new PagedKvCache(store);
        cache.setBlocks(ids, n);
        return cache;
    }

    static int[] range(int from, int to) {
        int[] p = new int[to - from];
        for (int i = 0; i < p.length; i++) p[i] = from + i;
        return p;
    }
}
