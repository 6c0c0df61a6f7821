package dev.tessera.kernels.cpu.rows;

import dev.tessera.kernels.TensorType;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * Q6_K panels with the 6-bit values widened to one signed byte each: per 16-row panel and 256-column block, 4416
 * bytes: the int8 scales of the 16 value groups ([group][row], 256 bytes), the 16 rows' d as floats (64 bytes, so a
 * block's scales are one vector load and a multiply per group; 16 f16 conversions through an array cost the one-token
 * dot 10%, 38-41 against 43-45 GMAC/s cache-resident), then one 16-byte slice per column holding q - 32 of rows
 * 0..15. A slice widens into a float vector in two instructions, as Q8_0's do; unpacking ql/qh bit fields in the dot took about 20 vector ops per 32 multiply-adds and ran at a third
 * of Q4_0's speed (8 against 19-25 GMAC/s per thread at one token). The copy is 1.08 bytes per value against the GGUF
 * block's 0.82, 31% more for Q6_K tensors only (in a Q4_K_M file about a quarter of the weights).
 * <p>
 * The dots take x rounded to int8 ({@link #needsInt8}, as llama.cpp's q8_K activations). One token's dot widens two
 * columns' slices (32 bytes) into 32 short lanes and multiplies them by the two columns' int8 x spread over the halves,
 * summing a 16-column group in 16-bit lanes (at most 8 * 32 * 127 = 32512): three vector instructions per 32
 * multiply-adds where widening to floats took four per 16. The batched dots take the same int8 x as floats, whose
 * group sums are exact integers; so a token's sum adds each group's Σ q·qx times (d * scale) * x scale in
 * {@link #dot}, {@link #dot4} and {@link #dot8} alike, and batching changes no result.
 */
public final class Q6KPanels implements PanelKernel {
    static final PanelKernel INSTANCE = new Q6KPanels();
    static final int BLOCK = 256;
    private static final int SCALES = 0, D = 256, QS = 320;
    static final int PANEL_BLOCK_BYTES = QS + BLOCK * ROWS;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128, B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    /** Lanes 0-15 take short 0 of a broadcast int (column 2m's int8 x), lanes 16-31 short 1 (column 2m + 1). */
    private static final VectorShuffle<Short> HALVES = VectorShuffle.fromOp(S32, i -> i / 16);
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
                            long at = d + QS + (long) (128 * h + l) * ROWS + i;
                            dst.set(U8, at, (byte) (((a & 15) | (hb & 3) << 4) - 32));
                            dst.set(U8, at + 32 * ROWS, (byte) (((c & 15) | (hb >> 2 & 3) << 4) - 32));
                            dst.set(U8, at + 64 * ROWS, (byte) (((a >> 4) | (hb >> 4 & 3) << 4) - 32));
                            dst.set(U8, at + 96 * ROWS, (byte) (((c >> 4) | (hb >> 6) << 4) - 32));
                        }
                }
            }
    }

    /** Column k's 16 values (q - 32) as floats. */
    private static FloatVector column(MemorySegment w, long o, int k) {
        return (FloatVector) ByteVector.fromMemorySegment(B16, w, o + QS + (long) k * ROWS, LE).convertShape(VectorOperators.B2F, F, 0);
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
            for (int k = kb % BLOCK, end = k + 32; k < end; k++, at += stride)
                // (d * scale) * q, the row kernel's order, so the values are equal.
                FloatVector.fromArray(F, scales, 16 * (k / 16)).mul(column(w, o, k)).intoMemorySegment(packed, 4L * at, NATIVE);
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
                    // Slices of columns 16g + 2l and the next in one load: lanes 0-15 and 16-31.
                    ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + (16L * g + 2 * l) * ROWS, LE)
                            .convertShape(VectorOperators.B2S, S32, 0);
                    s = s.add(q.mul(IntVector.broadcast(I512, pairs[p + l]).reinterpretAsShorts().rearrange(HALVES)));
                }
                // The two columns' halves added per row; exact as a float. Two groups share an x block: their sums times
                // (d * scale) are added, then times the block's x scale into the running sum.
                // d * scale is computed here, as decodeScales computes it: writing a block's scales to a per-thread array
                // and reading them back cost this streamed dot 8-19% inside a 2-thread decode.
                IntVector sum = ((IntVector) s.convertShape(VectorOperators.S2I, I, 0)).add((IntVector) s.convertShape(VectorOperators.S2I, I, 1));
                FloatVector sums = (FloatVector) sum.convert(VectorOperators.I2F, 0);
                FloatVector sc = d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + SCALES + (long) g * ROWS, LE)
                        .convertShape(VectorOperators.B2F, F, 0));
                if ((g & 1) == 0) pair = sums.mul(sc);
                else acc = sums.fma(sc, pair).fma(FloatVector.broadcast(F, xScales[(xb + 16 * g) / 32]), acc);
            }
        }
        acc.intoArray(out, outOffset);
    }

    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, p0 = a0, p1 = a0, p2 = a0, p3 = a0;
        float[] scales = GROUP_SCALES.get(), q8 = xBlocks.int8Floats(), xScales = xBlocks.scales();
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            decodeScales(w, o, scales);
            for (int g = 0; g < 16; g++) {
                FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
                for (int k = 16 * g; k < 16 * g + 16; k++) {
                    FloatVector v = column(w, o, k);
                    int c = kb + k;
                    s0 = v.fma(FloatVector.broadcast(F, q8[x0 + c]), s0);
                    s1 = v.fma(FloatVector.broadcast(F, q8[x1 + c]), s1);
                    s2 = v.fma(FloatVector.broadcast(F, q8[x2 + c]), s2);
                    s3 = v.fma(FloatVector.broadcast(F, q8[x3 + c]), s3);
                }
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
                out[outOffset + kb + k] = d * w.get(U8, o + SCALES + (k / 16) * ROWS + i) * w.get(U8, o + QS + (long) k * ROWS + i);
        }
    }
}
