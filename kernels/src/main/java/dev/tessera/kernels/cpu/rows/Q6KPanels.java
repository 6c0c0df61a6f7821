package dev.tessera.kernels.cpu.rows;

import dev.tessera.kernels.TensorType;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;
import static dev.tessera.kernels.cpu.rows.VectorLanes.rowSums;
import static dev.tessera.kernels.cpu.rows.VectorLanes.xPair;

/**
 * Q6_K panels with the 6-bit values widened to one signed byte each: per 16-row panel and 256-column block, 4416
 * bytes: the int8 scales of the 16 value groups ([group][row], 256 bytes), the 16 rows' d as floats (64 bytes, so a
 * block's scales are one vector load and a multiply per group; 16 f16 conversions through an array cost the one-token
 * dot 10%, 38-41 against 43-45 GMAC/s cache-resident), then 128 pair slices of 32 bytes: slice m holds q - 32 of
 * row i, column 2m + p at byte 2i + p, as Q4_K's pair slices interleave their columns. A slice widens into 32 short
 * lanes in one instruction; unpacking ql/qh bit fields in the dot took about 20 vector ops per 32 multiply-adds and
 * ran at a third of Q4_0's speed (8 against 19-25 GMAC/s per thread at one token), and a compact panel of 4-bit and
 * 2-bit planes (0.83 bytes per value) took a Q4_K_M decode from 40-42 to 29-36 tok/s (docs/BENCHMARKS-NATIVE.md).
 * The copy is 1.08 bytes per value against the GGUF block's 0.82, 31% more for Q6_K tensors only (in a Q4_K_M file
 * about a quarter of the weights).
 * <p>
 * The dots take x rounded to int8 ({@link #needsInt8}, as llama.cpp's q8_K activations). One token's dot multiplies a
 * pair slice by a broadcast int holding the two columns' int8 x (the interleaving is what lets one broadcast serve:
 * column-major slices needed a lane permute per pair; without it a 2-thread Q4_K_M decode averaged 46.7 against 42.7
 * tok/s over 8 alternating runs), summing a 16-column group in 16-bit lanes (at most 8 * 32 * 127 = 32512).
 * {@link #dot4} does the same for four tokens with each widened slice; the group sums are exact integers either way,
 * and a token's sum adds each group's Σ q·qx times (d * scale) * x scale in {@link #dot}, {@link #dot4} and
 * {@link #dot8} alike, so batching changes no result.
 */
public final class Q6KPanels implements PanelKernel {
    static final PanelKernel INSTANCE = new Q6KPanels();
    static final int BLOCK = 256;
    private static final int SCALES = 0, D = 256, QS = 320;
    static final int PANEL_BLOCK_BYTES = QS + BLOCK * ROWS;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128, B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final int GGUF_BLOCK_BYTES = TensorType.Q6_K.blockBytes;
    /** Per thread: one block's d * scale, [16 groups][16 rows]. */
    private static final ThreadLocal<float[]> GROUP_SCALES = ThreadLocal.withInitial(() -> new float[256]);

    private Q6KPanels() {}

    @Override
    public boolean needsInt8() {
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
        long rowBytes = (long) numBlocks * GGUF_BLOCK_BYTES;
        for (int p = p0; p < p1; p++)
            for (int b = 0; b < numBlocks; b++) {
                long d = ((long) p * numBlocks + b) * PANEL_BLOCK_BYTES;
                for (int i = 0; i < ROWS; i++) {
                    long s = (long) (p * ROWS + i) * rowBytes + (long) b * GGUF_BLOCK_BYTES;
                    for (int g = 0; g < 16; g++) dst.set(U8, d + SCALES + g * ROWS + i, src.get(U8, s + 192 + g));
                    dst.set(F32, d + D + 4L * i, Float.float16ToFloat(src.get(I16, s + 208)));
                    // block_q6_K: value 128h + 32k + l is the (k / 2)-th nibble of ql[64h + 32(k % 2) + l] under bits
                    // 2k..2k+1 of qh[32h + l], minus 32 (see Q6KRows).
                    for (int h = 0; h < 2; h++)
                        for (int l = 0; l < 32; l++) {
                            int a = src.get(U8, s + 64 * h + l) & 0xff, c = src.get(U8, s + 64 * h + 32 + l) & 0xff;
                            int hb = src.get(U8, s + 128 + 32 * h + l) & 0xff;
                            int k = 128 * h + l;
                            dst.set(U8, d + at(k, i), (byte) (((a & 15) | (hb & 3) << 4) - 32));
                            dst.set(U8, d + at(k + 32, i), (byte) (((c & 15) | (hb >> 2 & 3) << 4) - 32));
                            dst.set(U8, d + at(k + 64, i), (byte) (((a >> 4) | (hb >> 4 & 3) << 4) - 32));
                            dst.set(U8, d + at(k + 96, i), (byte) (((c >> 4) | (hb >> 6) << 4) - 32));
                        }
                }
            }
    }

    /** Where column k (0..255) of row i sits in a panel block: pair slice k / 2, byte 2i + k % 2. */
    private static long at(int k, int i) {
        return QS + 32L * (k / 2) + 2 * i + (k & 1);
    }

    /** Pair slice m of the block at {@code o}, sign-extended: lane 2i + p is q - 32 of row i, column 2m + p. */
    private static ShortVector pairSlice(MemorySegment w, long o, int m) {
        return (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m, LE).convertShape(VectorOperators.B2S, S32, 0);
    }

    /** Column 2m + p of a pair slice (its int lanes: row i's two shorts) as 16 floats. */
    private static FloatVector column(IntVector pair, int p) {
        IntVector v = p == 0 ? pair.lanewise(VectorOperators.LSHL, 16) : pair;
        return (FloatVector) v.lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0);
    }

    /** Writes d * scale of the 16 value groups for the 16 rows at {@code scales[16 * group]}. */
    private static void decodeScales(MemorySegment w, long o, float[] scales) {
        FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE);
        for (int g = 0; g < 16; g++)
            d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + SCALES + (long) g * ROWS, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).intoArray(scales, 16 * g);
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0) {
        float[] scales = GROUP_SCALES.get();
        for (int kb = k0; kb < k0 + kn; kb += 32) {
            long o = panelOffset + (long) (kb / BLOCK) * PANEL_BLOCK_BYTES;
            if (kb == k0 || kb % BLOCK == 0) decodeScales(w, o, scales);  // once per block, not per 32 columns
            int at = (kb - k0) * stride + col0;
            for (int k = kb % BLOCK, end = k + 32; k < end; k += 2, at += 2 * stride) {
                IntVector pair = pairSlice(w, o, k / 2).reinterpretAsInts();
                FloatVector sc = FloatVector.fromArray(F, scales, 16 * (k / 16));
                // (d * scale) * q, the row kernel's order, so the values are equal.
                sc.mul(column(pair, 0)).intoMemorySegment(packed, 4L * at, NATIVE);
                sc.mul(column(pair, 1)).intoMemorySegment(packed, 4L * (at + stride), NATIVE);
            }
        }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F), pair = acc;
        float[] xScales = xBlocks.scales();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE);
            for (int g = 0; g < 16; g++) {
                ShortVector s = ShortVector.zero(S32);
                int p = (xb + 16 * g) / 2;
                for (int l = 0; l < 8; l++) {
                    s = s.add(pairSlice(w, o, 8 * g + l).mul(xPair(pairs[p + l])));
                }
                // The two columns' lanes added per row; exact as a float. Two groups share an x block: their sums times
                // (d * scale) are added, then times the block's x scale into the running sum.
                // d * scale is computed here, as decodeScales computes it: writing a block's scales to a per-thread array
                // and reading them back cost this streamed dot 8-19% inside a 2-thread decode.
                FloatVector sums = rowSums(s);
                FloatVector sc = d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + SCALES + (long) g * ROWS, LE)
                        .convertShape(VectorOperators.B2F, F, 0));
                if ((g & 1) == 0) pair = sums.mul(sc);
                else acc = sums.fma(sc, pair).fma(FloatVector.broadcast(F, xScales[(xb + 16 * g) / 32]), acc);
            }
        }
        acc.intoArray(out, outOffset);
    }

    /**
     * As {@link #dot} for four tokens, each widened slice multiplied by the four tokens' x pairs in 16-bit lanes. On Zen
     * 5 this ran at 58-78 GMAC/s per thread (8192×2048, four tokens, cache-resident) where widening each column to
     * floats for four FMAs ran at 38-43.
     */
    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, p0 = a0, p1 = a0, p2 = a0, p3 = a0;
        float[] scales = GROUP_SCALES.get(), xScales = xBlocks.scales();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            decodeScales(w, o, scales);
            for (int g = 0; g < 16; g++) {
                ShortVector q0 = ShortVector.zero(S32), q1 = q0, q2 = q0, q3 = q0;
                int pp = (kb + 16 * g) / 2, m0 = x0 / 2 + pp, m1 = x1 / 2 + pp, m2 = x2 / 2 + pp, m3 = x3 / 2 + pp;
                for (int l = 0; l < 8; l++) {
                    ShortVector q = pairSlice(w, o, 8 * g + l);
                    q0 = q0.add(q.mul(xPair(pairs[m0 + l])));
                    q1 = q1.add(q.mul(xPair(pairs[m1 + l])));
                    q2 = q2.add(q.mul(xPair(pairs[m2 + l])));
                    q3 = q3.add(q.mul(xPair(pairs[m3 + l])));
                }
                FloatVector s0 = rowSums(q0), s1 = rowSums(q1), s2 = rowSums(q2), s3 = rowSums(q3);
                // dot's order: the two groups of an x block as sum * (d * scale), then times the x scale into the sum.
                FloatVector sc = FloatVector.fromArray(F, scales, 16 * g);
                if ((g & 1) == 0) {
                    p0 = s0.mul(sc); p1 = s1.mul(sc); p2 = s2.mul(sc); p3 = s3.mul(sc);
                } else {
                    int b = (kb + 16 * g) / 32;
                    a0 = s0.fma(sc, p0).fma(FloatVector.broadcast(F, xScales[x0 / 32 + b]), a0);
                    a1 = s1.fma(sc, p1).fma(FloatVector.broadcast(F, xScales[x1 / 32 + b]), a1);
                    a2 = s2.fma(sc, p2).fma(FloatVector.broadcast(F, xScales[x2 / 32 + b]), a2);
                    a3 = s3.fma(sc, p3).fma(FloatVector.broadcast(F, xScales[x3 / 32 + b]), a3);
                }
            }
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    /** Two passes of {@link #dot4}, each token with dot's arithmetic. */
    @Override
    public void dot8(MemorySegment w, long panelOffset, int cols, float[] x, int[] xs, ActivationBlocks xBlocks, int numTokens, float[] out,
                     int o0, int outWidth, float[] acc) {
        dot4(w, panelOffset, cols, x, xs[0], xs[1], xs[2], xs[3], xBlocks, Math.min(numTokens, 4), out, o0, outWidth);
        if (numTokens > 4)
            dot4(w, panelOffset, cols, x, xs[4], xs[5], xs[6], xs[7], xBlocks, numTokens - 4, out, o0 + 4 * outWidth, outWidth);
    }

    @Override
    public void dequantizeRow(MemorySegment w, long panelOffset, int i, int cols, float[] out, int outOffset) {
        for (int kb = 0; kb < cols; kb += BLOCK) {
            long o = panelOffset + (long) (kb / BLOCK) * PANEL_BLOCK_BYTES;
            float d = w.get(F32, o + D + 4L * i);
            for (int k = 0; k < BLOCK; k++)
                out[outOffset + kb + k] = d * w.get(U8, o + SCALES + (k / 16) * ROWS + i) * w.get(U8, o + at(k, i));
        }
    }
}
