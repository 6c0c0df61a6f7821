package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
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
import static jdk.incubator.vector.VectorOperators.NE;

/**
 * Q3_K panels: per 16-row panel and 256-column block, 1856 bytes (5.5% over the GGUF block's 110 a row): the 16 rows'
 * d as floats, then per 16-column sub-block g, read front to back: the rows' scales minus 32 as signed bytes (16), a
 * byte of clear bits per lane (32), and two slices of 32 bytes. Byte 2i + p of slice h holds, in bits 2k..2k+1, the low
 * two bits of row i at column 16g + 8h + 2k + p; bit 4h + k of clear byte 2i + p is set where that value's high bit is
 * clear, that is where the value is its low bits minus 4. The clear bytes widen into short lanes once per sub-block,
 * and an and and a compare give each field's mask: read instead as four longs, one scalar load and move into a mask
 * register per field, four tokens ran 43-46 against 48 GMAC/s in cache on Zen 5 (one token: 40 either way).
 * <p>
 * A sub-block's Σ q·qx is then Σ low·qx, in 16-bit lanes as the other int8 kernels form it, minus 4 times a masked sum
 * of x (at most 8 * 3 * 127 and 4 * 8 * 127 per lane), and its float tail is Q6_K's: sixteen-column groups with a
 * signed scale each and one d, two groups sharing an x block.
 * <p>
 * Two to SMALL_BATCH tokens go through {@link #dot4}, more through {@link Q3KGemm}, each token's row the same bits as
 * {@link #dot}'s.
 */
public final class Q3KPanels extends ValuePanels {
    static final PanelKernel INSTANCE = new Q3KPanels();
    private static final int GGUF_BLOCK_BYTES = Q3KRows.BLOCK_BYTES;
    /** Offsets: the rows' d, the first sub-block; in a sub-block, the clear bytes after the scales, then the slices. */
    static final int D = 0, SUB_BLOCKS = 4 * ROWS, SUB_BLOCK_BYTES = ROWS + 32 + 64, CLEARS = ROWS, SLICES = CLEARS + 32;
    static final int PANEL_BLOCK_BYTES = SUB_BLOCKS + 16 * SUB_BLOCK_BYTES;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128, B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;

    private Q3KPanels() {
        super(PANEL_BLOCK_BYTES);
    }

    @Override
    void repackPanels(MemorySegment src, MemorySegment dst, int p0, int p1, int numBlocks) {
        long rowBytes = (long) numBlocks * GGUF_BLOCK_BYTES;
        // The 16 rows' blocks are read field by field from a heap copy: from the mapped file the repack ran at 101 MB/s,
        // from the copy at 140 (Q2_K's repack, with one field per value, gained nothing from it).
        MemorySegment block = MemorySegment.ofArray(new byte[ROWS * GGUF_BLOCK_BYTES]);
        for (int p = p0; p < p1; p++)
            for (int b = 0; b < numBlocks; b++) {
                long d = ((long) p * numBlocks + b) * PANEL_BLOCK_BYTES;
                for (int i = 0; i < ROWS; i++)
                    MemorySegment.copy(src, (long) (p * ROWS + i) * rowBytes + (long) b * GGUF_BLOCK_BYTES, block, (long) i * GGUF_BLOCK_BYTES, GGUF_BLOCK_BYTES);
                for (int i = 0; i < ROWS; i++) dst.set(F32, d + D + 4L * i, Q3KRows.d(block, (long) i * GGUF_BLOCK_BYTES));
                for (int g = 0; g < 16; g++) {
                    long sub = d + SUB_BLOCKS + (long) g * SUB_BLOCK_BYTES;
                    for (int i = 0; i < ROWS; i++) {
                        long r = (long) i * GGUF_BLOCK_BYTES;
                        dst.set(U8, sub + i, (byte) (Q3KRows.scale(block, r, g) - 32));
                        for (int q = 0; q < 2; q++) {
                            int clear = 0;
                            for (int h = 0; h < 2; h++) {
                                int lows = 0;
                                for (int k = 0; k < 4; k++) {
                                    int column = 16 * g + 8 * h + 2 * k + q;
                                    lows |= Q3KRows.low(block, r, column) << 2 * k;
                                    // Branch-free: a branch on the high bit mispredicts on half the values (repack 76 MB/s with it).
                                    clear |= (1 - Q3KRows.high(block, r, column)) << (4 * h + k);
                                }
                                dst.set(U8, sub + SLICES + 32 * h + 2 * i + q, (byte) lows);
                            }
                            dst.set(U8, sub + CLEARS + 2 * i + q, (byte) clear);
                        }
                    }
                }
            }
    }

    @Override
    public IntegerGemm.Kernel integerGemm() {
        return Q3KGemm.INSTANCE;
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        float[] xScales = xBlocks.scales();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE);
            for (int g2 = 0; g2 < 16; g2 += 2) {
                // Sub-blocks g2 and g2 + 1 share x block (xb + 16 g2) / 32, as Q6KPanels.dot's groups do.
                FloatVector pair = acc;
                for (int half = 0; half < 2; half++) {
                    int g = g2 + half, m = (xb + 16 * g) / 2;
                    long sub = o + SUB_BLOCKS + (long) g * SUB_BLOCK_BYTES;
                    ShortVector s = ShortVector.zero(S32), t = s;
                    ShortVector clear = (ShortVector) ByteVector.fromMemorySegment(B32, w, sub + CLEARS, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                    for (int h = 0; h < 2; h++) {
                        ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, sub + SLICES + 32L * h, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                        int mq = m + 4 * h, f = 4 * h;
                        ShortVector x0 = IntVector.broadcast(I512, pairs[mq]).reinterpretAsShorts();
                        ShortVector x1 = IntVector.broadcast(I512, pairs[mq + 1]).reinterpretAsShorts();
                        ShortVector x2 = IntVector.broadcast(I512, pairs[mq + 2]).reinterpretAsShorts();
                        ShortVector x3 = IntVector.broadcast(I512, pairs[mq + 3]).reinterpretAsShorts();
                        s = s.add(q.and((short) 3).mul(x0));
                        t = t.add(x0, clear.and((short) (1 << f)).compare(NE, 0));
                        s = s.add(q.lanewise(LSHR, 2).and((short) 3).mul(x1));
                        t = t.add(x1, clear.and((short) (2 << f)).compare(NE, 0));
                        s = s.add(q.lanewise(LSHR, 4).and((short) 3).mul(x2));
                        t = t.add(x2, clear.and((short) (4 << f)).compare(NE, 0));
                        s = s.add(q.lanewise(LSHR, 6).mul(x3));
                        t = t.add(x3, clear.and((short) (8 << f)).compare(NE, 0));
                    }
                    // Σ q·qx = Σ low·qx - 4 Σ qx (high bit clear), each row's two lanes added (exact as a float), times d * scale.
                    IntVector both = s.sub(t.lanewise(LSHL, 2)).reinterpretAsInts();
                    FloatVector sums = (FloatVector) both.lanewise(LSHL, 16).lanewise(ASHR, 16).add(both.lanewise(ASHR, 16)).convert(I2F, 0);
                    FloatVector sc = d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, sub, LE).convertShape(VectorOperators.B2F, F, 0));
                    if (half == 0) pair = sums.mul(sc);
                    else acc = sums.fma(sc, pair).fma(FloatVector.broadcast(F, xScales[(xb + 16 * g) / 32]), acc);
                }
            }
        }
        acc.intoArray(out, outOffset);
    }

    /**
     * As {@link #dot} for four tokens: each widened slice and its masks serve the four tokens, with dot's integer sums
     * per sub-block and dot's float tail per token, so results are the same bits as dot's. Written without helper
     * methods: C2 boxes the vectors of a helper it declines to inline.
     */
    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, p0 = a0, p1 = a0, p2 = a0, p3 = a0;
        float[] xScales = xBlocks.scales();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE);
            for (int g = 0; g < 16; g++) {
                long sub = o + SUB_BLOCKS + (long) g * SUB_BLOCK_BYTES;
                int kg = kb + 16 * g, m0 = (x0 + kg) / 2, m1 = (x1 + kg) / 2, m2 = (x2 + kg) / 2, m3 = (x3 + kg) / 2;
                ShortVector s0 = ShortVector.zero(S32), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
                ShortVector clears = (ShortVector) ByteVector.fromMemorySegment(B32, w, sub + CLEARS, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                for (int h = 0; h < 2; h++) {
                    ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, sub + SLICES + 32L * h, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                    for (int k = 0; k < 4; k++) {
                        // Field k: the shift is a constant after C2 unrolls this loop of four.
                        ShortVector v = k == 3 ? q.lanewise(LSHR, 6) : q.lanewise(LSHR, 2 * k).and((short) 3);
                        VectorMask<Short> clear = clears.and((short) (1 << (4 * h + k))).compare(NE, 0);
                        int e = 4 * h + k;
                        ShortVector xv = IntVector.broadcast(I512, pairs[m0 + e]).reinterpretAsShorts();
                        s0 = s0.add(v.mul(xv));
                        t0 = t0.add(xv, clear);
                        xv = IntVector.broadcast(I512, pairs[m1 + e]).reinterpretAsShorts();
                        s1 = s1.add(v.mul(xv));
                        t1 = t1.add(xv, clear);
                        xv = IntVector.broadcast(I512, pairs[m2 + e]).reinterpretAsShorts();
                        s2 = s2.add(v.mul(xv));
                        t2 = t2.add(xv, clear);
                        xv = IntVector.broadcast(I512, pairs[m3 + e]).reinterpretAsShorts();
                        s3 = s3.add(v.mul(xv));
                        t3 = t3.add(xv, clear);
                    }
                }
                // Per token dot's tail: the first sub-block of an x block kept as sums * (d * scale), the second added
                // to it, then times the x block's scale into the running sum.
                FloatVector sc = d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, sub, LE).convertShape(VectorOperators.B2F, F, 0));
                IntVector i0 = s0.sub(t0.lanewise(LSHL, 2)).reinterpretAsInts(), i1 = s1.sub(t1.lanewise(LSHL, 2)).reinterpretAsInts();
                IntVector i2 = s2.sub(t2.lanewise(LSHL, 2)).reinterpretAsInts(), i3 = s3.sub(t3.lanewise(LSHL, 2)).reinterpretAsInts();
                FloatVector u0 = (FloatVector) i0.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i0.lanewise(ASHR, 16)).convert(I2F, 0);
                FloatVector u1 = (FloatVector) i1.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i1.lanewise(ASHR, 16)).convert(I2F, 0);
                FloatVector u2 = (FloatVector) i2.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i2.lanewise(ASHR, 16)).convert(I2F, 0);
                FloatVector u3 = (FloatVector) i3.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i3.lanewise(ASHR, 16)).convert(I2F, 0);
                if (g % 2 == 0) {
                    p0 = u0.mul(sc);
                    p1 = u1.mul(sc);
                    p2 = u2.mul(sc);
                    p3 = u3.mul(sc);
                } else {
                    a0 = u0.fma(sc, p0).fma(FloatVector.broadcast(F, xScales[(x0 + kg) / 32]), a0);
                    a1 = u1.fma(sc, p1).fma(FloatVector.broadcast(F, xScales[(x1 + kg) / 32]), a1);
                    a2 = u2.fma(sc, p2).fma(FloatVector.broadcast(F, xScales[(x2 + kg) / 32]), a2);
                    a3 = u3.fma(sc, p3).fma(FloatVector.broadcast(F, xScales[(x3 + kg) / 32]), a3);
                }
            }
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    /** Row i's value at column k, as Q3KRows.dequantize computes it: (d * (scale - 32)) * q. */
    @Override
    float value(MemorySegment w, long panelOffset, int i, int k) {
        long o = panelOffset + (long) (k / BLOCK) * PANEL_BLOCK_BYTES;
        int col = k % BLOCK, g = col / 16, h = col % 16 / 8, kk = col % 8 / 2, lane = 2 * i + col % 2;
        long sub = o + SUB_BLOCKS + (long) g * SUB_BLOCK_BYTES;
        int low = (w.get(U8, sub + SLICES + 32L * h + lane) & 0xff) >> 2 * kk & 3;
        int clear = (w.get(U8, sub + CLEARS + lane) & 0xff) >> (4 * h + kk) & 1;
        return w.get(F32, o + D + 4L * i) * w.get(U8, sub + i) * (low - 4 * clear);
    }
}
