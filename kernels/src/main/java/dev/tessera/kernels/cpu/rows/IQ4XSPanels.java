package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.IQ4NLPanels.TABLE;
import static dev.tessera.kernels.cpu.rows.IQ4NLRows.LEVELS;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.B2F;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.XOR;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2S;

/**
 * IQ4_XS panels: per 16-row panel and 256-column block, 2240 bytes: the 16 rows' d as floats, their 8 sub-blocks'
 * scales ls - 32 as signed bytes ([sub-block][row]), then 64 pair slices of 32 bytes where slice 8j + m holds, at byte
 * 2i + p, qs byte 16j + 2m + p of row i: its low nibble is column 32j + 2m + p, its high nibble 32j + 16 + 2m + p, as
 * {@link IQ4NLPanels} lays out one 32-column block. 4.375 bits per value against GGUF's 4.25: the 6-bit scales, split
 * over two fields in GGUF, are decoded at load (as {@link Q4KPanels} decodes its own).
 * <p>
 * A sub-block's values are d * (ls - 32) * level, so its dot is the integer Σ level·qx, formed as {@link IQ4NLPanels}
 * forms a block's, times d * (ls - 32) * x scale; {@link #dot} and {@link #dot4} share that arithmetic per token, so
 * batching changes no bit; the prefill GEMM ({@link IQ4Gemm}) forms the same integer sums exactly in floats.
 */
public final class IQ4XSPanels extends SuperBlockPanels {
    static final PanelKernel INSTANCE = new IQ4XSPanels();
    static final int D = 0, SC = 4 * ROWS, QS = SC + 8 * ROWS;
    static final int PANEL_BLOCK_BYTES = QS + 128 * ROWS;
    private static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128, B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;

    private IQ4XSPanels() {
        super(PANEL_BLOCK_BYTES);
    }

    @Override
    void repackPanels(MemorySegment src, MemorySegment dst, int p0, int p1, int numBlocks) {
        long rowBytes = (long) numBlocks * IQ4XSRows.BLOCK_BYTES;
        long[] x = new long[4];
        for (int p = p0; p < p1; p++)
            for (int b = 0; b < numBlocks; b++) {
                long s = (long) p * ROWS * rowBytes + (long) b * IQ4XSRows.BLOCK_BYTES, d = ((long) p * numBlocks + b) * PANEL_BLOCK_BYTES;
                for (int i = 0; i < ROWS; i++) {
                    long r = s + i * rowBytes;
                    dst.set(F32, d + D + 4L * i, Float.float16ToFloat(src.get(I16, r)));
                    for (int j = 0; j < 8; j++) dst.set(U8, d + SC + j * ROWS + i, (byte) (IQ4XSRows.scale(src, r, j) - 32));
                }
                PanelRepack.pairSlices(src, s, rowBytes, 8, 64, dst, d + QS, x);  // qs: bytes 8..135 of each row
            }
    }

    @Override
    public IntegerGemm.Kernel integerGemm() {
        return IQ4Gemm.XS;
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0) {
        long o = panelOffset + (long) (k0 / BLOCK) * PANEL_BLOCK_BYTES;
        for (int kb = 0; kb < kn; kb += BLOCK, o += PANEL_BLOCK_BYTES)
            for (int j = 0; j < 8; j++) IQ4NLPanels.unpackLevels(w, o + QS + 256L * j, subBlockScales(w, o, j), packed, (kb + 32 * j) * stride + col0, stride);
    }

    /**
     * The 16 rows' d * (ls - 32) of sub-block j of the panel block at {@code o}, as the row kernel's factor (outside the
     * dots, which spell it out: see {@link Q4_0Panels}).
     */
    static FloatVector subBlockScales(MemorySegment w, long o, int j) {
        return FloatVector.fromMemorySegment(F, w, o + D, LE).mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + SC + 16L * j, LE).convertShape(B2F, F, 0));
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        int[] pairs = xBlocks.pairs();
        float[] xScales = xBlocks.scales();
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE);
            for (int j = 0; j < 8; j++) {
                IntVector all = IntVector.zero(I512), high = all;
                int p = (xb + 32 * j) / 2;
                long at = o + QS + 256L * j;
                for (int m = 0; m < 8; m++, at += 32) {
                    ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, at, LE).convertShape(ZERO_EXTEND_B2S, S32, 0);
                    IntVector i = q.and((short) 15).selectFrom(TABLE).mul(IntVector.broadcast(I512, pairs[p + m]).reinterpretAsShorts())
                            .add(q.lanewise(LSHR, 4).selectFrom(TABLE).mul(IntVector.broadcast(I512, pairs[p + 8 + m]).reinterpretAsShorts()))
                            .reinterpretAsInts().lanewise(XOR, 0x8000);
                    all = all.add(i);
                    high = high.add(i.lanewise(ASHR, 16));
                }
                IntVector t = all.sub(high.lanewise(LSHL, 16)).add(high).sub(8 * 0x8000);
                FloatVector dl = d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + SC + 16L * j, LE).convertShape(B2F, F, 0));
                acc = ((FloatVector) t.convert(I2F, 0)).fma(dl.mul(xScales[xb / 32 + j]), acc);
            }
        }
        acc.intoArray(out, outOffset);
    }

    /** As {@link #dot} for four tokens, each slice's looked-up levels multiplied by the four tokens' x pairs. */
    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int[] pairs = xBlocks.pairs();
        float[] xScales = xBlocks.scales();
        long o = panelOffset;
        // Per token, its column pair and x block at the start of the current 32-column sub-block.
        int p0 = x0 / 2, p1 = x1 / 2, p2 = x2 / 2, p3 = x3 / 2, b0 = x0 / 32, b1 = x1 / 32, b2 = x2 / 32, b3 = x3 / 32;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE);
            for (int j = 0; j < 8; j++, p0 += 16, p1 += 16, p2 += 16, p3 += 16, b0++, b1++, b2++, b3++) {
                IntVector all0 = IntVector.zero(I512), all1 = all0, all2 = all0, all3 = all0, high0 = all0, high1 = all0, high2 = all0, high3 = all0;
                long at = o + QS + 256L * j;
                for (int m = 0; m < 8; m++, at += 32) {
                    ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, at, LE).convertShape(ZERO_EXTEND_B2S, S32, 0);
                    ShortVector lo = q.and((short) 15).selectFrom(TABLE), hi = q.lanewise(LSHR, 4).selectFrom(TABLE);
                    IntVector i = lo.mul(IntVector.broadcast(I512, pairs[p0 + m]).reinterpretAsShorts())
                            .add(hi.mul(IntVector.broadcast(I512, pairs[p0 + 8 + m]).reinterpretAsShorts())).reinterpretAsInts().lanewise(XOR, 0x8000);
                    all0 = all0.add(i);
                    high0 = high0.add(i.lanewise(ASHR, 16));
                    i = lo.mul(IntVector.broadcast(I512, pairs[p1 + m]).reinterpretAsShorts())
                            .add(hi.mul(IntVector.broadcast(I512, pairs[p1 + 8 + m]).reinterpretAsShorts())).reinterpretAsInts().lanewise(XOR, 0x8000);
                    all1 = all1.add(i);
                    high1 = high1.add(i.lanewise(ASHR, 16));
                    i = lo.mul(IntVector.broadcast(I512, pairs[p2 + m]).reinterpretAsShorts())
                            .add(hi.mul(IntVector.broadcast(I512, pairs[p2 + 8 + m]).reinterpretAsShorts())).reinterpretAsInts().lanewise(XOR, 0x8000);
                    all2 = all2.add(i);
                    high2 = high2.add(i.lanewise(ASHR, 16));
                    i = lo.mul(IntVector.broadcast(I512, pairs[p3 + m]).reinterpretAsShorts())
                            .add(hi.mul(IntVector.broadcast(I512, pairs[p3 + 8 + m]).reinterpretAsShorts())).reinterpretAsInts().lanewise(XOR, 0x8000);
                    all3 = all3.add(i);
                    high3 = high3.add(i.lanewise(ASHR, 16));
                }
                FloatVector dl = d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + SC + 16L * j, LE).convertShape(B2F, F, 0));
                a0 = ((FloatVector) all0.sub(high0.lanewise(LSHL, 16)).add(high0).sub(8 * 0x8000).convert(I2F, 0)).fma(dl.mul(xScales[b0]), a0);
                a1 = ((FloatVector) all1.sub(high1.lanewise(LSHL, 16)).add(high1).sub(8 * 0x8000).convert(I2F, 0)).fma(dl.mul(xScales[b1]), a1);
                a2 = ((FloatVector) all2.sub(high2.lanewise(LSHL, 16)).add(high2).sub(8 * 0x8000).convert(I2F, 0)).fma(dl.mul(xScales[b2]), a2);
                a3 = ((FloatVector) all3.sub(high3.lanewise(LSHL, 16)).add(high3).sub(8 * 0x8000).convert(I2F, 0)).fma(dl.mul(xScales[b3]), a3);
            }
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    @Override
    public void dequantizeRow(MemorySegment w, long panelOffset, int i, int cols, float[] out, int outOffset) {
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            float d = w.get(F32, o + D + 4L * i);
            for (int j = 0; j < 8; j++) {
                float dl = d * w.get(U8, o + SC + 16L * j + i);
                for (int l = 0; l < 16; l++) {
                    int q = w.get(U8, o + QS + 256L * j + 32L * (l / 2) + 2 * i + (l & 1)) & 0xff;
                    out[outOffset + kb + 32 * j + l] = dl * LEVELS[q & 15];
                    out[outOffset + kb + 32 * j + 16 + l] = dl * LEVELS[q >> 4];
                }
            }
        }
    }
}
