package dev.tessera.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The many-token matmul micro-kernel (prefill): out[t][r] += Σ_k W[r][k] · x[t][k] over one block of {@link #BLOCK_ROWS} rows.
 * The dequantized rows are repacked column-major in chunks of {@link #K_CHUNK} columns ({@code packed[k][BLOCK_ROWS]}),
 * so each k step loads two weight vectors once and multiplies them by broadcasts of four tokens' x[t][k]:
 * 8 FMAs per 2 loads + 4 broadcasts, the outer-product form BLAS kernels use. Everything a chunk touches
 * (32 KiB of weights with AVX-512, four 1 KiB slices of x) stays in L1. Four tokens measured faster than six or eight here:
 * larger groups made C2 spill accumulators.
 */
final class PackedGemm {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Two weight vectors per k step: 32 rows with AVX-512, 16 with AVX2. */
    static final int BLOCK_ROWS = 2 * F.length();
    static final int K_CHUNK = 256;
    static final int TOKEN_GROUP = 4;

    private PackedGemm() {}

    /**
     * @param rows    [BLOCK_ROWS][cols] dequantized weight rows
     * @param packed  scratch of at least K_CHUNK * 32 floats
     * @param out     row t of out starts at t * outWidth; columns r0..r0+BLOCK_ROWS-1 are written
     */
    static void multiply(float[] rows, int cols, float[] packed, float[] x, int numTokens, float[] out, int outWidth, int r0) {
        for (int k0 = 0; k0 < cols; k0 += K_CHUNK) {
            int kn = Math.min(K_CHUNK, cols - k0);
            for (int r = 0; r < BLOCK_ROWS; r++) {
                int src = r * cols + k0;
                for (int k = 0; k < kn; k++) packed[k * BLOCK_ROWS + r] = rows[src + k];
            }
            boolean first = k0 == 0;
            int t = 0;
            for (; t + TOKEN_GROUP <= numTokens; t += TOKEN_GROUP) group4(packed, kn, x, cols, k0, t, out, outWidth, r0, first);
            for (; t < numTokens; t++) single(packed, kn, x, cols, k0, t, out, outWidth, r0, first);
        }
    }

    private static void group4(float[] p, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        FloatVector a0 = FloatVector.zero(F), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        int x0 = t * cols + k0, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int k = 0; k < kn; k++) {
            FloatVector wa = FloatVector.fromArray(F, p, k * BLOCK_ROWS);
            FloatVector wb = FloatVector.fromArray(F, p, k * BLOCK_ROWS + F.length());
            FloatVector v0 = FloatVector.broadcast(F, x[x0 + k]);
            FloatVector v1 = FloatVector.broadcast(F, x[x1 + k]);
            FloatVector v2 = FloatVector.broadcast(F, x[x2 + k]);
            FloatVector v3 = FloatVector.broadcast(F, x[x3 + k]);
            a0 = wa.fma(v0, a0); b0 = wb.fma(v0, b0);
            a1 = wa.fma(v1, a1); b1 = wb.fma(v1, b1);
            a2 = wa.fma(v2, a2); b2 = wb.fma(v2, b2);
            a3 = wa.fma(v3, a3); b3 = wb.fma(v3, b3);
        }
        int o = t * outWidth + r0;
        store(out, o, a0, b0, first); o += outWidth;
        store(out, o, a1, b1, first); o += outWidth;
        store(out, o, a2, b2, first); o += outWidth;
        store(out, o, a3, b3, first);
    }

    private static void single(float[] p, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        FloatVector a = FloatVector.zero(F), b = a;
        int xo = t * cols + k0;
        for (int k = 0; k < kn; k++) {
            FloatVector v = FloatVector.broadcast(F, x[xo + k]);
            a = FloatVector.fromArray(F, p, k * BLOCK_ROWS).fma(v, a);
            b = FloatVector.fromArray(F, p, k * BLOCK_ROWS + F.length()).fma(v, b);
        }
        store(out, t * outWidth + r0, a, b, first);
    }

    private static void store(float[] out, int o, FloatVector a, FloatVector b, boolean first) {
        if (!first) {
            a = a.add(FloatVector.fromArray(F, out, o));
            b = b.add(FloatVector.fromArray(F, out, o + F.length()));
        }
        a.intoArray(out, o);
        b.intoArray(out, o + F.length());
    }
}
