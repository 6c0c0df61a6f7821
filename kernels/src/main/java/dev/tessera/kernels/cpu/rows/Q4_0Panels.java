package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * Q4_0 panels: per 16-row panel and 32-column block, 288 bytes (18 per 32 values, as in GGUF): the 16 rows' f16
 * scales, then 8 pair slices of 32 bytes where slice l holds, at byte 2i + p, qs byte 2l + p of row i: its low nibble
 * is column 2l + p, its high nibble column 2l + p + 16.
 * <p>
 * The dots take x as int8 per block ({@link #needsInt8}, as llama.cpp's q8_0 activations). The one-token dot widens
 * a pair slice into 32 short lanes (row i, column parity p) and multiplies a broadcast int holding two columns' int8
 * x: a block's Σ q·qx, at most 16 * 15 * 127 = 30480 per lane, sums in 16-bit lanes, in half the vector instructions
 * of widening every value to a float. With four or eight tokens the widened values feed float FMAs instead (the 16-bit
 * multiply runs on one port, FMAs on two), on the int8 x as floats: Σ q·qx is then an exact integer in a float and
 * equals the 16-bit sum, and the rest (- 8 Σqx, times d * scale) is the same arithmetic, so batching changes no bit.
 */
public final class Q4_0Panels implements PanelKernel {
    static final PanelKernel INSTANCE = new Q4_0Panels();
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 18;
    static final int PANEL_BLOCK_BYTES = ROWS * BLOCK_BYTES;
    private static final int QS = 2 * ROWS;
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256, S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I16X2 = IntVector.SPECIES_512;

    private Q4_0Panels() {}

    @Override
    public boolean needsInt8() {
        return true;
    }

    @Override
    public long panelBytes(int cols) {
        return (long) (cols / BLOCK) * PANEL_BLOCK_BYTES;
    }

    /** The panel layout of a row-major Q4_0 tensor ({@code rows} x {@code cols}), in memory of {@code arena}. */
    @Override
    public MemorySegment repack(MemorySegment src, int rows, int cols, Arena arena) {
        return PanelRepack.repackPairs(src, rows, cols, BLOCK_BYTES, arena);
    }

    /** Pair slice l of the block at {@code o}: lane i holds row i's two bytes, byte 2l in bits 0-7, 2l + 1 in 16-23. */
    private static IntVector pairSlice(MemorySegment w, long o, int l) {
        return ((ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * l, LE)
                .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0)).reinterpretAsInts();
    }

    /** The 4-bit field at bit {@code shift} of each lane of a pair slice, as floats. */
    private static FloatVector nibble(IntVector q, int shift) {
        return (FloatVector) q.lanewise(VectorOperators.LSHR, shift).and(15).convert(VectorOperators.I2F, 0);
    }

    /** Bits 0-3 of each lane as floats. */
    private static FloatVector low(IntVector q) {
        return (FloatVector) q.and(15).convert(VectorOperators.I2F, 0);
    }

    /** Bits 20-23 of each lane as floats (the bits above are zero: the bytes were zero-extended). */
    private static FloatVector top(IntVector q) {
        return (FloatVector) q.lanewise(VectorOperators.LSHR, 20).convert(VectorOperators.I2F, 0);
    }

    private static FloatVector scales(MemorySegment w, long o) {
        return VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, float[] packed, int stride, int col0) {
        long o = panelOffset + (long) (k0 / BLOCK) * PANEL_BLOCK_BYTES;
        for (int kb = 0; kb < kn; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = scales(w, o);
            FloatVector bias = d.mul(-8f);
            int at = kb * stride + col0;
            for (int l = 0; l < 8; l++) {
                IntVector q = pairSlice(w, o, l);
                int lo = at + 2 * l * stride, hi = lo + 16 * stride;
                nibble(q, 0).fma(d, bias).intoArray(packed, lo);
                nibble(q, 16).fma(d, bias).intoArray(packed, lo + stride);
                nibble(q, 4).fma(d, bias).intoArray(packed, hi);
                nibble(q, 20).fma(d, bias).intoArray(packed, hi + stride);
            }
        }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        int[] pairs = xBlocks.pairs(), totals = xBlocks.int8Totals();
        float[] xScales = xBlocks.scales();
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            ShortVector s = ShortVector.zero(S32);
            int p = xb / 2;
            for (int l = 0; l < 8; l++) {
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * l, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                s = s.add(q.and((short) 15).mul(IntVector.broadcast(I16X2, pairs[p + l]).reinterpretAsShorts()))
                        .add(q.lanewise(VectorOperators.LSHR, 4).mul(IntVector.broadcast(I16X2, pairs[p + 8 + l]).reinterpretAsShorts()));
            }
            // Lanes 2i and 2i + 1 (row i's two column parities) added in an int lane; exact as a float.
            IntVector both = s.reinterpretAsInts();
            FloatVector sum = (FloatVector) both.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                    .add(both.lanewise(VectorOperators.ASHR, 16)).convert(VectorOperators.I2F, 0);
            int b = xb / BLOCK;
            acc = sum.sub(8 * totals[b]).fma(scales(w, o).mul(xScales[b]), acc);
        }
        acc.intoArray(out, outOffset);
    }

    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        float[] q8 = xBlocks.int8Floats(), xScales = xBlocks.scales();
        int[] totals = xBlocks.int8Totals();
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            // Low-nibble and high-nibble columns in separate sums, so each chain of dependent FMAs is 16 long.
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, h0 = s0, h1 = s0, h2 = s0, h3 = s0;
            for (int l = 0; l < 8; l++) {
                IntVector q = pairSlice(w, o, l);
                FloatVector e = low(q), od = nibble(q, 16), eh = nibble(q, 4), oh = top(q);
                int k = kb + 2 * l, m = k + 16;
                s0 = od.fma(FloatVector.broadcast(F, q8[x0 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x0 + k]), s0));
                h0 = oh.fma(FloatVector.broadcast(F, q8[x0 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x0 + m]), h0));
                s1 = od.fma(FloatVector.broadcast(F, q8[x1 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x1 + k]), s1));
                h1 = oh.fma(FloatVector.broadcast(F, q8[x1 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x1 + m]), h1));
                s2 = od.fma(FloatVector.broadcast(F, q8[x2 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x2 + k]), s2));
                h2 = oh.fma(FloatVector.broadcast(F, q8[x2 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x2 + m]), h2));
                s3 = od.fma(FloatVector.broadcast(F, q8[x3 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x3 + k]), s3));
                h3 = oh.fma(FloatVector.broadcast(F, q8[x3 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x3 + m]), h3));
            }
            FloatVector d = scales(w, o);
            int b0 = (x0 + kb) / BLOCK, b1 = (x1 + kb) / BLOCK, b2 = (x2 + kb) / BLOCK, b3 = (x3 + kb) / BLOCK;
            a0 = s0.add(h0).sub(8 * totals[b0]).fma(d.mul(xScales[b0]), a0);
            a1 = s1.add(h1).sub(8 * totals[b1]).fma(d.mul(xScales[b1]), a1);
            a2 = s2.add(h2).sub(8 * totals[b2]).fma(d.mul(xScales[b2]), a2);
            a3 = s3.add(h3).sub(8 * totals[b3]).fma(d.mul(xScales[b3]), a3);
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    @Override
    public void dot8(MemorySegment w, long panelOffset, int cols, float[] x, int[] xs, ActivationBlocks xBlocks, int numTokens, float[] out,
                     int o0, int outWidth, float[] acc) {
        // Eight sums fill 8 of the 32 vector registers next to the widened values; the running results wait in acc (L1).
        java.util.Arrays.fill(acc, 0, 8 * ROWS, 0f);
        float[] q8 = xBlocks.int8Floats(), xScales = xBlocks.scales();
        int[] totals = xBlocks.int8Totals();
        int x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3], x4 = xs[4], x5 = xs[5], x6 = xs[6], x7 = xs[7];
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
            FloatVector h0 = s0, h1 = s0, h2 = s0, h3 = s0, h4 = s0, h5 = s0, h6 = s0, h7 = s0;
            for (int l = 0; l < 8; l++) {
                IntVector q = pairSlice(w, o, l);
                FloatVector e = low(q), od = nibble(q, 16), eh = nibble(q, 4), oh = top(q);
                int k = kb + 2 * l, m = k + 16;
                s0 = od.fma(FloatVector.broadcast(F, q8[x0 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x0 + k]), s0));
                h0 = oh.fma(FloatVector.broadcast(F, q8[x0 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x0 + m]), h0));
                s1 = od.fma(FloatVector.broadcast(F, q8[x1 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x1 + k]), s1));
                h1 = oh.fma(FloatVector.broadcast(F, q8[x1 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x1 + m]), h1));
                s2 = od.fma(FloatVector.broadcast(F, q8[x2 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x2 + k]), s2));
                h2 = oh.fma(FloatVector.broadcast(F, q8[x2 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x2 + m]), h2));
                s3 = od.fma(FloatVector.broadcast(F, q8[x3 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x3 + k]), s3));
                h3 = oh.fma(FloatVector.broadcast(F, q8[x3 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x3 + m]), h3));
                s4 = od.fma(FloatVector.broadcast(F, q8[x4 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x4 + k]), s4));
                h4 = oh.fma(FloatVector.broadcast(F, q8[x4 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x4 + m]), h4));
                s5 = od.fma(FloatVector.broadcast(F, q8[x5 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x5 + k]), s5));
                h5 = oh.fma(FloatVector.broadcast(F, q8[x5 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x5 + m]), h5));
                s6 = od.fma(FloatVector.broadcast(F, q8[x6 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x6 + k]), s6));
                h6 = oh.fma(FloatVector.broadcast(F, q8[x6 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x6 + m]), h6));
                s7 = od.fma(FloatVector.broadcast(F, q8[x7 + k + 1]), e.fma(FloatVector.broadcast(F, q8[x7 + k]), s7));
                h7 = oh.fma(FloatVector.broadcast(F, q8[x7 + m + 1]), eh.fma(FloatVector.broadcast(F, q8[x7 + m]), h7));
            }
            FloatVector d = scales(w, o);
            int b = kb / BLOCK;
            s0.add(h0).sub(8 * totals[x0 / BLOCK + b]).fma(d.mul(xScales[x0 / BLOCK + b]), FloatVector.fromArray(F, acc, 0)).intoArray(acc, 0);
            s1.add(h1).sub(8 * totals[x1 / BLOCK + b]).fma(d.mul(xScales[x1 / BLOCK + b]), FloatVector.fromArray(F, acc, ROWS)).intoArray(acc, ROWS);
            s2.add(h2).sub(8 * totals[x2 / BLOCK + b]).fma(d.mul(xScales[x2 / BLOCK + b]), FloatVector.fromArray(F, acc, 2 * ROWS)).intoArray(acc, 2 * ROWS);
            s3.add(h3).sub(8 * totals[x3 / BLOCK + b]).fma(d.mul(xScales[x3 / BLOCK + b]), FloatVector.fromArray(F, acc, 3 * ROWS)).intoArray(acc, 3 * ROWS);
            s4.add(h4).sub(8 * totals[x4 / BLOCK + b]).fma(d.mul(xScales[x4 / BLOCK + b]), FloatVector.fromArray(F, acc, 4 * ROWS)).intoArray(acc, 4 * ROWS);
            s5.add(h5).sub(8 * totals[x5 / BLOCK + b]).fma(d.mul(xScales[x5 / BLOCK + b]), FloatVector.fromArray(F, acc, 5 * ROWS)).intoArray(acc, 5 * ROWS);
            s6.add(h6).sub(8 * totals[x6 / BLOCK + b]).fma(d.mul(xScales[x6 / BLOCK + b]), FloatVector.fromArray(F, acc, 6 * ROWS)).intoArray(acc, 6 * ROWS);
            s7.add(h7).sub(8 * totals[x7 / BLOCK + b]).fma(d.mul(xScales[x7 / BLOCK + b]), FloatVector.fromArray(F, acc, 7 * ROWS)).intoArray(acc, 7 * ROWS);
        }
        for (int t = 0; t < numTokens; t++) System.arraycopy(acc, t * ROWS, out, o0 + t * outWidth, ROWS);
    }

    @Override
    public void dequantizeRow(MemorySegment w, long panelOffset, int i, int cols, float[] out, int outOffset) {
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, o + 2L * i));
            for (int j = 0; j < 16; j++) {
                int q = w.get(U8, o + QS + 32L * (j / 2) + 2 * i + (j & 1)) & 0xff;
                out[outOffset + kb + j] = ((q & 0x0f) - 8) * d;
                out[outOffset + kb + 16 + j] = ((q >> 4) - 8) * d;
            }
        }
    }
}
