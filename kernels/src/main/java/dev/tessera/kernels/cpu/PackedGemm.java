package dev.tessera.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The many-token matmul micro-kernel (prefill): out[t][r] = Σ_k W[r][k] · x[t][k] over one block of rows.
 * The block's dequantized rows are repacked column-major in chunks of {@link #K_CHUNK} columns
 * ({@code packed[k][blockRows]}), so each k step loads the block's weight vectors once and multiplies them by
 * broadcasts of four tokens' x[t][k] — the outer-product form BLAS kernels use. A block is three vectors wide
 * (48 rows with AVX-512): 12 FMAs per 3 loads + 4 broadcasts measured ~45% faster than two vectors, while four
 * vectors (16 accumulators) made C2 spill. A two-vector block serves the 32-row remainder of Llama's widths.
 * <p>
 * The packed chunk lives off the heap, 64-byte aligned ({@link #newPack}): a float[]'s data starts 16 bytes into an
 * 8-byte aligned object, so most 64-byte vector loads from it straddle two cache lines (the same kernel in C ran at
 * 147 against 85 GMAC/s aligned against 16 bytes off). The k loops count column pairs with int indices and long byte
 * offsets, which C2 compiles without a bounds check per load; a k loop stepping by two kept one per load.
 */
final class PackedGemm {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    static final int WIDE_ROWS = 3 * L;
    static final int NARROW_ROWS = 2 * L;
    static final int K_CHUNK = 256;
    static final int TOKEN_GROUP = 4;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final long VB = 4L * L;  // bytes of one float vector

    private PackedGemm() {}

    /** Scratch for one packed chunk ({@code K_CHUNK * WIDE_ROWS} floats), 64-byte aligned, freed with the GC. */
    static MemorySegment newPack() {
        return Arena.ofAuto().allocate(4L * K_CHUNK * WIDE_ROWS, 64);
    }

    /**
     * @param rows      [blockRows][cols] dequantized weight rows; blockRows is WIDE_ROWS or NARROW_ROWS
     * @param packed    scratch from {@link #newPack}
     * @param out       row t of out starts at t * outWidth; columns r0..r0+blockRows-1 are written
     */
    static void multiply(float[] rows, int blockRows, int cols, MemorySegment packed, float[] x, int numTokens, float[] out, int outWidth, int r0) {
        for (int k0 = 0; k0 < cols; k0 += K_CHUNK) {
            int kn = Math.min(K_CHUNK, cols - k0);
            for (int r = 0; r < blockRows; r++) {
                int src = r * cols + k0;
                for (int k = 0; k < kn; k++) packed.setAtIndex(ValueLayout.JAVA_FLOAT, (long) k * blockRows + r, rows[src + k]);
            }
            multiplyPacked(packed, blockRows, kn, x, cols, k0, numTokens, out, outWidth, r0);
        }
    }

    /**
     * One K chunk already packed ({@code packed[k][blockRows]} for columns k0..k0+kn-1): adds its products to out,
     * or stores them when k0 is 0. Every output is one FMA chain over k in order, whatever its token's group, so a
     * token's result does not depend on how many others share the batch.
     */
    static void multiplyPacked(MemorySegment packed, int blockRows, int kn, float[] x, int cols, int k0, int numTokens, float[] out, int outWidth, int r0) {
        boolean first = k0 == 0;
        int t = 0;
        for (; t + TOKEN_GROUP <= numTokens; t += TOKEN_GROUP) {
            if (blockRows == WIDE_ROWS) group4Wide(packed, kn, x, cols, k0, t, out, outWidth, r0, first);
            else if (blockRows == NARROW_ROWS) group4Narrow(packed, kn, x, cols, k0, t, out, outWidth, r0, first);
            else group4One(packed, kn, x, cols, k0, t, out, outWidth, r0, first);
        }
        if (t + 2 <= numTokens) {
            group2(packed, blockRows, kn, x, cols, k0, t, out, outWidth, r0, first);
            t += 2;
        }
        if (t < numTokens) single(packed, blockRows, kn, x, cols, k0, t, out, outWidth, r0, first);
    }

    private static FloatVector load(MemorySegment p, long at) {
        return FloatVector.fromMemorySegment(F, p, at, NATIVE);
    }

    private static void group4Wide(MemorySegment p, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        FloatVector a0 = FloatVector.zero(F), b0 = a0, c0 = a0, a1 = a0, b1 = a0, c1 = a0;
        FloatVector a2 = a0, b2 = a0, c2 = a0, a3 = a0, b3 = a0, c3 = a0;
        int x0 = t * cols + k0, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int k = 0; k < kn; k++) {
            long pk = k * 3 * VB;
            FloatVector wa = load(p, pk), wb = load(p, pk + VB), wc = load(p, pk + 2 * VB);
            FloatVector v0 = FloatVector.broadcast(F, x[x0 + k]), v1 = FloatVector.broadcast(F, x[x1 + k]);
            a0 = wa.fma(v0, a0); b0 = wb.fma(v0, b0); c0 = wc.fma(v0, c0);
            a1 = wa.fma(v1, a1); b1 = wb.fma(v1, b1); c1 = wc.fma(v1, c1);
            FloatVector v2 = FloatVector.broadcast(F, x[x2 + k]), v3 = FloatVector.broadcast(F, x[x3 + k]);
            a2 = wa.fma(v2, a2); b2 = wb.fma(v2, b2); c2 = wc.fma(v2, c2);
            a3 = wa.fma(v3, a3); b3 = wb.fma(v3, b3); c3 = wc.fma(v3, c3);
        }
        int o = t * outWidth + r0;
        store(out, o, a0, first); store(out, o + L, b0, first); store(out, o + 2 * L, c0, first); o += outWidth;
        store(out, o, a1, first); store(out, o + L, b1, first); store(out, o + 2 * L, c1, first); o += outWidth;
        store(out, o, a2, first); store(out, o + L, b2, first); store(out, o + 2 * L, c2, first); o += outWidth;
        store(out, o, a3, first); store(out, o + L, b3, first); store(out, o + 2 * L, c3, first);
    }

    private static void group4Narrow(MemorySegment p, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        FloatVector a0 = FloatVector.zero(F), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        int x0 = t * cols + k0, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int k = 0; k < kn; k++) {
            long pk = k * 2 * VB;
            FloatVector wa = load(p, pk), wb = load(p, pk + VB);
            FloatVector v0 = FloatVector.broadcast(F, x[x0 + k]), v1 = FloatVector.broadcast(F, x[x1 + k]);
            FloatVector v2 = FloatVector.broadcast(F, x[x2 + k]), v3 = FloatVector.broadcast(F, x[x3 + k]);
            a0 = wa.fma(v0, a0); b0 = wb.fma(v0, b0);
            a1 = wa.fma(v1, a1); b1 = wb.fma(v1, b1);
            a2 = wa.fma(v2, a2); b2 = wb.fma(v2, b2);
            a3 = wa.fma(v3, a3); b3 = wb.fma(v3, b3);
        }
        int o = t * outWidth + r0;
        store(out, o, a0, first); store(out, o + L, b0, first); o += outWidth;
        store(out, o, a1, first); store(out, o + L, b1, first); o += outWidth;
        store(out, o, a2, first); store(out, o + L, b2, first); o += outWidth;
        store(out, o, a3, first); store(out, o + L, b3, first);
    }

    /** Four tokens against a one-vector block (the last rows of a panel-packed weight). */
    private static void group4One(MemorySegment p, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int x0 = t * cols + k0, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int k = 0; k < kn; k++) {
            FloatVector wa = load(p, k * VB);
            a0 = wa.fma(FloatVector.broadcast(F, x[x0 + k]), a0);
            a1 = wa.fma(FloatVector.broadcast(F, x[x1 + k]), a1);
            a2 = wa.fma(FloatVector.broadcast(F, x[x2 + k]), a2);
            a3 = wa.fma(FloatVector.broadcast(F, x[x3 + k]), a3);
        }
        int o = t * outWidth + r0;
        store(out, o, a0, first); store(out, o + outWidth, a1, first);
        store(out, o + 2 * outWidth, a2, first); store(out, o + 3 * outWidth, a3, first);
    }

    /** Two tokens against the block (a remainder after groups of four): up to six independent chains. */
    private static void group2(MemorySegment p, int blockRows, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        boolean two = blockRows >= NARROW_ROWS, wide = blockRows == WIDE_ROWS;
        FloatVector a0 = FloatVector.zero(F), b0 = a0, c0 = a0, a1 = a0, b1 = a0, c1 = a0;
        int x0 = t * cols + k0, x1 = x0 + cols;
        long step = 4L * blockRows;
        for (int k = 0; k < kn; k++) {
            long pk = k * step;
            FloatVector wa = load(p, pk);
            FloatVector v0 = FloatVector.broadcast(F, x[x0 + k]), v1 = FloatVector.broadcast(F, x[x1 + k]);
            a0 = wa.fma(v0, a0); a1 = wa.fma(v1, a1);
            if (two) {
                FloatVector wb = load(p, pk + VB);
                b0 = wb.fma(v0, b0); b1 = wb.fma(v1, b1);
            }
            if (wide) {
                FloatVector wc = load(p, pk + 2 * VB);
                c0 = wc.fma(v0, c0); c1 = wc.fma(v1, c1);
            }
        }
        int o = t * outWidth + r0;
        store(out, o, a0, first); if (two) store(out, o + L, b0, first); if (wide) store(out, o + 2 * L, c0, first); o += outWidth;
        store(out, o, a1, first); if (two) store(out, o + L, b1, first); if (wide) store(out, o + 2 * L, c1, first);
    }

    /** One token against the block, all its vectors per k step (the token count's last remainder). */
    private static void single(MemorySegment p, int blockRows, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        boolean two = blockRows >= NARROW_ROWS, wide = blockRows == WIDE_ROWS;
        FloatVector a = FloatVector.zero(F), b = a, c = a;
        int xo = t * cols + k0;
        long step = 4L * blockRows;
        for (int k = 0; k < kn; k++) {
            long pk = k * step;
            FloatVector v = FloatVector.broadcast(F, x[xo + k]);
            a = load(p, pk).fma(v, a);
            if (two) b = load(p, pk + VB).fma(v, b);
            if (wide) c = load(p, pk + 2 * VB).fma(v, c);
        }
        int o = t * outWidth + r0;
        store(out, o, a, first); if (two) store(out, o + L, b, first); if (wide) store(out, o + 2 * L, c, first);
    }

    private static void store(float[] out, int o, FloatVector a, boolean first) {
        (first ? a : a.add(FloatVector.fromArray(F, out, o))).intoArray(out, o);
    }
}
