package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * Q8_0 panels: per 16-row panel and 32-column block, 544 bytes: the 16 rows' f16 scales, then 32 slices of 16 bytes
 * where slice j holds qs[j] of rows 0..15, column j of the panel (34 bytes per 32 values, as in GGUF).
 */
public final class Q8_0Panels implements PanelKernel {
    static final PanelKernel INSTANCE = new Q8_0Panels();
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 34;
    static final int PANEL_BLOCK_BYTES = ROWS * BLOCK_BYTES;
    private static final int QS = 2 * ROWS;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256;

    private Q8_0Panels() {}

    @Override
    public long panelBytes(int cols) {
        return (long) (cols / BLOCK) * PANEL_BLOCK_BYTES;
    }

    @Override
    public MemorySegment repack(MemorySegment src, int rows, int cols, Arena arena) {
        return PanelRepack.repack(src, rows, cols, BLOCK_BYTES, arena);
    }

    private static FloatVector column(MemorySegment w, long o, int j) {
        return (FloatVector) ByteVector.fromMemorySegment(B16, w, o + QS + (long) j * ROWS, LE).convertShape(VectorOperators.B2F, F, 0);
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0) {
        long o = panelOffset + (long) (k0 / BLOCK) * PANEL_BLOCK_BYTES;
        for (int kb = 0; kb < kn; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
            for (int j = 0, at = kb * stride + col0; j < BLOCK; j++, at += stride) column(w, o, j).mul(d).intoMemorySegment(packed, 4L * at, NATIVE);
        }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector s = FloatVector.zero(F), h = s;
            for (int j = 0; j < 16; j++) {
                s = column(w, o, j).fma(FloatVector.broadcast(F, x[xb + j]), s);
                h = column(w, o, j + 16).fma(FloatVector.broadcast(F, x[xb + 16 + j]), h);
            }
            FloatVector d = VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
            acc = s.add(h).fma(d, acc);
        }
        acc.intoArray(out, outOffset);
    }

    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, h0 = s0, h1 = s0, h2 = s0, h3 = s0;
            for (int j = 0; j < 16; j++) {
                FloatVector lo = column(w, o, j), hi = column(w, o, j + 16);
                int k = kb + j;
                s0 = lo.fma(FloatVector.broadcast(F, x[x0 + k]), s0); h0 = hi.fma(FloatVector.broadcast(F, x[x0 + k + 16]), h0);
                s1 = lo.fma(FloatVector.broadcast(F, x[x1 + k]), s1); h1 = hi.fma(FloatVector.broadcast(F, x[x1 + k + 16]), h1);
                s2 = lo.fma(FloatVector.broadcast(F, x[x2 + k]), s2); h2 = hi.fma(FloatVector.broadcast(F, x[x2 + k + 16]), h2);
                s3 = lo.fma(FloatVector.broadcast(F, x[x3 + k]), s3); h3 = hi.fma(FloatVector.broadcast(F, x[x3 + k + 16]), h3);
            }
            FloatVector d = VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
            a0 = s0.add(h0).fma(d, a0); a1 = s1.add(h1).fma(d, a1);
            a2 = s2.add(h2).fma(d, a2); a3 = s3.add(h3).fma(d, a3);
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    @Override
    public void dot8(MemorySegment w, long panelOffset, int cols, float[] x, int[] xs, ActivationBlocks xBlocks, int numTokens, float[] out,
                     int o0, int outWidth, float[] acc) {
        // Eight (s, h) pairs fill 16 of the 32 vector registers; the running sums wait in acc (L1) between blocks.
        java.util.Arrays.fill(acc, 0, 8 * ROWS, 0f);
        int x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3], x4 = xs[4], x5 = xs[5], x6 = xs[6], x7 = xs[7];
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
            FloatVector h0 = s0, h1 = s0, h2 = s0, h3 = s0, h4 = s0, h5 = s0, h6 = s0, h7 = s0;
            for (int j = 0; j < 16; j++) {
                FloatVector lo = column(w, o, j), hi = column(w, o, j + 16);
                int k = kb + j, m = k + 16;
                s0 = lo.fma(FloatVector.broadcast(F, x[x0 + k]), s0); h0 = hi.fma(FloatVector.broadcast(F, x[x0 + m]), h0);
                s1 = lo.fma(FloatVector.broadcast(F, x[x1 + k]), s1); h1 = hi.fma(FloatVector.broadcast(F, x[x1 + m]), h1);
                s2 = lo.fma(FloatVector.broadcast(F, x[x2 + k]), s2); h2 = hi.fma(FloatVector.broadcast(F, x[x2 + m]), h2);
                s3 = lo.fma(FloatVector.broadcast(F, x[x3 + k]), s3); h3 = hi.fma(FloatVector.broadcast(F, x[x3 + m]), h3);
                s4 = lo.fma(FloatVector.broadcast(F, x[x4 + k]), s4); h4 = hi.fma(FloatVector.broadcast(F, x[x4 + m]), h4);
                s5 = lo.fma(FloatVector.broadcast(F, x[x5 + k]), s5); h5 = hi.fma(FloatVector.broadcast(F, x[x5 + m]), h5);
                s6 = lo.fma(FloatVector.broadcast(F, x[x6 + k]), s6); h6 = hi.fma(FloatVector.broadcast(F, x[x6 + m]), h6);
                s7 = lo.fma(FloatVector.broadcast(F, x[x7 + k]), s7); h7 = hi.fma(FloatVector.broadcast(F, x[x7 + m]), h7);
            }
            FloatVector d = VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
            s0.add(h0).fma(d, FloatVector.fromArray(F, acc, 0)).intoArray(acc, 0);
            s1.add(h1).fma(d, FloatVector.fromArray(F, acc, ROWS)).intoArray(acc, ROWS);
            s2.add(h2).fma(d, FloatVector.fromArray(F, acc, 2 * ROWS)).intoArray(acc, 2 * ROWS);
            s3.add(h3).fma(d, FloatVector.fromArray(F, acc, 3 * ROWS)).intoArray(acc, 3 * ROWS);
            s4.add(h4).fma(d, FloatVector.fromArray(F, acc, 4 * ROWS)).intoArray(acc, 4 * ROWS);
            s5.add(h5).fma(d, FloatVector.fromArray(F, acc, 5 * ROWS)).intoArray(acc, 5 * ROWS);
            s6.add(h6).fma(d, FloatVector.fromArray(F, acc, 6 * ROWS)).intoArray(acc, 6 * ROWS);
            s7.add(h7).fma(d, FloatVector.fromArray(F, acc, 7 * ROWS)).intoArray(acc, 7 * ROWS);
        }
        for (int t = 0; t < numTokens; t++) System.arraycopy(acc, t * ROWS, out, o0 + t * outWidth, ROWS);
    }

    @Override
    public void dequantizeRow(MemorySegment w, long panelOffset, int i, int cols, float[] out, int outOffset) {
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, o + 2L * i));
            for (int j = 0; j < BLOCK; j++) out[outOffset + kb + j] = w.get(U8, o + QS + (long) j * ROWS + i) * d;
        }
    }
}
