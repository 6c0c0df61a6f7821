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
import static jdk.incubator.vector.VectorOperators.XOR;

/**
 * Q8_0 panels: per 16-row panel and 32-column block, 544 bytes: the 16 rows' f16 scales, then 16 pair slices of 32
 * bytes where slice m holds, at byte 2i + p, qs[2m + p] of row i (34 bytes per 32 values, as in GGUF).
 * <p>
 * The dots take x as int8 per block ({@link #needsInt8}, as llama.cpp's q8_0 activations). A pair slice widens into 32
 * short lanes (row i, column parity p) and multiplies a broadcast int holding two columns' int8 x; two slices' products
 * are added in 16-bit lanes (at most 2 * 128 * 127 = 32512), then each row's two lanes into an int sum of the block:
 * an xor with 0x8000 makes the low lane offset-binary (non-negative), so the ints summed whole minus their summed
 * arithmetic-shifted high lanes, shifted back, give the low lanes' total (four operations per int where sign-extending
 * both lanes took five: 30.7 → 32.7 GMAC/s at one token, 37.2 → 38.5 at four, 2048×2048, one thread).
 * The sum as a float times d * x scale goes into the running sum, in {@link #dot}, {@link #dot4} and the prefill GEMM
 * ({@link Q8_0Gemm}, which forms the same integer sums exactly in floats) alike, so batching changes no bit. Widening
 * every byte to a float for an FMA with x as floats ran at 20 GMAC/s per thread (2048×2048, one token,
 * cache-resident, Zen 4), this at 31. No helper of ours is called with a vector in the dots: C2 may decline to inline
 * one in a long method, and it then boxes its vectors.
 */
public final class Q8_0Panels extends BlockPanels {
    static final PanelKernel INSTANCE = new Q8_0Panels();
    static final int BLOCK_BYTES = 34;
    static final int PANEL_BLOCK_BYTES = ROWS * BLOCK_BYTES;
    static final int QS = 2 * ROWS;
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256, S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;

    private Q8_0Panels() {
        super(BLOCK_BYTES);
    }

    @Override
    public MemorySegment repack(MemorySegment src, int rows, int cols, Arena arena) {
        return PanelRepack.scalesAndPairSlices(src, rows, cols, BLOCK_BYTES, arena);
    }

    @Override
    public IntegerGemm.Kernel integerGemm() {
        return Q8_0Gemm.INSTANCE;
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0) {
        long o = panelOffset + (long) (k0 / BLOCK) * PANEL_BLOCK_BYTES;
        for (int kb = 0; kb < kn; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE));
            for (int m = 0, at = kb * stride + col0; m < 16; m++, at += 2 * stride) {
                IntVector q = ((ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m, LE).convertShape(VectorOperators.B2S, S32, 0))
                        .reinterpretAsInts();
                ((FloatVector) q.lanewise(LSHL, 16).lanewise(ASHR, 16).convert(I2F, 0)).mul(d).intoMemorySegment(packed, 4L * at, NATIVE);
                ((FloatVector) q.lanewise(ASHR, 16).convert(I2F, 0)).mul(d).intoMemorySegment(packed, 4L * (at + stride), NATIVE);
            }
        }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        int[] pairs = xBlocks.pairs();
        float[] xScales = xBlocks.scales();
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            IntVector all = IntVector.zero(I512), high = all;
            int p = xb / 2;
            for (int m = 0; m < 16; m += 2) {
                ShortVector a = ((ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m, LE).convertShape(VectorOperators.B2S, S32, 0))
                        .mul(IntVector.broadcast(I512, pairs[p + m]).reinterpretAsShorts());
                ShortVector b = ((ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m + 32, LE).convertShape(VectorOperators.B2S, S32, 0))
                        .mul(IntVector.broadcast(I512, pairs[p + m + 1]).reinterpretAsShorts());
                IntVector i = a.add(b).reinterpretAsInts().lanewise(XOR, 0x8000);
                all = all.add(i);
                high = high.add(i.lanewise(ASHR, 16));
            }
            IntVector t = all.sub(high.lanewise(LSHL, 16)).add(high).sub(8 * 0x8000);
            IntVector bits = (IntVector) ShortVector.fromMemorySegment(S16, w, o, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0);
            IntVector abs = bits.and(0x7fff);
            IntVector mag = abs.lanewise(LSHL, 13).lanewise(VectorOperators.OR, 0x7f800000, abs.compare(VectorOperators.GE, 0x7c00));
            FloatVector d = mag.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts().or(bits.and(0x8000).lanewise(LSHL, 16)).reinterpretAsFloats();
            acc = ((FloatVector) t.convert(I2F, 0)).fma(d.mul(xScales[xb / BLOCK]), acc);
        }
        acc.intoArray(out, outOffset);
    }

    /** As {@link #dot} for four tokens, each widened slice pair multiplied by the four tokens' x pairs: per token, dot's arithmetic. */
    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int[] pairs = xBlocks.pairs();
        float[] xScales = xBlocks.scales();
        long o = panelOffset;
        int p0 = x0 / 2, p1 = x1 / 2, p2 = x2 / 2, p3 = x3 / 2, b0 = x0 / BLOCK, b1 = x1 / BLOCK, b2 = x2 / BLOCK, b3 = x3 / BLOCK;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES, p0 += 16, p1 += 16, p2 += 16, p3 += 16, b0++, b1++, b2++, b3++) {
            IntVector all0 = IntVector.zero(I512), all1 = all0, all2 = all0, all3 = all0, high0 = all0, high1 = all0, high2 = all0, high3 = all0;
            for (int m = 0; m < 16; m += 2) {
                ShortVector qa = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m, LE).convertShape(VectorOperators.B2S, S32, 0);
                ShortVector qb = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m + 32, LE).convertShape(VectorOperators.B2S, S32, 0);
                IntVector i = qa.mul(IntVector.broadcast(I512, pairs[p0 + m]).reinterpretAsShorts())
                        .add(qb.mul(IntVector.broadcast(I512, pairs[p0 + m + 1]).reinterpretAsShorts())).reinterpretAsInts().lanewise(XOR, 0x8000);
                all0 = all0.add(i);
                high0 = high0.add(i.lanewise(ASHR, 16));
                i = qa.mul(IntVector.broadcast(I512, pairs[p1 + m]).reinterpretAsShorts())
                        .add(qb.mul(IntVector.broadcast(I512, pairs[p1 + m + 1]).reinterpretAsShorts())).reinterpretAsInts().lanewise(XOR, 0x8000);
                all1 = all1.add(i);
                high1 = high1.add(i.lanewise(ASHR, 16));
                i = qa.mul(IntVector.broadcast(I512, pairs[p2 + m]).reinterpretAsShorts())
                        .add(qb.mul(IntVector.broadcast(I512, pairs[p2 + m + 1]).reinterpretAsShorts())).reinterpretAsInts().lanewise(XOR, 0x8000);
                all2 = all2.add(i);
                high2 = high2.add(i.lanewise(ASHR, 16));
                i = qa.mul(IntVector.broadcast(I512, pairs[p3 + m]).reinterpretAsShorts())
                        .add(qb.mul(IntVector.broadcast(I512, pairs[p3 + m + 1]).reinterpretAsShorts())).reinterpretAsInts().lanewise(XOR, 0x8000);
                all3 = all3.add(i);
                high3 = high3.add(i.lanewise(ASHR, 16));
            }
            IntVector bits = (IntVector) ShortVector.fromMemorySegment(S16, w, o, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0);
            IntVector abs = bits.and(0x7fff);
            IntVector mag = abs.lanewise(LSHL, 13).lanewise(VectorOperators.OR, 0x7f800000, abs.compare(VectorOperators.GE, 0x7c00));
            FloatVector d = mag.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts().or(bits.and(0x8000).lanewise(LSHL, 16)).reinterpretAsFloats();
            a0 = ((FloatVector) all0.sub(high0.lanewise(LSHL, 16)).add(high0).sub(8 * 0x8000).convert(I2F, 0)).fma(d.mul(xScales[b0]), a0);
            a1 = ((FloatVector) all1.sub(high1.lanewise(LSHL, 16)).add(high1).sub(8 * 0x8000).convert(I2F, 0)).fma(d.mul(xScales[b1]), a1);
            a2 = ((FloatVector) all2.sub(high2.lanewise(LSHL, 16)).add(high2).sub(8 * 0x8000).convert(I2F, 0)).fma(d.mul(xScales[b2]), a2);
            a3 = ((FloatVector) all3.sub(high3.lanewise(LSHL, 16)).add(high3).sub(8 * 0x8000).convert(I2F, 0)).fma(d.mul(xScales[b3]), a3);
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
            for (int j = 0; j < BLOCK; j++) out[outOffset + kb + j] = w.get(U8, o + QS + 32L * (j / 2) + 2 * i + (j & 1)) * d;
        }
    }
}
