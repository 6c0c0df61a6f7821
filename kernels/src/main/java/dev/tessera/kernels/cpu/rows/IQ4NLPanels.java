package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.IQ4NLRows.LEVELS;
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
import static jdk.incubator.vector.VectorOperators.XOR;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2S;

/**
 * IQ4_NL panels, {@link Q4_0Panels}' layout (an IQ4_NL block is a Q4_0 block whose nibbles index {@link IQ4NLRows#LEVELS}
 * instead of counting from -8): per 16-row panel and 32-column block, the 16 rows' f16 d, then 8 pair slices of 32
 * bytes where slice m holds, at byte 2i + p, qs[2m + p] of row i (low nibble column 2m + p, high nibble 16 + 2m + p).
 * The same 18 bytes per 32 values as GGUF.
 * <p>
 * The dots take x as int8 ({@link #needsInt8}, as llama.cpp's q8_0 activations for IQ4_NL). A pair slice widens into
 * 32 short lanes, its nibbles pick their levels with one 16-bit permute each ({@code selectFrom} on a 32-lane table),
 * and the levels multiply broadcast ints holding two columns' int8 x. A level reaches 127, so only a low-nibble and a
 * high-nibble product fit a 16-bit lane together (at most 2 * 127 * 127 = 32258); those go into an int per row and
 * block at once, as {@link Q8_0Panels} does with its two slices. The block's integer sum times d * x scale goes into
 * the running sum in {@link #dot} and {@link #dot4} alike, and the prefill GEMM ({@link IQ4Gemm}) forms the same
 * integer sums exactly in floats, so batching changes no bit. The row kernel (levels widened to floats, float x) made
 * a decode and, worse, a batch of two to sixteen tokens, which dequantizes every row, several times slower than Q4_0.
 * <p>
 * The dots call no helper of ours with vectors (see {@link Q4_0Panels}); the f16 conversions are spelled out.
 */
public final class IQ4NLPanels extends BlockPanels {
    static final PanelKernel INSTANCE = new IQ4NLPanels();
    static final int BLOCK_BYTES = 18;
    static final int PANEL_BLOCK_BYTES = ROWS * BLOCK_BYTES;
    static final int QS = 2 * ROWS;
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256, S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    /** The 16 levels as shorts, twice: the table of a 32-lane {@code selectFrom} with indices 0..15. */
    static final ShortVector TABLE;

    static {
        short[] table = new short[32];
        for (int i = 0; i < 32; i++) table[i] = LEVELS[i & 15];
        TABLE = ShortVector.fromArray(S32, table, 0);
    }

    private IQ4NLPanels() {
        super(BLOCK_BYTES);
    }

    @Override
    public MemorySegment repack(MemorySegment src, int rows, int cols, Arena arena) {
        return PanelRepack.scalesAndPairSlices(src, rows, cols, BLOCK_BYTES, arena);
    }

    @Override
    public IntegerGemm.Kernel integerGemm() {
        return IQ4Gemm.NL;
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0) {
        long o = panelOffset + (long) (k0 / BLOCK) * PANEL_BLOCK_BYTES;
        for (int kb = 0; kb < kn; kb += BLOCK, o += PANEL_BLOCK_BYTES)
            unpackLevels(w, o + QS, VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE)), packed, kb * stride + col0, stride);
    }

    /**
     * The 16 rows' 32 values of the block whose pair slices start at {@code qs}, scale * level, column-major into
     * {@code packed} from float index {@code at} (column c of the block at {@code at + c * stride}).
     */
    static void unpackLevels(MemorySegment w, long qs, FloatVector scale, MemorySegment packed, int at, int stride) {
        for (int m = 0, lo = at, hi = at + 16 * stride; m < 8; m++, lo += 2 * stride, hi += 2 * stride) {
            ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, qs + 32L * m, LE).convertShape(ZERO_EXTEND_B2S, S32, 0);
            IntVector low = q.and((short) 15).selectFrom(TABLE).reinterpretAsInts(), high = q.lanewise(LSHR, 4).selectFrom(TABLE).reinterpretAsInts();
            ((FloatVector) low.lanewise(LSHL, 16).lanewise(ASHR, 16).convert(I2F, 0)).mul(scale).intoMemorySegment(packed, 4L * lo, NATIVE);
            ((FloatVector) low.lanewise(ASHR, 16).convert(I2F, 0)).mul(scale).intoMemorySegment(packed, 4L * (lo + stride), NATIVE);
            ((FloatVector) high.lanewise(LSHL, 16).lanewise(ASHR, 16).convert(I2F, 0)).mul(scale).intoMemorySegment(packed, 4L * hi, NATIVE);
            ((FloatVector) high.lanewise(ASHR, 16).convert(I2F, 0)).mul(scale).intoMemorySegment(packed, 4L * (hi + stride), NATIVE);
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
            for (int m = 0; m < 8; m++) {
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m, LE).convertShape(ZERO_EXTEND_B2S, S32, 0);
                IntVector i = q.and((short) 15).selectFrom(TABLE).mul(IntVector.broadcast(I512, pairs[p + m]).reinterpretAsShorts())
                        .add(q.lanewise(LSHR, 4).selectFrom(TABLE).mul(IntVector.broadcast(I512, pairs[p + 8 + m]).reinterpretAsShorts()))
                        .reinterpretAsInts().lanewise(XOR, 0x8000);
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

    /** As {@link #dot} for four tokens, each slice's looked-up levels multiplied by the four tokens' x pairs. */
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
            for (int m = 0; m < 8; m++) {
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m, LE).convertShape(ZERO_EXTEND_B2S, S32, 0);
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
            for (int j = 0; j < 16; j++) {
                int q = w.get(U8, o + QS + 32L * (j / 2) + 2 * i + (j & 1)) & 0xff;
                out[outOffset + kb + j] = d * LEVELS[q & 15];
                out[outOffset + kb + 16 + j] = d * LEVELS[q >> 4];
            }
        }
    }
}
