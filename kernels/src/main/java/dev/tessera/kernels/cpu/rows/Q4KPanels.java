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
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * Q4_K panels: each 144-byte block of 16 rows byte-transposed ({@link PanelRepack#transposeBlocks}), so slice j
 * holds byte j of the 16 rows: 0/1 and 2/3 are the f16 d and dmin, 4..15 the packed 6-bit scales and mins, 16..143
 * qs. Slice qs[32c + l] widens into the 16 rows' values at columns 64c + l (low nibbles) and 64c + 32 + l (high
 * nibbles).
 * <p>
 * A value is d*sc * q - dmin*m, so a 32-value sub-block's sum is d*sc * Σ q·x - dmin*m * Σ x: the min term takes
 * the block sums of x ({@link #needsBlockSums}), computed once per matmul and shared by all rows. Per token the
 * arithmetic is the same in {@link #dot}, {@link #dot4} and {@link #dot8}, so batching changes no result.
 */
public final class Q4KPanels implements PanelKernel {
    static final PanelKernel INSTANCE = new Q4KPanels();
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 144;
    static final int PANEL_BLOCK_BYTES = ROWS * BLOCK_BYTES;
    private static final int QS = 16;  // first qs slice
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    /** Per thread: one block's decoded d*sc and dmin*m, [2][8 sub-blocks][16 rows], then d and dmin [2][16 rows]. */
    private static final ThreadLocal<float[]> SCALES = ThreadLocal.withInitial(() -> new float[256 + 2 * ROWS]);

    private static final RowKernel ROW = RowKernels.forType(TensorType.Q4_K);

    private Q4KPanels() {}

    @Override
    public boolean needsBlockSums() {
        return true;
    }

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

    /**
     * Writes d*sc (at 16j) and dmin*m (at 128 + 16j) of sub-blocks j = 0..7 for the 16 rows into {@code scales}.
     * A separate method that returns no vector: inlined into the dots, this decode pushed C2 past its node budget
     * (NodeCountInliningCutoff), and the vectors of the hot loop were then boxed (1.2 GMAC/s instead of tens).
     */
    private static void decodeScales(MemorySegment w, long o, float[] scales) {
        // d and dmin first go through the scratch as scalars: the vector f16 decode costs C2 more nodes than it saves.
        for (int i = 0; i < ROWS; i++) {
            scales[256 + i] = Float.float16ToFloat((short) ((w.get(U8, o + i) & 0xff) | w.get(U8, o + ROWS + i) << 8));
            scales[256 + ROWS + i] = Float.float16ToFloat((short) ((w.get(U8, o + 2 * ROWS + i) & 0xff) | w.get(U8, o + 3 * ROWS + i) << 8));
        }
        FloatVector d = FloatVector.fromArray(F, scales, 256), dmin = FloatVector.fromArray(F, scales, 256 + ROWS);
        for (int j = 0; j < 4; j++) {
            IntVector lowBits = slice(w, o, 4 + j), minBits = slice(w, o, 8 + j), highBits = slice(w, o, 12 + j);
            // ggml's get_scale_min_k4: bytes 0..3 and 4..7 hold the 6-bit scales and mins of sub-blocks 0..3; sub-block
            // 4 + j takes its low four bits from byte 8 + j and its top two from the spare bits of bytes j and 4 + j.
            d.mul((FloatVector) lowBits.and(63).convert(VectorOperators.I2F, 0)).intoArray(scales, 16 * j);
            dmin.mul((FloatVector) minBits.and(63).convert(VectorOperators.I2F, 0)).intoArray(scales, 128 + 16 * j);
            IntVector sc = highBits.and(15).or(lowBits.lanewise(VectorOperators.LSHR, 6).lanewise(VectorOperators.LSHL, 4));
            IntVector m = highBits.lanewise(VectorOperators.LSHR, 4).or(minBits.lanewise(VectorOperators.LSHR, 6).lanewise(VectorOperators.LSHL, 4));
            d.mul((FloatVector) sc.convert(VectorOperators.I2F, 0)).intoArray(scales, 16 * (4 + j));
            dmin.mul((FloatVector) m.convert(VectorOperators.I2F, 0)).intoArray(scales, 128 + 16 * (4 + j));
        }
    }

    /** Sub-block 2c's values (the low nibbles of slice qs[32c + l]) as floats. */
    private static FloatVector low(IntVector q) {
        return (FloatVector) q.and(15).convert(VectorOperators.I2F, 0);
    }

    /** Sub-block 2c + 1's values (the high nibbles) as floats. */
    private static FloatVector high(IntVector q) {
        return (FloatVector) q.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0);
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, float[] packed, int stride, int col0) {
        float[] scales = SCALES.get();
        for (int k = k0; k < k0 + kn; k += 32) {
            long o = panelOffset + (long) (k / BLOCK) * PANEL_BLOCK_BYTES;
            int j = (k % BLOCK) / 32, c = j / 2;
            if (k == k0 || j == 0) decodeScales(w, o, scales);  // once per block, not per 32 columns
            FloatVector d = FloatVector.fromArray(F, scales, 16 * j), m = FloatVector.fromArray(F, scales, 128 + 16 * j);
            int at = (k - k0) * stride + col0;
            for (int l = 0; l < 32; l++, at += stride) {
                IntVector q = slice(w, o, QS + 32 * c + l);
                FloatVector v = (j & 1) == 0 ? low(q) : high(q);
                // d*sc * q - dmin*m, unfused as in the row kernel, so the values are equal.
                d.mul(v).sub(m).intoArray(packed, at);
            }
        }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, float[] xSums, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        float[] scales = SCALES.get();
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            decodeScales(w, o, scales);
            for (int c = 0; c < 4; c++) {
                FloatVector s = FloatVector.zero(F), h = s;
                int xc = xb + 64 * c;
                for (int l = 0; l < 32; l++) {
                    IntVector q = slice(w, o, QS + 32 * c + l);
                    s = low(q).fma(FloatVector.broadcast(F, x[xc + l]), s);
                    h = high(q).fma(FloatVector.broadcast(F, x[xc + 32 + l]), h);
                }
                acc = chunkSum(acc, s, h, scales, c, xSums, xc / 32);
            }
        }
        acc.intoArray(out, outOffset);
    }

    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, float[] xSums,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        float[] scales = SCALES.get();
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            decodeScales(w, o, scales);
            for (int c = 0; c < 4; c++) {
                FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, h0 = s0, h1 = s0, h2 = s0, h3 = s0;
                int kc = kb + 64 * c;
                for (int l = 0; l < 32; l++) {
                    IntVector q = slice(w, o, QS + 32 * c + l);
                    FloatVector lo = low(q), hi = high(q);
                    int k = kc + l, m = k + 32;
                    s0 = lo.fma(FloatVector.broadcast(F, x[x0 + k]), s0); h0 = hi.fma(FloatVector.broadcast(F, x[x0 + m]), h0);
                    s1 = lo.fma(FloatVector.broadcast(F, x[x1 + k]), s1); h1 = hi.fma(FloatVector.broadcast(F, x[x1 + m]), h1);
                    s2 = lo.fma(FloatVector.broadcast(F, x[x2 + k]), s2); h2 = hi.fma(FloatVector.broadcast(F, x[x2 + m]), h2);
                    s3 = lo.fma(FloatVector.broadcast(F, x[x3 + k]), s3); h3 = hi.fma(FloatVector.broadcast(F, x[x3 + m]), h3);
                }
                // d*sc and dmin*m of sub-blocks 2c and 2c + 1, loaded once for the four tokens; per token the order is dot's.
                FloatVector dl = FloatVector.fromArray(F, scales, 32 * c), dh = FloatVector.fromArray(F, scales, 32 * c + 16);
                FloatVector ml = FloatVector.fromArray(F, scales, 128 + 32 * c), mh = FloatVector.fromArray(F, scales, 128 + 32 * c + 16);
                int b0 = x0 / 32 + kc / 32, b1 = x1 / 32 + kc / 32, b2 = x2 / 32 + kc / 32, b3 = x3 / 32 + kc / 32;
                a0 = mh.fma(FloatVector.broadcast(F, -xSums[b0 + 1]), ml.fma(FloatVector.broadcast(F, -xSums[b0]), h0.fma(dh, s0.fma(dl, a0))));
                a1 = mh.fma(FloatVector.broadcast(F, -xSums[b1 + 1]), ml.fma(FloatVector.broadcast(F, -xSums[b1]), h1.fma(dh, s1.fma(dl, a1))));
                a2 = mh.fma(FloatVector.broadcast(F, -xSums[b2 + 1]), ml.fma(FloatVector.broadcast(F, -xSums[b2]), h2.fma(dh, s2.fma(dl, a2))));
                a3 = mh.fma(FloatVector.broadcast(F, -xSums[b3 + 1]), ml.fma(FloatVector.broadcast(F, -xSums[b3]), h3.fma(dh, s3.fma(dl, a3))));
            }
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    /**
     * One token's 64-column chunk c added to {@code acc}: its sums of q·x over sub-blocks 2c and 2c + 1 ({@code s},
     * {@code h}) times d*sc, minus dmin*m times the sums of x at {@code xSums[sb]} and {@code xSums[sb + 1]}.
     */
    private static FloatVector chunkSum(FloatVector acc, FloatVector s, FloatVector h, float[] scales, int c, float[] xSums, int sb) {
        acc = s.fma(FloatVector.fromArray(F, scales, 32 * c), acc);
        acc = h.fma(FloatVector.fromArray(F, scales, 32 * c + 16), acc);
        acc = FloatVector.fromArray(F, scales, 128 + 32 * c).fma(FloatVector.broadcast(F, -xSums[sb]), acc);
        return FloatVector.fromArray(F, scales, 128 + 32 * c + 16).fma(FloatVector.broadcast(F, -xSums[sb + 1]), acc);
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
        MemorySegment bytes = MemorySegment.ofArray(block);
        for (int kb = 0; kb < cols; kb += BLOCK) {
            PanelRepack.gatherRow(w, panelOffset + (long) (kb / BLOCK) * PANEL_BLOCK_BYTES, i, block);
            ROW.dequantize(bytes, 0, out, outOffset + kb, BLOCK);
        }
    }
}
