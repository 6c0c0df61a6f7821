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
 * Q4_K and Q5_K panels: each block of 16 rows byte-transposed ({@link PanelRepack#transposeBlocks}), so slice j
 * holds byte j of the 16 rows: 0/1 and 2/3 are the f16 d and dmin, 4..15 the packed 6-bit scales and mins, then (Q5_K
 * only) 32 slices of qh, then 128 slices of qs. Slice qs[32c + l] widens into the 16 rows' values at columns 64c + l
 * (low nibbles) and 64c + 32 + l (high nibbles); Q5_K adds bit 2c (2c + 1) of qh[l] as the fifth bit.
 * <p>
 * A value is d*sc * q - dmin*m, so a 32-value sub-block's sum is d*sc * Σ q·x - dmin*m * Σ x: the min term takes
 * the block sums of x ({@link #needsBlockSums}), computed once per matmul and shared by all rows. Per token the
 * arithmetic is the same in {@link #dot}, {@link #dot4} and {@link #dot8}, so batching changes no result.
 */
public final class Q4KPanels implements PanelKernel {
    static final PanelKernel Q4_K = new Q4KPanels(false);
    static final PanelKernel Q5_K = new Q4KPanels(true);
    static final int BLOCK = 256;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;

    private final boolean fifthBit;
    private final int blockBytes;
    private final int panelBlockBytes;
    private final int qs;  // first qs slice
    private final RowKernel row;

    private Q4KPanels(boolean fifthBit) {
        this.fifthBit = fifthBit;
        TensorType type = fifthBit ? TensorType.Q5_K : TensorType.Q4_K;
        this.blockBytes = type.blockBytes;
        this.panelBlockBytes = ROWS * blockBytes;
        this.qs = fifthBit ? 48 : 16;
        this.row = RowKernels.forType(type);
    }

    @Override
    public boolean needsBlockSums() {
        return true;
    }

    @Override
    public long panelBytes(int cols) {
        return (long) (cols / BLOCK) * panelBlockBytes;
    }

    @Override
    public MemorySegment repack(MemorySegment src, int rows, int cols, Arena arena) {
        return PanelRepack.transposeBlocks(src, rows, cols, BLOCK, blockBytes, arena);
    }

    /** Slice j of the block at {@code o}, its 16 bytes zero-extended into int lanes. */
    private static IntVector slice(MemorySegment w, long o, int j) {
        return (IntVector) ByteVector.fromMemorySegment(B16, w, o + (long) j * ROWS, LE)
                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
    }

    private static FloatVector half(MemorySegment w, long o, int j) {
        return VectorLanes.halfBitsToFloat(slice(w, o, j).or(slice(w, o, j + 1).lanewise(VectorOperators.LSHL, 8)));
    }

    /** The 6-bit scale of sub-block j (0..7), as ggml's get_scale_min_k4 unpacks it, for the 16 rows. */
    private static FloatVector scale(MemorySegment w, long o, int j) {
        IntVector sc = j < 4 ? slice(w, o, 4 + j).and(63)
                : slice(w, o, 8 + j).and(15).or(slice(w, o, j).lanewise(VectorOperators.LSHR, 6).lanewise(VectorOperators.LSHL, 4));
        return (FloatVector) sc.convert(VectorOperators.I2F, 0);
    }

    /** The 6-bit min of sub-block j (0..7) for the 16 rows. */
    private static FloatVector min(MemorySegment w, long o, int j) {
        IntVector m = j < 4 ? slice(w, o, 8 + j).and(63)
                : slice(w, o, 8 + j).lanewise(VectorOperators.LSHR, 4).or(slice(w, o, 4 + j).lanewise(VectorOperators.LSHR, 6).lanewise(VectorOperators.LSHL, 4));
        return (FloatVector) m.convert(VectorOperators.I2F, 0);
    }

    /** Sub-block 2c (low nibbles) of slice qs[32c + l], with Q5_K's fifth bit from qh[l]. */
    private FloatVector low(MemorySegment w, long o, int c, int l, IntVector q) {
        IntVector v = q.and(15);
        if (fifthBit) v = v.or(slice(w, o, 16 + l).lanewise(VectorOperators.LSHR, 2 * c).and(1).lanewise(VectorOperators.LSHL, 4));
        return (FloatVector) v.convert(VectorOperators.I2F, 0);
    }

    /** Sub-block 2c + 1 (high nibbles) of slice qs[32c + l]. */
    private FloatVector high(MemorySegment w, long o, int c, int l, IntVector q) {
        IntVector v = q.lanewise(VectorOperators.LSHR, 4);
        if (fifthBit) v = v.or(slice(w, o, 16 + l).lanewise(VectorOperators.LSHR, 2 * c + 1).and(1).lanewise(VectorOperators.LSHL, 4));
        return (FloatVector) v.convert(VectorOperators.I2F, 0);
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, float[] packed, int stride, int col0) {
        for (int k = k0; k < k0 + kn; k += 32) {
            long o = panelOffset + (long) (k / BLOCK) * panelBlockBytes;
            int j = (k % BLOCK) / 32, c = j / 2;
            FloatVector d = half(w, o, 0).mul(scale(w, o, j)), m = half(w, o, 2).mul(min(w, o, j));
            int at = (k - k0) * stride + col0;
            for (int l = 0; l < 32; l++, at += stride) {
                IntVector q = slice(w, o, qs + 32 * c + l);
                FloatVector v = (j & 1) == 0 ? low(w, o, c, l, q) : high(w, o, c, l, q);
                // d*sc * q - dmin*m, unfused as in the row kernel, so the values are equal.
                d.mul(v).sub(m).intoArray(packed, at);
            }
        }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, float[] xSums, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += panelBlockBytes) {
            FloatVector d = half(w, o, 0), dmin = half(w, o, 2);
            for (int c = 0; c < 4; c++) {
                FloatVector s = FloatVector.zero(F), h = s;
                int xc = xb + 64 * c;
                for (int l = 0; l < 32; l++) {
                    IntVector q = slice(w, o, qs + 32 * c + l);
                    s = low(w, o, c, l, q).fma(FloatVector.broadcast(F, x[xc + l]), s);
                    h = high(w, o, c, l, q).fma(FloatVector.broadcast(F, x[xc + 32 + l]), h);
                }
                int sb = xc / 32;
                acc = s.fma(d.mul(scale(w, o, 2 * c)), acc);
                acc = h.fma(d.mul(scale(w, o, 2 * c + 1)), acc);
                acc = dmin.mul(min(w, o, 2 * c)).fma(FloatVector.broadcast(F, -xSums[sb]), acc);
                acc = dmin.mul(min(w, o, 2 * c + 1)).fma(FloatVector.broadcast(F, -xSums[sb + 1]), acc);
            }
        }
        acc.intoArray(out, outOffset);
    }

    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, float[] xSums,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += panelBlockBytes) {
            FloatVector d = half(w, o, 0), dmin = half(w, o, 2);
            for (int c = 0; c < 4; c++) {
                FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, h0 = s0, h1 = s0, h2 = s0, h3 = s0;
                int kc = kb + 64 * c;
                for (int l = 0; l < 32; l++) {
                    IntVector q = slice(w, o, qs + 32 * c + l);
                    FloatVector lo = low(w, o, c, l, q), hi = high(w, o, c, l, q);
                    int k = kc + l, m = k + 32;
                    s0 = lo.fma(FloatVector.broadcast(F, x[x0 + k]), s0); h0 = hi.fma(FloatVector.broadcast(F, x[x0 + m]), h0);
                    s1 = lo.fma(FloatVector.broadcast(F, x[x1 + k]), s1); h1 = hi.fma(FloatVector.broadcast(F, x[x1 + m]), h1);
                    s2 = lo.fma(FloatVector.broadcast(F, x[x2 + k]), s2); h2 = hi.fma(FloatVector.broadcast(F, x[x2 + m]), h2);
                    s3 = lo.fma(FloatVector.broadcast(F, x[x3 + k]), s3); h3 = hi.fma(FloatVector.broadcast(F, x[x3 + m]), h3);
                }
                FloatVector dl = d.mul(scale(w, o, 2 * c)), dh = d.mul(scale(w, o, 2 * c + 1));
                FloatVector ml = dmin.mul(min(w, o, 2 * c)), mh = dmin.mul(min(w, o, 2 * c + 1));
                int sb = kc / 32;
                a0 = blockSum(a0, s0, h0, dl, dh, ml, mh, xSums, x0 / 32 + sb);
                a1 = blockSum(a1, s1, h1, dl, dh, ml, mh, xSums, x1 / 32 + sb);
                a2 = blockSum(a2, s2, h2, dl, dh, ml, mh, xSums, x2 / 32 + sb);
                a3 = blockSum(a3, s3, h3, dl, dh, ml, mh, xSums, x3 / 32 + sb);
            }
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    /** One token's 64-column chunk added to {@code acc}, in {@link #dot}'s order. */
    private static FloatVector blockSum(FloatVector acc, FloatVector s, FloatVector h, FloatVector dl, FloatVector dh,
                                        FloatVector ml, FloatVector mh, float[] xSums, int sb) {
        acc = s.fma(dl, acc);
        acc = h.fma(dh, acc);
        acc = ml.fma(FloatVector.broadcast(F, -xSums[sb]), acc);
        return mh.fma(FloatVector.broadcast(F, -xSums[sb + 1]), acc);
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
        byte[] block = new byte[blockBytes];
        MemorySegment bytes = MemorySegment.ofArray(block);
        for (int kb = 0; kb < cols; kb += BLOCK) {
            PanelRepack.gatherRow(w, panelOffset + (long) (kb / BLOCK) * panelBlockBytes, i, block);
            row.dequantize(bytes, 0, out, outOffset + kb, BLOCK);
        }
    }
}
