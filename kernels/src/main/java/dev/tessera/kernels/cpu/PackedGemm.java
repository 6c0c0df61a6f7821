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
 * broadcasts of eight or four tokens' x[t][k] — the outer-product form BLAS kernels use. A block is three vectors
 * wide (48 rows with AVX-512): 12 FMAs per 3 loads + 4 broadcasts measured ~45% faster than two vectors, while four
 * vectors (16 accumulators) made C2 spill. A two-vector block serves the 32-row remainder of Llama's widths.
 * <p>
 * The packed chunk lives off the heap, 64-byte aligned ({@link #newPack}): a float[]'s data starts 16 bytes into an
 * 8-byte aligned object, so most 64-byte vector loads from it straddle two cache lines (the same kernel in C ran at
 * 147 against 85 GMAC/s aligned against 16 bytes off). The k loops index it with long byte offsets, which C2
 * compiles without a bounds check per load. No helper method here takes or returns a vector: where C2 declines to
 * inline one (it counts nodes as it parses, and these kernels are large), the call boxes its vectors.
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
    /** Byte offset, in a pack, of the area where a token group's sums wait to be added to out ({@link #flush}). */
    private static final long SUMS = 4L * K_CHUNK * WIDE_ROWS;

    private PackedGemm() {}

    /**
     * Scratch for one packed chunk ({@code K_CHUNK * WIDE_ROWS} floats) and one token group's sums, 64-byte aligned,
     * freed with the GC.
     */
    static MemorySegment newPack() {
        return Arena.ofAuto().allocate(SUMS + VB * 3 * 8, 64);  // sums of up to 8 tokens x 3 vectors
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
        if (blockRows == WIDE_ROWS) for (; t + 8 <= numTokens; t += 8) group8Wide(packed, kn, x, cols, k0, t, out, outWidth, r0, first);
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

    private static void group4Wide(MemorySegment p, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        FloatVector a0 = FloatVector.zero(F), b0 = a0, c0 = a0, a1 = a0, b1 = a0, c1 = a0;
        FloatVector a2 = a0, b2 = a0, c2 = a0, a3 = a0, b3 = a0, c3 = a0;
        int x0 = t * cols + k0, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int k = 0; k < kn; k++) {
            long pk = k * 3 * VB;
            FloatVector wa = FloatVector.fromMemorySegment(F, p, pk, NATIVE), wb = FloatVector.fromMemorySegment(F, p, pk + VB, NATIVE), wc = FloatVector.fromMemorySegment(F, p, pk + 2 * VB, NATIVE);
            FloatVector v0 = FloatVector.broadcast(F, x[x0 + k]), v1 = FloatVector.broadcast(F, x[x1 + k]);
            a0 = wa.fma(v0, a0); b0 = wb.fma(v0, b0); c0 = wc.fma(v0, c0);
            a1 = wa.fma(v1, a1); b1 = wb.fma(v1, b1); c1 = wc.fma(v1, c1);
            FloatVector v2 = FloatVector.broadcast(F, x[x2 + k]), v3 = FloatVector.broadcast(F, x[x3 + k]);
            a2 = wa.fma(v2, a2); b2 = wb.fma(v2, b2); c2 = wc.fma(v2, c2);
            a3 = wa.fma(v3, a3); b3 = wb.fma(v3, b3); c3 = wc.fma(v3, c3);
        }
        a0.intoMemorySegment(p, SUMS, NATIVE); b0.intoMemorySegment(p, SUMS + VB, NATIVE); c0.intoMemorySegment(p, SUMS + 2 * VB, NATIVE);
        a1.intoMemorySegment(p, SUMS + 3 * VB, NATIVE); b1.intoMemorySegment(p, SUMS + 4 * VB, NATIVE); c1.intoMemorySegment(p, SUMS + 5 * VB, NATIVE);
        a2.intoMemorySegment(p, SUMS + 6 * VB, NATIVE); b2.intoMemorySegment(p, SUMS + 7 * VB, NATIVE); c2.intoMemorySegment(p, SUMS + 8 * VB, NATIVE);
        a3.intoMemorySegment(p, SUMS + 9 * VB, NATIVE); b3.intoMemorySegment(p, SUMS + 10 * VB, NATIVE); c3.intoMemorySegment(p, SUMS + 11 * VB, NATIVE);
        flush(p, 4, WIDE_ROWS, out, t * outWidth + r0, outWidth, first);
    }

    /**
     * Eight tokens against a three-vector block: 24 accumulators, 24 FMAs per 3 loads and 8 broadcasts (against 12 per
     * 3 + 4 with four tokens), which fits AVX-512's 32 registers and measured 5-7% faster than two groups of four.
     */
    private static void group8Wide(MemorySegment p, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        FloatVector a0 = FloatVector.zero(F), b0 = a0, c0 = a0, a1 = a0, b1 = a0, c1 = a0, a2 = a0, b2 = a0, c2 = a0, a3 = a0, b3 = a0, c3 = a0;
        FloatVector a4 = a0, b4 = a0, c4 = a0, a5 = a0, b5 = a0, c5 = a0, a6 = a0, b6 = a0, c6 = a0, a7 = a0, b7 = a0, c7 = a0;
        int x0 = t * cols + k0;
        for (int k = 0; k < kn; k++) {
            long pk = k * 3 * VB;
            FloatVector wa = FloatVector.fromMemorySegment(F, p, pk, NATIVE), wb = FloatVector.fromMemorySegment(F, p, pk + VB, NATIVE), wc = FloatVector.fromMemorySegment(F, p, pk + 2 * VB, NATIVE);
            int xk = x0 + k;
            FloatVector v = FloatVector.broadcast(F, x[xk]);
            a0 = wa.fma(v, a0); b0 = wb.fma(v, b0); c0 = wc.fma(v, c0);
            v = FloatVector.broadcast(F, x[xk + cols]);
            a1 = wa.fma(v, a1); b1 = wb.fma(v, b1); c1 = wc.fma(v, c1);
            v = FloatVector.broadcast(F, x[xk + 2 * cols]);
            a2 = wa.fma(v, a2); b2 = wb.fma(v, b2); c2 = wc.fma(v, c2);
            v = FloatVector.broadcast(F, x[xk + 3 * cols]);
            a3 = wa.fma(v, a3); b3 = wb.fma(v, b3); c3 = wc.fma(v, c3);
            v = FloatVector.broadcast(F, x[xk + 4 * cols]);
            a4 = wa.fma(v, a4); b4 = wb.fma(v, b4); c4 = wc.fma(v, c4);
            v = FloatVector.broadcast(F, x[xk + 5 * cols]);
            a5 = wa.fma(v, a5); b5 = wb.fma(v, b5); c5 = wc.fma(v, c5);
            v = FloatVector.broadcast(F, x[xk + 6 * cols]);
            a6 = wa.fma(v, a6); b6 = wb.fma(v, b6); c6 = wc.fma(v, c6);
            v = FloatVector.broadcast(F, x[xk + 7 * cols]);
            a7 = wa.fma(v, a7); b7 = wb.fma(v, b7); c7 = wc.fma(v, c7);
        }
        a0.intoMemorySegment(p, SUMS, NATIVE); b0.intoMemorySegment(p, SUMS + VB, NATIVE); c0.intoMemorySegment(p, SUMS + 2 * VB, NATIVE);
        a1.intoMemorySegment(p, SUMS + 3 * VB, NATIVE); b1.intoMemorySegment(p, SUMS + 4 * VB, NATIVE); c1.intoMemorySegment(p, SUMS + 5 * VB, NATIVE);
        a2.intoMemorySegment(p, SUMS + 6 * VB, NATIVE); b2.intoMemorySegment(p, SUMS + 7 * VB, NATIVE); c2.intoMemorySegment(p, SUMS + 8 * VB, NATIVE);
        a3.intoMemorySegment(p, SUMS + 9 * VB, NATIVE); b3.intoMemorySegment(p, SUMS + 10 * VB, NATIVE); c3.intoMemorySegment(p, SUMS + 11 * VB, NATIVE);
        a4.intoMemorySegment(p, SUMS + 12 * VB, NATIVE); b4.intoMemorySegment(p, SUMS + 13 * VB, NATIVE); c4.intoMemorySegment(p, SUMS + 14 * VB, NATIVE);
        a5.intoMemorySegment(p, SUMS + 15 * VB, NATIVE); b5.intoMemorySegment(p, SUMS + 16 * VB, NATIVE); c5.intoMemorySegment(p, SUMS + 17 * VB, NATIVE);
        a6.intoMemorySegment(p, SUMS + 18 * VB, NATIVE); b6.intoMemorySegment(p, SUMS + 19 * VB, NATIVE); c6.intoMemorySegment(p, SUMS + 20 * VB, NATIVE);
        a7.intoMemorySegment(p, SUMS + 21 * VB, NATIVE); b7.intoMemorySegment(p, SUMS + 22 * VB, NATIVE); c7.intoMemorySegment(p, SUMS + 23 * VB, NATIVE);
        flush(p, 8, WIDE_ROWS, out, t * outWidth + r0, outWidth, first);
    }

    private static void group4Narrow(MemorySegment p, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        FloatVector a0 = FloatVector.zero(F), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        int x0 = t * cols + k0, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int k = 0; k < kn; k++) {
            long pk = k * 2 * VB;
            FloatVector wa = FloatVector.fromMemorySegment(F, p, pk, NATIVE), wb = FloatVector.fromMemorySegment(F, p, pk + VB, NATIVE);
            FloatVector v0 = FloatVector.broadcast(F, x[x0 + k]), v1 = FloatVector.broadcast(F, x[x1 + k]);
            FloatVector v2 = FloatVector.broadcast(F, x[x2 + k]), v3 = FloatVector.broadcast(F, x[x3 + k]);
            a0 = wa.fma(v0, a0); b0 = wb.fma(v0, b0);
            a1 = wa.fma(v1, a1); b1 = wb.fma(v1, b1);
            a2 = wa.fma(v2, a2); b2 = wb.fma(v2, b2);
            a3 = wa.fma(v3, a3); b3 = wb.fma(v3, b3);
        }
        a0.intoMemorySegment(p, SUMS, NATIVE); b0.intoMemorySegment(p, SUMS + VB, NATIVE); a1.intoMemorySegment(p, SUMS + 2 * VB, NATIVE);
        b1.intoMemorySegment(p, SUMS + 3 * VB, NATIVE); a2.intoMemorySegment(p, SUMS + 4 * VB, NATIVE); b2.intoMemorySegment(p, SUMS + 5 * VB, NATIVE);
        a3.intoMemorySegment(p, SUMS + 6 * VB, NATIVE); b3.intoMemorySegment(p, SUMS + 7 * VB, NATIVE);
        flush(p, 4, NARROW_ROWS, out, t * outWidth + r0, outWidth, first);
    }

    /** Four tokens against a one-vector block (the last rows of a panel-packed weight). */
    private static void group4One(MemorySegment p, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int x0 = t * cols + k0, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        for (int k = 0; k < kn; k++) {
            FloatVector wa = FloatVector.fromMemorySegment(F, p, k * VB, NATIVE);
            a0 = wa.fma(FloatVector.broadcast(F, x[x0 + k]), a0);
            a1 = wa.fma(FloatVector.broadcast(F, x[x1 + k]), a1);
            a2 = wa.fma(FloatVector.broadcast(F, x[x2 + k]), a2);
            a3 = wa.fma(FloatVector.broadcast(F, x[x3 + k]), a3);
        }
        a0.intoMemorySegment(p, SUMS, NATIVE); a1.intoMemorySegment(p, SUMS + VB, NATIVE); a2.intoMemorySegment(p, SUMS + 2 * VB, NATIVE); a3.intoMemorySegment(p, SUMS + 3 * VB, NATIVE);
        flush(p, 4, L, out, t * outWidth + r0, outWidth, first);
    }

    /** Two tokens against the block (a remainder after groups of four): up to six independent chains. */
    private static void group2(MemorySegment p, int blockRows, int kn, float[] x, int cols, int k0, int t, float[] out, int outWidth, int r0, boolean first) {
        boolean two = blockRows >= NARROW_ROWS, wide = blockRows == WIDE_ROWS;
        FloatVector a0 = FloatVector.zero(F), b0 = a0, c0 = a0, a1 = a0, b1 = a0, c1 = a0;
        int x0 = t * cols + k0, x1 = x0 + cols;
        long step = 4L * blockRows;
        for (int k = 0; k < kn; k++) {
            long pk = k * step;
            FloatVector wa = FloatVector.fromMemorySegment(F, p, pk, NATIVE);
            FloatVector v0 = FloatVector.broadcast(F, x[x0 + k]), v1 = FloatVector.broadcast(F, x[x1 + k]);
            a0 = wa.fma(v0, a0); a1 = wa.fma(v1, a1);
            if (two) {
                FloatVector wb = FloatVector.fromMemorySegment(F, p, pk + VB, NATIVE);
                b0 = wb.fma(v0, b0); b1 = wb.fma(v1, b1);
            }
            if (wide) {
                FloatVector wc = FloatVector.fromMemorySegment(F, p, pk + 2 * VB, NATIVE);
                c0 = wc.fma(v0, c0); c1 = wc.fma(v1, c1);
            }
        }
        int v = blockRows / L;  // vectors per token
        a0.intoMemorySegment(p, SUMS, NATIVE); a1.intoMemorySegment(p, SUMS + v * VB, NATIVE);
        if (two) { b0.intoMemorySegment(p, SUMS + VB, NATIVE); b1.intoMemorySegment(p, SUMS + (v + 1) * VB, NATIVE); }
        if (wide) { c0.intoMemorySegment(p, SUMS + 2 * VB, NATIVE); c1.intoMemorySegment(p, SUMS + (v + 2) * VB, NATIVE); }
        flush(p, 2, blockRows, out, t * outWidth + r0, outWidth, first);
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
            a = FloatVector.fromMemorySegment(F, p, pk, NATIVE).fma(v, a);
            if (two) b = FloatVector.fromMemorySegment(F, p, pk + VB, NATIVE).fma(v, b);
            if (wide) c = FloatVector.fromMemorySegment(F, p, pk + 2 * VB, NATIVE).fma(v, c);
        }
        a.intoMemorySegment(p, SUMS, NATIVE);
        if (two) b.intoMemorySegment(p, SUMS + VB, NATIVE);
        if (wide) c.intoMemorySegment(p, SUMS + 2 * VB, NATIVE);
        flush(p, 1, blockRows, out, t * outWidth + r0, outWidth, first);
    }

    /**
     * Adds the parked sums of {@code tokens} tokens into out (stores them for the first chunk). The kernels hand their
     * sums over through memory, not as arguments: C2 counts nodes while it parses and inlines, and a dozen inlined
     * conditional add-and-stores at the end of the four-token kernel pushed it past that budget, leaving calls that
     * box their vector arguments.
     */
    private static void flush(MemorySegment p, int tokens, int blockRows, float[] out, int o, int outWidth, boolean first) {
        for (int t = 0; t < tokens; t++, o += outWidth)
            for (int i = 0; i < blockRows; i += L) {
                FloatVector sum = FloatVector.fromMemorySegment(F, p, SUMS + 4L * (t * blockRows + i), NATIVE);
                (first ? sum : sum.add(FloatVector.fromArray(F, out, o + i))).intoArray(out, o + i);
            }
    }
}
