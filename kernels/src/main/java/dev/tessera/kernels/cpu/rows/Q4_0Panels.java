package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * Q4_0 panels: per 16-row panel and 32-column block, 288 bytes: the 16 rows' f16 scales, then 16 slices of 16 bytes
 * where slice j holds byte qs[j] of rows 0..15, so its low nibbles are column j of the panel and its high nibbles
 * column j + 16 (18 bytes per 32 values, as in GGUF).
 * <p>
 * The dots take x as int8 per block ({@link #needsInt8}, as llama.cpp's q8_0 activations). The one-token dot loads
 * two slices at once into 32 short lanes and multiplies them by the two columns' int8 x, summing a block's Σ q·qx (at
 * most 16 * 15 * 127 = 30480 per lane) in 16-bit lanes: 22.6-23.5 against 17.2 GMAC/s per thread for float FMAs on
 * the widened nibbles. A pair layout (row i's two bytes side by side, so one broadcast int gives the x pattern
 * without the shuffle) reached 28, but widening its slices into floats for batched tokens cost those 23%. With four
 * or eight tokens the nibbles feed float FMAs on the int8 x as floats: a block's sum is then the same exact integer,
 * and what follows (- 8 Σq, times d * scale) the same arithmetic, so batching changes no bit.
 */
public final class Q4_0Panels implements PanelKernel {
    static final PanelKernel INSTANCE = new Q4_0Panels();
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 18;
    static final int PANEL_BLOCK_BYTES = ROWS * BLOCK_BYTES;
    static final int QS = 2 * ROWS;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256, S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    /** Spreads short lane 0 over lanes 0-15 and lane 1 over lanes 16-31. */
    private static final VectorShuffle<Short> HALVES = VectorShuffle.fromOp(S32, i -> i / 16);

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
        return PanelRepack.repack(src, rows, cols, BLOCK_BYTES, arena);
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0) {
        long o = panelOffset + (long) (k0 / BLOCK) * PANEL_BLOCK_BYTES;
        for (int kb = 0; kb < kn; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
            FloatVector bias = d.mul(-8f);
            int lo = kb * stride + col0, hi = lo + 16 * stride;
            for (int j = 0; j < 16; j++, lo += stride, hi += stride) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B16, w, o + QS + j * ROWS, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                ((FloatVector) q.and(15).convert(VectorOperators.I2F, 0)).fma(d, bias).intoMemorySegment(packed, 4L * lo, NATIVE);
                ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(d, bias).intoMemorySegment(packed, 4L * hi, NATIVE);
            }
        }
    }

    @Override
    public boolean hasIntegerGemm() {
        return true;
    }

    @Override
    public void gemm(MemorySegment w, long panelBytes, int r0, int rows, int cols, ActivationBlocks xBlocks, int numTokens, float[] out,
                     int outWidth, MemorySegment pack) {
        Q4_0Gemm.multiply(w, panelBytes, r0, rows, cols, xBlocks, numTokens, out, outWidth, pack);
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
                // Slices 2l and 2l + 1 in one load: lanes 0-15 are column 2l (low nibbles) or 2l + 16 (high), lanes 16-31
                // the next column; x's two columns, one int, spread over the matching halves.
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * l, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                ShortVector xLow = IntVector.broadcast(I512, pairs[p + l]).reinterpretAsShorts().rearrange(HALVES);
                ShortVector xHigh = IntVector.broadcast(I512, pairs[p + 8 + l]).reinterpretAsShorts().rearrange(HALVES);
                s = s.add(q.and((short) 15).mul(xLow)).add(q.lanewise(VectorOperators.LSHR, 4).mul(xHigh));
            }
            // The two halves (even and odd columns) added per row; exact as a float.
            IntVector sum = ((IntVector) s.convertShape(VectorOperators.S2I, I, 0)).add((IntVector) s.convertShape(VectorOperators.S2I, I, 1));
            int b = xb / BLOCK;
            FloatVector d = VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
            acc = ((FloatVector) sum.convert(VectorOperators.I2F, 0)).sub(8 * totals[b]).fma(d.mul(xScales[b]), acc);
        }
        acc.intoArray(out, outOffset);
    }

    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                            int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        long o = panelOffset;
        float[] q8 = xBlocks.int8Floats(), xScales = xBlocks.scales();
        int[] totals = xBlocks.int8Totals();
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, h0 = s0, h1 = s0, h2 = s0, h3 = s0;
            for (int j = 0; j < 16; j++) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B16, w, o + QS + j * ROWS, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                FloatVector lo = (FloatVector) q.and(15).convert(VectorOperators.I2F, 0);
                FloatVector hi = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0);
                int k = kb + j;
                s0 = lo.fma(FloatVector.broadcast(F, q8[x0 + k]), s0); h0 = hi.fma(FloatVector.broadcast(F, q8[x0 + k + 16]), h0);
                s1 = lo.fma(FloatVector.broadcast(F, q8[x1 + k]), s1); h1 = hi.fma(FloatVector.broadcast(F, q8[x1 + k + 16]), h1);
                s2 = lo.fma(FloatVector.broadcast(F, q8[x2 + k]), s2); h2 = hi.fma(FloatVector.broadcast(F, q8[x2 + k + 16]), h2);
                s3 = lo.fma(FloatVector.broadcast(F, q8[x3 + k]), s3); h3 = hi.fma(FloatVector.broadcast(F, q8[x3 + k + 16]), h3);
            }
            FloatVector d = VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
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
        // Eight (s, h) pairs fill 16 of the 32 vector registers; the running sums wait in acc (L1) between blocks.
        java.util.Arrays.fill(acc, 0, 8 * ROWS, 0f);
        int x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3], x4 = xs[4], x5 = xs[5], x6 = xs[6], x7 = xs[7];
        long o = panelOffset;
        float[] q8 = xBlocks.int8Floats(), xScales = xBlocks.scales();
        int[] totals = xBlocks.int8Totals();
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
            FloatVector h0 = s0, h1 = s0, h2 = s0, h3 = s0, h4 = s0, h5 = s0, h6 = s0, h7 = s0;
            for (int j = 0; j < 16; j++) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B16, w, o + QS + j * ROWS, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                FloatVector lo = (FloatVector) q.and(15).convert(VectorOperators.I2F, 0);
                FloatVector hi = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0);
                int k = kb + j, m = k + 16;
                s0 = lo.fma(FloatVector.broadcast(F, q8[x0 + k]), s0); h0 = hi.fma(FloatVector.broadcast(F, q8[x0 + m]), h0);
                s1 = lo.fma(FloatVector.broadcast(F, q8[x1 + k]), s1); h1 = hi.fma(FloatVector.broadcast(F, q8[x1 + m]), h1);
                s2 = lo.fma(FloatVector.broadcast(F, q8[x2 + k]), s2); h2 = hi.fma(FloatVector.broadcast(F, q8[x2 + m]), h2);
                s3 = lo.fma(FloatVector.broadcast(F, q8[x3 + k]), s3); h3 = hi.fma(FloatVector.broadcast(F, q8[x3 + m]), h3);
                s4 = lo.fma(FloatVector.broadcast(F, q8[x4 + k]), s4); h4 = hi.fma(FloatVector.broadcast(F, q8[x4 + m]), h4);
                s5 = lo.fma(FloatVector.broadcast(F, q8[x5 + k]), s5); h5 = hi.fma(FloatVector.broadcast(F, q8[x5 + m]), h5);
                s6 = lo.fma(FloatVector.broadcast(F, q8[x6 + k]), s6); h6 = hi.fma(FloatVector.broadcast(F, q8[x6 + m]), h6);
                s7 = lo.fma(FloatVector.broadcast(F, q8[x7 + k]), s7); h7 = hi.fma(FloatVector.broadcast(F, q8[x7 + m]), h7);
            }
            FloatVector d = VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
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
                int q = w.get(U8, o + QS + j * ROWS + i) & 0xff;
                out[outOffset + kb + j] = ((q & 0x0f) - 8) * d;
                out[outOffset + kb + 16 + j] = ((q >> 4) - 8) * d;
            }
        }
    }
}
