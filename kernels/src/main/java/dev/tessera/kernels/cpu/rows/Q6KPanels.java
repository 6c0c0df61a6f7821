package dev.tessera.kernels.cpu.rows;

import dev.tessera.kernels.TensorType;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;

/**
 * Q6_K panels: each 210-byte block of 16 rows byte-transposed ({@link PanelRepack#transposeBlocks}), 3360 bytes per
 * panel and 256 columns. Slice j holds byte j of the 16 rows, so with {@link Q6KRows}' names: slices 64h + l and
 * 64h + 32 + l are ql, 128 + 32h + l is qh, 192 + i the int8 scales and 208/209 the f16 d's low and high bytes. One
 * (ql, ql + 32, qh) triple of slices widens into the 16 rows' values at columns l, l + 32, l + 64, l + 96 of half h.
 * <p>
 * A token's sum runs over each 16-value scale group as k = 0, 2, 1, 3 (the order {@link #dot4} can afford with
 * eight accumulators), in {@link #dot}, {@link #dot4} and {@link #dot8} alike, so batching changes no result.
 */
public final class Q6KPanels implements PanelKernel {
    static final PanelKernel INSTANCE = new Q6KPanels();
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 210;
    static final int PANEL_BLOCK_BYTES = ROWS * BLOCK_BYTES;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final RowKernel ROW = RowKernels.forType(TensorType.Q6_K);

    private Q6KPanels() {}

    @Override
    public long panelBytes(int cols) {
        return (long) (cols / BLOCK) * PANEL_BLOCK_BYTES;
    }

    @Override
    public MemorySegment repack(MemorySegment src, int rows, int cols, Arena arena) {
        return PanelRepack.transposeBlocks(src, rows, cols, BLOCK, BLOCK_BYTES, arena);
    }

    /** Slice j of the block at {@code o}, its 16 bytes zero-extended into int lanes. */
    private static IntVector slice(MemorySegment w, long o, int j) {
        return (IntVector) ByteVector.fromMemorySegment(B16, w, o + (long) j * ROWS, LE)
                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
    }

    /** The signed scale of 16-value group {@code i} (0..15) for the 16 rows. */
    private static FloatVector scale(MemorySegment w, long o, int i) {
        return (FloatVector) ByteVector.fromMemorySegment(B16, w, o + (long) (192 + i) * ROWS, LE).convertShape(VectorOperators.B2F, F, 0);
    }

    private static FloatVector d(MemorySegment w, long o) {
        return VectorLanes.halfBitsToFloat(slice(w, o, 208).or(slice(w, o, 209).lanewise(VectorOperators.LSHL, 8)));
    }

    // The four 6-bit values of one (ql, ql + 32, qh) triple, minus 32, as floats: k = 0..3 is column l + 32k.
    private static FloatVector q0(IntVector a, IntVector hb) {
        return (FloatVector) a.and(15).or(hb.and(3).lanewise(VectorOperators.LSHL, 4)).sub(32).convert(VectorOperators.I2F, 0);
    }

    private static FloatVector q1(IntVector b, IntVector hb) {
        return (FloatVector) b.and(15).or(hb.and(12).lanewise(VectorOperators.LSHL, 2)).sub(32).convert(VectorOperators.I2F, 0);
    }

    private static FloatVector q2(IntVector a, IntVector hb) {
        return (FloatVector) a.lanewise(VectorOperators.LSHR, 4).or(hb.and(48)).sub(32).convert(VectorOperators.I2F, 0);
    }

    private static FloatVector q3(IntVector b, IntVector hb) {
        return (FloatVector) b.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 2).and(48)).sub(32).convert(VectorOperators.I2F, 0);
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, float[] packed, int stride, int col0) {
        for (int k = k0; k < k0 + kn; k += 32) {
            long o = panelOffset + (long) (k / BLOCK) * PANEL_BLOCK_BYTES;
            int g = (k % BLOCK) / 32, h = g / 4, part = g % 4;  // column 128h + 32 * part + l
            FloatVector d = d(w, o);
            FloatVector sc0 = d.mul(scale(w, o, 8 * h + 2 * part)), sc1 = d.mul(scale(w, o, 8 * h + 2 * part + 1));
            int at = (k - k0) * stride + col0;
            for (int l = 0; l < 32; l++, at += stride) {
                IntVector q = slice(w, o, 64 * h + l + (part & 1) * 32), hb = slice(w, o, 128 + 32 * h + l);
                FloatVector v = switch (part) {
                    case 0 -> q0(q, hb);
                    case 1 -> q1(q, hb);
                    case 2 -> q2(q, hb);
                    default -> q3(q, hb);
                };
                // (d * scale) * q, the row kernel's order, so the values are equal.
                (l < 16 ? sc0 : sc1).mul(v).intoArray(packed, at);
            }
        }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, float[] xSums, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector blockSum = FloatVector.zero(F);
            for (int h = 0; h < 2; h++)
                for (int g = 0; g < 2; g++) {
                    FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
                    int xl = xb + 128 * h + 16 * g;
                    for (int l = 16 * g; l < 16 * g + 16; l++, xl++) {
                        IntVector a = slice(w, o, 64 * h + l), b = slice(w, o, 64 * h + 32 + l), hb = slice(w, o, 128 + 32 * h + l);
                        s0 = q0(a, hb).fma(FloatVector.broadcast(F, x[xl]), s0);
                        s1 = q1(b, hb).fma(FloatVector.broadcast(F, x[xl + 32]), s1);
                        s2 = q2(a, hb).fma(FloatVector.broadcast(F, x[xl + 64]), s2);
                        s3 = q3(b, hb).fma(FloatVector.broadcast(F, x[xl + 96]), s3);
                    }
                    int i = 8 * h + g;
                    blockSum = s0.fma(scale(w, o, i), blockSum);
                    blockSum = s2.fma(scale(w, o, i + 4), blockSum);
                    blockSum = s1.fma(scale(w, o, i + 2), blockSum);
                    blockSum = s3.fma(scale(w, o, i + 6), blockSum);
                }
            acc = blockSum.fma(d(w, o), acc);
        }
        acc.intoArray(out, outOffset);
    }

    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, float[] xSums,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector b0 = FloatVector.zero(F), b1 = b0, b2 = b0, b3 = b0;
            for (int h = 0; h < 2; h++)
                for (int g = 0; g < 2; g++)
                    for (int pair = 0; pair < 2; pair++) {
                        // pair 0: k = 0 and 2 from ql[l]; pair 1: k = 1 and 3 from ql[l + 32].
                        FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
                        int k = kb + 128 * h + 16 * g + 32 * pair;
                        for (int l = 16 * g; l < 16 * g + 16; l++, k++) {
                            IntVector q = slice(w, o, 64 * h + 32 * pair + l), hb = slice(w, o, 128 + 32 * h + l);
                            FloatVector lo = pair == 0 ? q0(q, hb) : q1(q, hb), hi = pair == 0 ? q2(q, hb) : q3(q, hb);
                            s0 = lo.fma(FloatVector.broadcast(F, x[x0 + k]), s0); t0 = hi.fma(FloatVector.broadcast(F, x[x0 + k + 64]), t0);
                            s1 = lo.fma(FloatVector.broadcast(F, x[x1 + k]), s1); t1 = hi.fma(FloatVector.broadcast(F, x[x1 + k + 64]), t1);
                            s2 = lo.fma(FloatVector.broadcast(F, x[x2 + k]), s2); t2 = hi.fma(FloatVector.broadcast(F, x[x2 + k + 64]), t2);
                            s3 = lo.fma(FloatVector.broadcast(F, x[x3 + k]), s3); t3 = hi.fma(FloatVector.broadcast(F, x[x3 + k + 64]), t3);
                        }
                        int i = 8 * h + g + 2 * pair;
                        FloatVector sl = scale(w, o, i), sh = scale(w, o, i + 4);
                        b0 = t0.fma(sh, s0.fma(sl, b0)); b1 = t1.fma(sh, s1.fma(sl, b1));
                        b2 = t2.fma(sh, s2.fma(sl, b2)); b3 = t3.fma(sh, s3.fma(sl, b3));
                    }
            FloatVector d = d(w, o);
            a0 = b0.fma(d, a0); a1 = b1.fma(d, a1); a2 = b2.fma(d, a2); a3 = b3.fma(d, a3);
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    /** Two passes of {@link #dot4}: eight tokens' sums would not fit the registers next to the decode. */
    @Override
    public void dot8(MemorySegment w, long panelOffset, int cols, float[] x, int[] xs, float[] xSums, int numTokens, float[] out,
                     int o0, int outWidth, float[] acc) {
        dot4(w, panelOffset, cols, x, xs[0], xs[1], xs[2], xs[3], xSums, Math.min(numTokens, 4), out, o0, outWidth);
        if (numTokens > 4)
            dot4(w, panelOffset, cols, x, xs[4], xs[5], xs[6], xs[7], xSums, numTokens - 4, out, o0 + 4 * outWidth, outWidth);
    }

    @Override
    public void dequantizeRow(MemorySegment w, long panelOffset, int i, int cols, float[] out, int outOffset) {
        byte[] block = new byte[BLOCK_BYTES];
        MemorySegment row = MemorySegment.ofArray(block);
        for (int kb = 0; kb < cols; kb += BLOCK) {
            PanelRepack.gatherRow(w, panelOffset + (long) (kb / BLOCK) * PANEL_BLOCK_BYTES, i, block);
            ROW.dequantize(row, 0, out, outOffset + kb, BLOCK);
        }
    }
}
