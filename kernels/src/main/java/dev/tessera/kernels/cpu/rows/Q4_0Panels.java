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
import static dev.tessera.kernels.cpu.rows.VectorLanes.I;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2S;

/**
 * Q4_0 panels: per 16-row panel and 32-column block, 288 bytes: the 16 rows' f16 scales, then 8 pair slices of 32
 * bytes where slice m holds, at byte 2i + p, byte qs[2m + p] of row i: its low nibble is column 2m + p, its high
 * nibble column 16 + 2m + p (18 bytes per 32 values, as in GGUF).
 * <p>
 * The dots take x as int8 per block ({@link #needsInt8}, as llama.cpp's q8_0 activations). A pair slice widens into 32
 * short lanes (row i, column parity p), and its nibbles multiply broadcast ints that each hold two columns' int8 x,
 * summing a block's Σq·qx (at most 16 * 15 * 127 = 30480 per lane) in 16-bit lanes; {@link #dot4} shares each widened
 * slice between four tokens the same way. The sum then loses 8 Σqx and takes d times the x scale, in every dot and in
 * the integer GEMM ({@link Q4_0Gemm}) alike, so batching changes no bit. Slices of one column each needed a lane
 * permute per broadcast to match x (22.6-23.5 GMAC/s per thread at one token); a first pair layout reached 27-29, but
 * its batched dots, with helper methods, went past C2's inlining budget (see {@link #dot}).
 * <p>
 * The dots call no helper method of ours: C2 counts nodes as it parses, and a helper it declines to inline past that
 * budget boxes the vectors it takes or returns (the dot inlined into a matmul loop along with another kernel's ran a
 * decode at 12 tok/s). The Vector API's own methods are force-inlined later instead.
 */
public final class Q4_0Panels extends BlockPanels {
    static final PanelKernel INSTANCE = new Q4_0Panels();
    static final int BLOCK_BYTES = 18;
    static final int PANEL_BLOCK_BYTES = ROWS * BLOCK_BYTES;
    static final int QS = 2 * ROWS;
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256, S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;

    private Q4_0Panels() {
        super(BLOCK_BYTES);
    }

    /** The panel layout of a row-major Q4_0 tensor ({@code rows} x {@code cols}), in memory of {@code arena}. */
    @Override
    public MemorySegment repack(MemorySegment src, int rows, int cols, Arena arena) {
        return PanelRepack.scalesAndPairSlices(src, rows, cols, BLOCK_BYTES, arena);
    }

    @Override
    public IntegerGemm.Kernel integerGemm() {
        return Q4_0Gemm.INSTANCE;
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0) {
        long o = panelOffset + (long) (k0 / BLOCK) * PANEL_BLOCK_BYTES;
        for (int kb = 0; kb < kn; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
            FloatVector bias = d.mul(-8f);
            int lo = kb * stride + col0, hi = lo + 16 * stride;
            for (int m = 0; m < 8; m++, lo += 2 * stride, hi += 2 * stride) {
                IntVector q = ((ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m, LE).convertShape(ZERO_EXTEND_B2S, S32, 0))
                        .reinterpretAsInts();
                for (int p = 0; p < 2; p++) {
                    IntVector v = p == 0 ? q : q.lanewise(LSHR, 16);
                    ((FloatVector) v.and(15).convert(I2F, 0)).fma(d, bias).intoMemorySegment(packed, 4L * (lo + p * stride), NATIVE);
                    ((FloatVector) v.lanewise(LSHR, 4).and(15).convert(I2F, 0)).fma(d, bias).intoMemorySegment(packed, 4L * (hi + p * stride), NATIVE);
                }
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
            for (int m = 0; m < 8; m++) {
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m, LE).convertShape(ZERO_EXTEND_B2S, S32, 0);
                s = s.add(q.and((short) 15).mul(IntVector.broadcast(I512, pairs[p + m]).reinterpretAsShorts()))
                        .add(q.lanewise(LSHR, 4).mul(IntVector.broadcast(I512, pairs[p + 8 + m]).reinterpretAsShorts()));
            }
            // Row i's two lanes added (VectorLanes.rowSums), d from f16 (VectorLanes.halfToFloat), spelled out: see above.
            IntVector both = s.reinterpretAsInts();
            FloatVector sum = (FloatVector) both.lanewise(LSHL, 16).lanewise(ASHR, 16).add(both.lanewise(ASHR, 16)).convert(I2F, 0);
            IntVector bits = (IntVector) ShortVector.fromMemorySegment(S16, w, o, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0);
            IntVector abs = bits.and(0x7fff);
            IntVector mag = abs.lanewise(LSHL, 13).lanewise(VectorOperators.OR, 0x7f800000, abs.compare(VectorOperators.GE, 0x7c00));
            FloatVector d = mag.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts().or(bits.and(0x8000).lanewise(LSHL, 16)).reinterpretAsFloats();
            int b = xb / BLOCK;
            acc = sum.sub(8 * totals[b]).fma(d.mul(xScales[b]), acc);
        }
        acc.intoArray(out, outOffset);
    }

    /** As {@link #dot} for four tokens, each widened slice multiplied by the four tokens' x pairs: per token, dot's arithmetic. */
    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int[] pairs = xBlocks.pairs(), totals = xBlocks.int8Totals();
        float[] xScales = xBlocks.scales();
        long o = panelOffset;
        int p0 = x0 / 2, p1 = x1 / 2, p2 = x2 / 2, p3 = x3 / 2, b0 = x0 / BLOCK, b1 = x1 / BLOCK, b2 = x2 / BLOCK, b3 = x3 / BLOCK;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES, p0 += 16, p1 += 16, p2 += 16, p3 += 16, b0++, b1++, b2++, b3++) {
            ShortVector s0 = ShortVector.zero(S32), s1 = s0, s2 = s0, s3 = s0;
            for (int m = 0; m < 8; m++) {
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m, LE).convertShape(ZERO_EXTEND_B2S, S32, 0);
                ShortVector lo = q.and((short) 15), hi = q.lanewise(LSHR, 4);
                s0 = s0.add(lo.mul(IntVector.broadcast(I512, pairs[p0 + m]).reinterpretAsShorts()))
                        .add(hi.mul(IntVector.broadcast(I512, pairs[p0 + 8 + m]).reinterpretAsShorts()));
                s1 = s1.add(lo.mul(IntVector.broadcast(I512, pairs[p1 + m]).reinterpretAsShorts()))
                        .add(hi.mul(IntVector.broadcast(I512, pairs[p1 + 8 + m]).reinterpretAsShorts()));
                s2 = s2.add(lo.mul(IntVector.broadcast(I512, pairs[p2 + m]).reinterpretAsShorts()))
                        .add(hi.mul(IntVector.broadcast(I512, pairs[p2 + 8 + m]).reinterpretAsShorts()));
                s3 = s3.add(lo.mul(IntVector.broadcast(I512, pairs[p3 + m]).reinterpretAsShorts()))
                        .add(hi.mul(IntVector.broadcast(I512, pairs[p3 + 8 + m]).reinterpretAsShorts()));
            }
            IntVector bits = (IntVector) ShortVector.fromMemorySegment(S16, w, o, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0);
            IntVector abs = bits.and(0x7fff);
            IntVector mag = abs.lanewise(LSHL, 13).lanewise(VectorOperators.OR, 0x7f800000, abs.compare(VectorOperators.GE, 0x7c00));
            FloatVector d = mag.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts().or(bits.and(0x8000).lanewise(LSHL, 16)).reinterpretAsFloats();
            IntVector i0 = s0.reinterpretAsInts(), i1 = s1.reinterpretAsInts(), i2 = s2.reinterpretAsInts(), i3 = s3.reinterpretAsInts();
            a0 = ((FloatVector) i0.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i0.lanewise(ASHR, 16)).convert(I2F, 0))
                    .sub(8 * totals[b0]).fma(d.mul(xScales[b0]), a0);
            a1 = ((FloatVector) i1.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i1.lanewise(ASHR, 16)).convert(I2F, 0))
                    .sub(8 * totals[b1]).fma(d.mul(xScales[b1]), a1);
            a2 = ((FloatVector) i2.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i2.lanewise(ASHR, 16)).convert(I2F, 0))
                    .sub(8 * totals[b2]).fma(d.mul(xScales[b2]), a2);
            a3 = ((FloatVector) i3.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i3.lanewise(ASHR, 16)).convert(I2F, 0))
                    .sub(8 * totals[b3]).fma(d.mul(xScales[b3]), a3);
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
            float d = Float.float16ToFloat(w.get(I16, o + 2L * i));
            for (int j = 0; j < 16; j++) {
                int q = w.get(U8, o + QS + 32L * (j / 2) + 2 * i + (j & 1)) & 0xff;
                out[outOffset + kb + j] = ((q & 0x0f) - 8) * d;
                out[outOffset + kb + 16 + j] = ((q >> 4) - 8) * d;
            }
        }
    }
}
