package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.NE;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2S;

/**
 * block_q5_0 panels: per 16-row panel and 32-column block, 352 bytes (22 per row, as GGUF): the 16 rows' f16 d, then a plane of
 * fifth bits and the 8 pair slices of the low four bits ({@link PanelRepack#halvesFifthBitsAndPairSlices}).
 * <p>
 * The dots take x as int8 per block ({@link #needsInt8}). A value q = n + 16 h (n the nibble, h the fifth bit): Σ n·qx
 * is formed in 16-bit lanes as {@link Q4_0Panels} forms it, and 16 Σ qx over the values whose h is set with a masked
 * add of the broadcast x pair (an and and a compare of the plane give each slice's 32-lane mask), as {@link Q5KPanels} does. A value is d * (q - 16), so a block's dot is d * x scale * (Σq·qx - 16 Σqx). {@link #dot} and
 * {@link #dot4} do the same arithmetic per token, so batching changes no bit; with no integer GEMM a prefill takes the
 * batched dots. The dots call no helper of ours with vectors (see {@link Q4_0Panels}).
 */
public final class Q5_0Panels extends BlockPanels {
    static final PanelKernel INSTANCE = new Q5_0Panels();
    static final int BLOCK_BYTES = 22;
    static final int PANEL_BLOCK_BYTES = ROWS * BLOCK_BYTES;
    static final int D = 0, BITS = 2 * ROWS, QS = BITS + 64;
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256, S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;

    private Q5_0Panels() {
        super(BLOCK_BYTES);
    }

    @Override
    public MemorySegment repack(MemorySegment src, int rows, int cols, Arena arena) {
        return PanelRepack.halvesFifthBitsAndPairSlices(src, rows, cols, BLOCK_BYTES, 1, arena);
    }

    /** Scalar: with no integer GEMM and int8 dots for every batch, only tests and embedding-free callers read this. */
    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0) {
        float[] row = new float[kn];
        for (int i = 0; i < ROWS; i++) {
            dequantizeColumns(w, panelOffset + (long) (k0 / BLOCK) * PANEL_BLOCK_BYTES, i, kn, row);
            for (int k = 0; k < kn; k++) packed.setAtIndex(ValueLayout.JAVA_FLOAT, (long) k * stride + col0 + i, row[k]);
        }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        int[] pairs = xBlocks.pairs(), totals = xBlocks.int8Totals();
        float[] xScales = xBlocks.scales();
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            ShortVector s = ShortVector.zero(S32), h = s;
            int p = xb / 2;
            ShortVector plane = ShortVector.fromMemorySegment(S32, w, o + BITS, LE);
            for (int j = 0; j < 8; j++) {
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * j, LE).convertShape(ZERO_EXTEND_B2S, S32, 0);
                ShortVector xl = IntVector.broadcast(I512, pairs[p + j]).reinterpretAsShorts(), xh = IntVector.broadcast(I512, pairs[p + 8 + j]).reinterpretAsShorts();
                s = s.add(q.and((short) 15).mul(xl)).add(q.lanewise(LSHR, 4).mul(xh));
                h = h.add(xl, plane.and((short) (1 << j)).compare(NE, 0)).add(xh, plane.and((short) (0x100 << j)).compare(NE, 0));
            }
            // Row i's lanes added (each sign-extended, as VectorLanes.rowSums), the fifth bits' sum times 16.
            IntVector i = s.reinterpretAsInts(), k = h.reinterpretAsInts();
            IntVector total = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                    .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4));
            IntVector bits, abs, mag;
            bits = (IntVector) ShortVector.fromMemorySegment(S16, w, o + D, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0);
            abs = bits.and(0x7fff);
            mag = abs.lanewise(LSHL, 13).lanewise(VectorOperators.OR, 0x7f800000, abs.compare(VectorOperators.GE, 0x7c00));
            FloatVector d = mag.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts().or(bits.and(0x8000).lanewise(LSHL, 16)).reinterpretAsFloats();
            int b = xb / BLOCK;
            acc = ((FloatVector) total.convert(I2F, 0)).sub(16 * totals[b]).fma(d.mul(xScales[b]), acc);
        }
        acc.intoArray(out, outOffset);
    }

    /** As {@link #dot} for four tokens: each widened slice and its two masks serve the four tokens, with dot's arithmetic per token. */
    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int[] pairs = xBlocks.pairs(), totals = xBlocks.int8Totals();
        float[] xScales = xBlocks.scales();
        long o = panelOffset;
        int p0 = x0 / 2, p1 = x1 / 2, p2 = x2 / 2, p3 = x3 / 2, b0 = x0 / BLOCK, b1 = x1 / BLOCK, b2 = x2 / BLOCK, b3 = x3 / BLOCK;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES, p0 += 16, p1 += 16, p2 += 16, p3 += 16, b0++, b1++, b2++, b3++) {
            ShortVector s0 = ShortVector.zero(S32), s1 = s0, s2 = s0, s3 = s0, h0 = s0, h1 = s0, h2 = s0, h3 = s0;
            ShortVector plane = ShortVector.fromMemorySegment(S32, w, o + BITS, LE);
            for (int j = 0; j < 8; j++) {
                VectorMask<Short> low = plane.and((short) (1 << j)).compare(NE, 0), high = plane.and((short) (0x100 << j)).compare(NE, 0);
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * j, LE).convertShape(ZERO_EXTEND_B2S, S32, 0);
                ShortVector lo = q.and((short) 15), hi = q.lanewise(LSHR, 4);
                ShortVector xl0 = IntVector.broadcast(I512, pairs[p0 + j]).reinterpretAsShorts(), xh0 = IntVector.broadcast(I512, pairs[p0 + 8 + j]).reinterpretAsShorts();
                s0 = s0.add(lo.mul(xl0)).add(hi.mul(xh0));
                h0 = h0.add(xl0, low).add(xh0, high);
                ShortVector xl1 = IntVector.broadcast(I512, pairs[p1 + j]).reinterpretAsShorts(), xh1 = IntVector.broadcast(I512, pairs[p1 + 8 + j]).reinterpretAsShorts();
                s1 = s1.add(lo.mul(xl1)).add(hi.mul(xh1));
                h1 = h1.add(xl1, low).add(xh1, high);
                ShortVector xl2 = IntVector.broadcast(I512, pairs[p2 + j]).reinterpretAsShorts(), xh2 = IntVector.broadcast(I512, pairs[p2 + 8 + j]).reinterpretAsShorts();
                s2 = s2.add(lo.mul(xl2)).add(hi.mul(xh2));
                h2 = h2.add(xl2, low).add(xh2, high);
                ShortVector xl3 = IntVector.broadcast(I512, pairs[p3 + j]).reinterpretAsShorts(), xh3 = IntVector.broadcast(I512, pairs[p3 + 8 + j]).reinterpretAsShorts();
                s3 = s3.add(lo.mul(xl3)).add(hi.mul(xh3));
                h3 = h3.add(xl3, low).add(xh3, high);
            }
            IntVector bits, abs, mag;
            bits = (IntVector) ShortVector.fromMemorySegment(S16, w, o + D, LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0);
            abs = bits.and(0x7fff);
            mag = abs.lanewise(LSHL, 13).lanewise(VectorOperators.OR, 0x7f800000, abs.compare(VectorOperators.GE, 0x7c00));
            FloatVector d = mag.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts().or(bits.and(0x8000).lanewise(LSHL, 16)).reinterpretAsFloats();
            IntVector i0 = s0.reinterpretAsInts(), k0 = h0.reinterpretAsInts();
            IntVector t0 = i0.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i0.lanewise(ASHR, 16))
                    .add(k0.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k0.lanewise(ASHR, 16)).lanewise(LSHL, 4));
            a0 = ((FloatVector) t0.convert(I2F, 0)).sub(16 * totals[b0]).fma(d.mul(xScales[b0]), a0);
            IntVector i1 = s1.reinterpretAsInts(), k1 = h1.reinterpretAsInts();
            IntVector t1 = i1.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i1.lanewise(ASHR, 16))
                    .add(k1.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k1.lanewise(ASHR, 16)).lanewise(LSHL, 4));
            a1 = ((FloatVector) t1.convert(I2F, 0)).sub(16 * totals[b1]).fma(d.mul(xScales[b1]), a1);
            IntVector i2 = s2.reinterpretAsInts(), k2 = h2.reinterpretAsInts();
            IntVector t2 = i2.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i2.lanewise(ASHR, 16))
                    .add(k2.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k2.lanewise(ASHR, 16)).lanewise(LSHL, 4));
            a2 = ((FloatVector) t2.convert(I2F, 0)).sub(16 * totals[b2]).fma(d.mul(xScales[b2]), a2);
            IntVector i3 = s3.reinterpretAsInts(), k3 = h3.reinterpretAsInts();
            IntVector t3 = i3.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i3.lanewise(ASHR, 16))
                    .add(k3.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k3.lanewise(ASHR, 16)).lanewise(LSHL, 4));
            a3 = ((FloatVector) t3.convert(I2F, 0)).sub(16 * totals[b3]).fma(d.mul(xScales[b3]), a3);
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    @Override
    public void dequantizeRow(MemorySegment w, long panelOffset, int i, int cols, float[] out, int outOffset) {
        float[] row = new float[cols];
        dequantizeColumns(w, panelOffset, i, cols, row);
        System.arraycopy(row, 0, out, outOffset, cols);
    }

    /** Row i's first n values from the panel block at {@code o} on, as the row kernel computes them. */
    private static void dequantizeColumns(MemorySegment w, long o, int i, int n, float[] out) {
        for (int kb = 0; kb < n; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, o + D + 2L * i));
            for (int j = 0; j < 16; j++) {
                int q = w.get(U8, o + QS + 32L * (j / 2) + 2 * i + (j & 1)) & 0xff;
                int lane = 2 * i + (j & 1), plane = w.get(I16, o + BITS + 2L * lane);
                int lo = (q & 15) | (plane >> j / 2 & 1) << 4, hi = (q >> 4) | (plane >> 8 + j / 2 & 1) << 4;
                out[kb + j] = (lo - 16) * d;
                out[kb + 16 + j] = (hi - 16) * d;
            }
        }
    }
}
