package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I64;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * Q4_K panels: per 16-row panel and 256-column block, 2432 bytes: the 16 rows' d and dmin already as floats, their
 * 6-bit scales and mins of the 8 sub-blocks unpacked to one byte each ([sub-block][row]), then 128 slices of qs where
 * slice qs[32c + l] holds that byte of rows 0..15 and widens into their values at columns 64c + l (low nibbles) and
 * 64c + 32 + l (high nibbles). 5.6% over the GGUF block: decoding the f16 pair and the packed 6-bit fields for every
 * block of every panel took a third of the one-token dot's time when the weights stream from memory (26.9 against
 * 40.7 GMAC/s over the 8192×2048 ffn_gate matrices of a 1B model with the decode skipped).
 * <p>
 * A value is d*sc * q - dmin*m, so a 32-value sub-block's sum is d*sc * Σ q·x - dmin*m * Σ x: the min term takes
 * the block sums of x ({@link #needsBlockSums}), computed once per matmul and shared by all rows. Per token the
 * arithmetic is the same in {@link #dot}, {@link #dot4} and {@link #dot8}, so batching changes no result.
 */
public final class Q4KPanels implements PanelKernel {
    static final PanelKernel INSTANCE = new Q4KPanels();
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 144;  // in the GGUF file
    private static final int D = 0, DMIN = 4 * ROWS, SC = 8 * ROWS, MN = SC + 8 * ROWS, QS = MN + 8 * ROWS;
    static final int PANEL_BLOCK_BYTES = QS + 128 * ROWS;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    /** Per thread: one block's decoded d*sc and dmin*m, [2][8 sub-blocks][16 rows], then d and dmin [2][16 rows]. */
    private static final ThreadLocal<float[]> SCALES = ThreadLocal.withInitial(() -> new float[256 + 2 * ROWS]);


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
        int numBlocks = cols / BLOCK;
        return PanelRepack.inChunks(src, rows, panelBytes(cols), arena, (dst, p0, p1) -> repack(src, dst, p0, p1, numBlocks));
    }

    private static void repack(MemorySegment src, MemorySegment dst, int p0, int p1, int numBlocks) {
        long rowBytes = (long) numBlocks * BLOCK_BYTES;
        long[] x = new long[8];
        for (int p = p0; p < p1; p++)
            for (int b = 0; b < numBlocks; b++) {
                long s = (long) p * ROWS * rowBytes + (long) b * BLOCK_BYTES, d = ((long) p * numBlocks + b) * PANEL_BLOCK_BYTES;
                for (int i = 0; i < ROWS; i++) {
                    long r = s + i * rowBytes;
                    dst.set(F32, d + D + 4L * i, Float.float16ToFloat(src.get(I16, r)));
                    dst.set(F32, d + DMIN + 4L * i, Float.float16ToFloat(src.get(I16, r + 2)));
                    for (int j = 0; j < 8; j++) {
                        dst.set(U8, d + SC + j * ROWS + i, (byte) Q4KRows.scale(src, r + 4, j));
                        dst.set(U8, d + MN + j * ROWS + i, (byte) Q4KRows.min(src, r + 4, j));
                    }
                }
                // qs: bytes 16..143 of the 16 rows, transposed eight rows by eight bytes at a time.
                for (int g = 0; g < ROWS; g += 8)
                    for (int c0 = 0; c0 < 128; c0 += 8) {
                        for (int r = 0; r < 8; r++) x[r] = src.get(I64, s + (g + r) * rowBytes + 16 + c0);
                        PanelRepack.transpose8(x);
                        for (int c = 0; c < 8; c++) dst.set(I64, d + QS + (long) (c0 + c) * ROWS + g, x[c]);
                    }
            }
    }

    /** Slice qs[l] of the block at {@code o}: byte l of the 16 rows' qs, zero-extended into int lanes. */
    private static IntVector qs(MemorySegment w, long o, int l) {
        return (IntVector) ByteVector.fromMemorySegment(B16, w, o + QS + (long) l * ROWS, LE)
                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
    }

    /** Writes d*sc (at 16j) and dmin*m (at 128 + 16j) of sub-blocks j = 0..7 for the 16 rows into {@code scales}. */
    private static void decodeScales(MemorySegment w, long o, float[] scales) {
        FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE), dmin = FloatVector.fromMemorySegment(F, w, o + DMIN, LE);
        for (int j = 0; j < 8; j++) {
            d.mul(bytes(w, o + SC + j * ROWS)).intoArray(scales, 16 * j);
            dmin.mul(bytes(w, o + MN + j * ROWS)).intoArray(scales, 128 + 16 * j);
        }
    }

    /** 16 bytes (0..63) as floats. */
    private static FloatVector bytes(MemorySegment w, long at) {
        return (FloatVector) ByteVector.fromMemorySegment(B16, w, at, LE).convertShape(VectorOperators.B2F, F, 0);
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
        for (int k = k0; k < k0 + kn; k += 32) {
            long o = panelOffset + (long) (k / BLOCK) * PANEL_BLOCK_BYTES;
            int j = (k % BLOCK) / 32, c = j / 2;
            // d*sc and dmin*m of sub-block j, as decodeScales makes them.
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE).mul(bytes(w, o + SC + j * ROWS));
            FloatVector m = FloatVector.fromMemorySegment(F, w, o + DMIN, LE).mul(bytes(w, o + MN + j * ROWS));
            int at = (k - k0) * stride + col0;
            for (int l = 0; l < 32; l++, at += stride) {
                IntVector q = qs(w, o, 32 * c + l);
                FloatVector v = (j & 1) == 0 ? low(q) : high(q);
                // d*sc * q - dmin*m, unfused as in the row kernel, so the values are equal.
                d.mul(v).sub(m).intoArray(packed, at);
            }
        }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, float[] xSums, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE), dmin = FloatVector.fromMemorySegment(F, w, o + DMIN, LE);
            for (int c = 0; c < 4; c++) {
                FloatVector s = FloatVector.zero(F), h = s;
                int xc = xb + 64 * c;
                for (int l = 0; l < 32; l++) {
                    IntVector q = qs(w, o, 32 * c + l);
                    s = low(q).fma(FloatVector.broadcast(F, x[xc + l]), s);
                    h = high(q).fma(FloatVector.broadcast(F, x[xc + 32 + l]), h);
                }
                // The scales as decodeScales makes them (d * sc, dmin * m), computed here: decodeScales inlined into this
                // loop cost it a quarter of its speed, and out of line cost dot4 (where it inlines) 30%.
                int sb = xc / 32;
                acc = s.fma(d.mul(bytes(w, o + SC + 2 * c * ROWS)), acc);
                acc = h.fma(d.mul(bytes(w, o + SC + (2 * c + 1) * ROWS)), acc);
                acc = dmin.mul(bytes(w, o + MN + 2 * c * ROWS)).fma(FloatVector.broadcast(F, -xSums[sb]), acc);
                acc = dmin.mul(bytes(w, o + MN + (2 * c + 1) * ROWS)).fma(FloatVector.broadcast(F, -xSums[sb + 1]), acc);
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
                    IntVector q = qs(w, o, 32 * c + l);
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
        for (int kb = 0; kb < cols; kb += BLOCK) {
            long o = panelOffset + (long) (kb / BLOCK) * PANEL_BLOCK_BYTES;
            float d = w.get(F32, o + D + 4L * i), dmin = w.get(F32, o + DMIN + 4L * i);
            for (int c = 0; c < 4; c++) {
                // As Q4KRows.dequantize: d*sc * q - dmin*m per sub-block, so the values are equal.
                float d1 = d * w.get(U8, o + SC + 2 * c * ROWS + i), m1 = dmin * w.get(U8, o + MN + 2 * c * ROWS + i);
                float d2 = d * w.get(U8, o + SC + (2 * c + 1) * ROWS + i), m2 = dmin * w.get(U8, o + MN + (2 * c + 1) * ROWS + i);
                int oc = outOffset + kb + 64 * c;
                for (int l = 0; l < 32; l++) {
                    int q = w.get(U8, o + QS + (long) (32 * c + l) * ROWS + i) & 0xff;
                    out[oc + l] = d1 * (q & 0x0f) - m1;
                    out[oc + 32 + l] = d2 * (q >> 4) - m2;
                }
            }
        }
    }
}
