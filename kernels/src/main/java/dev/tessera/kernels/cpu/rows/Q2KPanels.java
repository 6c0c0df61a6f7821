package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

/**
 * Q2_K panels: per 16-row panel and 256-column block, 1408 bytes (4.8% over the GGUF block's 84 a row): the 16 rows' d
 * and dmin as floats, then per 16-column sub-block g, read front to back: the rows' scale-and-min bytes as in the file
 * (scale in the low nibble, min in the high one), and two slices of 32 bytes laid out as {@link Q3KPanels}' (byte 2i +
 * p of slice h holds in bits 2k..2k+1 row i's quant at column 16g + 8h + 2k + p).
 * <p>
 * A sub-block's Σ q·qx forms in 16-bit lanes (at most 8 * 3 * 127 per lane); the min term takes the sub-block's Σ qx,
 * the same for every row, made once per matmul ({@link ActivationBlocks#negativeHalfSums}: summed from the pairs in
 * each dot, it cost a sixth of the one-token dot's time). Many tokens go through {@link #dot4}, prefill included.
 */
public final class Q2KPanels extends ValuePanels {
    static final PanelKernel INSTANCE = new Q2KPanels();
    private static final int GGUF_BLOCK_BYTES = Q2KRows.BLOCK_BYTES;
    private static final int D = 0, DMIN = 4 * ROWS, SUB_BLOCKS = 8 * ROWS, SUB_BLOCK_BYTES = ROWS + 64;
    static final int PANEL_BLOCK_BYTES = SUB_BLOCKS + 16 * SUB_BLOCK_BYTES;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128, B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;

    private Q2KPanels() {
        super(PANEL_BLOCK_BYTES);
    }

    @Override
    void repackPanels(MemorySegment src, MemorySegment dst, int p0, int p1, int numBlocks) {
        long rowBytes = (long) numBlocks * GGUF_BLOCK_BYTES;
        for (int p = p0; p < p1; p++)
            for (int b = 0; b < numBlocks; b++) {
                long s = (long) p * ROWS * rowBytes + (long) b * GGUF_BLOCK_BYTES, d = ((long) p * numBlocks + b) * PANEL_BLOCK_BYTES;
                for (int i = 0; i < ROWS; i++) {
                    dst.set(F32, d + D + 4L * i, Q2KRows.d(src, s + i * rowBytes));
                    dst.set(F32, d + DMIN + 4L * i, Q2KRows.dmin(src, s + i * rowBytes));
                }
                for (int g = 0; g < 16; g++) {
                    long sub = d + SUB_BLOCKS + (long) g * SUB_BLOCK_BYTES;
                    for (int i = 0; i < ROWS; i++) {
                        long r = s + i * rowBytes;
                        dst.set(U8, sub + i, (byte) Q2KRows.scaleAndMin(src, r, g));
                        for (int h = 0; h < 2; h++)
                            for (int q = 0; q < 2; q++) {
                                int fields = 0;
                                for (int k = 0; k < 4; k++) fields |= Q2KRows.q(src, r, 16 * g + 8 * h + 2 * k + q) << 2 * k;
                                dst.set(U8, sub + ROWS + 32 * h + 2 * i + q, (byte) fields);
                            }
                    }
                }
            }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        float[] xScales = xBlocks.scales(), minSums = xBlocks.negativeHalfSums();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE), dmin = FloatVector.fromMemorySegment(F, w, o + DMIN, LE);
            for (int g = 0; g < 16; g++) {
                int m = (xb + 16 * g) / 2;
                long sub = o + SUB_BLOCKS + (long) g * SUB_BLOCK_BYTES;
                ShortVector s = ShortVector.zero(S32);
                for (int h = 0; h < 2; h++) {
                    ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, sub + ROWS + 32L * h, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                    int mq = m + 4 * h;
                    s = s.add(q.and((short) 3).mul(IntVector.broadcast(I512, pairs[mq]).reinterpretAsShorts()));
                    s = s.add(q.lanewise(LSHR, 2).and((short) 3).mul(IntVector.broadcast(I512, pairs[mq + 1]).reinterpretAsShorts()));
                    s = s.add(q.lanewise(LSHR, 4).and((short) 3).mul(IntVector.broadcast(I512, pairs[mq + 2]).reinterpretAsShorts()));
                    s = s.add(q.lanewise(LSHR, 6).mul(IntVector.broadcast(I512, pairs[mq + 3]).reinterpretAsShorts()));
                }
                // Each row's two lanes added (exact as a float), times d * scale * x scale; then dmin * min times -Σx.
                float xScale = xScales[(xb + 16 * g) / 32];
                IntVector both = s.reinterpretAsInts();
                FloatVector sums = (FloatVector) both.lanewise(LSHL, 16).lanewise(ASHR, 16).add(both.lanewise(ASHR, 16)).convert(I2F, 0);
                ByteVector scaleAndMin = ByteVector.fromMemorySegment(B16, w, sub, LE);
                FloatVector sc = (FloatVector) scaleAndMin.and((byte) 15).convertShape(VectorOperators.B2F, F, 0);
                FloatVector mn = (FloatVector) scaleAndMin.lanewise(LSHR, 4).convertShape(VectorOperators.B2F, F, 0);
                acc = sums.fma(d.mul(sc).mul(xScale), acc);
                acc = dmin.mul(mn).fma(FloatVector.broadcast(F, minSums[(xb + 16 * g) / 16]), acc);
            }
        }
        acc.intoArray(out, outOffset);
    }

    /**
     * As {@link #dot} for four tokens: each widened slice serves the four tokens, with dot's integer sums and dot's
     * float tail per token, so results are the same bits as dot's.
     */
    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        float[] xScales = xBlocks.scales(), minSums = xBlocks.negativeHalfSums();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE), dmin = FloatVector.fromMemorySegment(F, w, o + DMIN, LE);
            for (int g = 0; g < 16; g++) {
                long sub = o + SUB_BLOCKS + (long) g * SUB_BLOCK_BYTES;
                int kg = kb + 16 * g, m0 = (x0 + kg) / 2, m1 = (x1 + kg) / 2, m2 = (x2 + kg) / 2, m3 = (x3 + kg) / 2;
                ShortVector s0 = ShortVector.zero(S32), s1 = s0, s2 = s0, s3 = s0;
                for (int h = 0; h < 2; h++) {
                    ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, sub + ROWS + 32L * h, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                    for (int k = 0; k < 4; k++) {
                        ShortVector v = k == 3 ? q.lanewise(LSHR, 6) : q.lanewise(LSHR, 2 * k).and((short) 3);
                        int e = 4 * h + k;
                        s0 = s0.add(v.mul(IntVector.broadcast(I512, pairs[m0 + e]).reinterpretAsShorts()));
                        s1 = s1.add(v.mul(IntVector.broadcast(I512, pairs[m1 + e]).reinterpretAsShorts()));
                        s2 = s2.add(v.mul(IntVector.broadcast(I512, pairs[m2 + e]).reinterpretAsShorts()));
                        s3 = s3.add(v.mul(IntVector.broadcast(I512, pairs[m3 + e]).reinterpretAsShorts()));
                    }
                }
                ByteVector scaleAndMin = ByteVector.fromMemorySegment(B16, w, sub, LE);
                FloatVector ds = d.mul((FloatVector) scaleAndMin.and((byte) 15).convertShape(VectorOperators.B2F, F, 0));
                FloatVector dm = dmin.mul((FloatVector) scaleAndMin.lanewise(LSHR, 4).convertShape(VectorOperators.B2F, F, 0));
                float xs0 = xScales[(x0 + kg) / 32], xs1 = xScales[(x1 + kg) / 32], xs2 = xScales[(x2 + kg) / 32], xs3 = xScales[(x3 + kg) / 32];
                IntVector i = s0.reinterpretAsInts();
                a0 = dm.fma(FloatVector.broadcast(F, minSums[(x0 + kg) / 16]), ((FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(ds.mul(xs0), a0));
                i = s1.reinterpretAsInts();
                a1 = dm.fma(FloatVector.broadcast(F, minSums[(x1 + kg) / 16]), ((FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(ds.mul(xs1), a1));
                i = s2.reinterpretAsInts();
                a2 = dm.fma(FloatVector.broadcast(F, minSums[(x2 + kg) / 16]), ((FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(ds.mul(xs2), a2));
                i = s3.reinterpretAsInts();
                a3 = dm.fma(FloatVector.broadcast(F, minSums[(x3 + kg) / 16]), ((FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(ds.mul(xs3), a3));
            }
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    /** Row i's value at column k, as Q2KRows.dequantize computes it: (d * scale) * q - dmin * min. */
    @Override
    float value(MemorySegment w, long panelOffset, int i, int k) {
        long o = panelOffset + (long) (k / BLOCK) * PANEL_BLOCK_BYTES;
        int col = k % BLOCK, g = col / 16, h = col % 16 / 8, kk = col % 8 / 2, lane = 2 * i + col % 2;
        long sub = o + SUB_BLOCKS + (long) g * SUB_BLOCK_BYTES;
        int q = (w.get(U8, sub + ROWS + 32L * h + lane) & 0xff) >> 2 * kk & 3, sc = w.get(U8, sub + i) & 0xff;
        return w.get(F32, o + D + 4L * i) * (sc & 15) * q - w.get(F32, o + DMIN + 4L * i) * (sc >> 4);
    }
}
