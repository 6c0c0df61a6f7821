package dev.tessera.kernels.cpu.rows;

import dev.tessera.kernels.TensorType;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;

/**
 * Q6_K panels at 0.83 bytes per value: per 16-row panel and 256-column block, 3392 bytes: the int8 scales of the 16
 * value groups ([group][row], 256 bytes), the 16 rows' d as floats (64 bytes, so a block's scales are one vector load
 * and a multiply per group), then per 16-column group 192 bytes holding two quads of 8 columns. A quad keeps, for row
 * i and column parity p, four 6-bit values (columns 8q + 2s + p, s = 0..3) in 24 bits: a 16-bit word at lane 2i + p
 * of its 64 words (bits 10-15: s = 0, 4-9: s = 1, 0-3: the low 4 bits of s = 2) and a byte at lane 2i + p of its 32
 * bytes (bits 2-7: s = 3, bits 0-1: the top 2 bits of s = 2). A group is its two quads' words, then their bytes.
 * <p>
 * A decode streams every weight from memory once per token, and on a Zen 4 host a two-thread decode is bound by the
 * bytes it reads: Q6_K matrices widened to one byte per value (1.08 bytes per value with the scales) streamed at 26-28
 * GMAC/s, these at 32-37 (2048×8192 and 32000×2048), at the same GB/s.
 * <p>
 * Each value is stored as q ^ 32, which read as a signed 6-bit number is q - 32. The fields that carry a sign sit at
 * the top of their word or (sign-extended) byte, so an arithmetic right shift alone gives s = 0 and s = 3 in 16-bit
 * lanes, a left and a right shift s = 1, and s = 2 is its top bits shifted into place or-ed with its low 4: eight
 * operations per 128 values, where the byte per value needed four widenings. Two earlier compact layouts did more
 * work per value and ran below memory speed (docs/BENCHMARKS-NATIVE.md): Q4_K's pair slices for the low 4 bits with a
 * plane of 2-bit fields (17 vector operations per 64 multiply-adds), and this one with s = 0 in the low bits (10
 * decode operations per 128 values).
 * <p>
 * The dots take x rounded to int8 ({@link #needsInt8}, as llama.cpp's q8_K activations). A decoded quad is four
 * vectors of 32 short lanes (row i, column parity p), each multiplied by a broadcast int holding two columns' int8 x,
 * summed over a 16-column group in 16-bit lanes (at most 8 * 32 * 127 = 32512). A token's sum adds each group's
 * Σ q·qx times (d * scale), two groups sharing an x block, times that block's x scale, in {@link #dot}, {@link #dot4}
 * and {@link #dot8} alike, so batching changes no result. No helper of ours is called with a vector in the dots: C2
 * may decline to inline one in a long method, and it then boxes its vectors.
 */
public final class Q6KPanels extends SuperBlockPanels {
    static final PanelKernel INSTANCE = new Q6KPanels();
    static final int SCALES = 0, D = 256, QS = 320, GROUP_BYTES = 192, WORDS = 64, BYTES = 128;
    static final int PANEL_BLOCK_BYTES = QS + 16 * GROUP_BYTES;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128, B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    private static final int GGUF_BLOCK_BYTES = TensorType.Q6_K.blockBytes;
    /** Per thread: one block's d * scale, [16 groups][16 rows]. */
    private static final ThreadLocal<float[]> GROUP_SCALES = ThreadLocal.withInitial(() -> new float[256]);

    private Q6KPanels() {
        super(PANEL_BLOCK_BYTES);
    }

    @Override
    void repackPanels(MemorySegment src, MemorySegment dst, int p0, int p1, int numBlocks) {
        long rowBytes = (long) numBlocks * GGUF_BLOCK_BYTES;
        byte[] block = new byte[PANEL_BLOCK_BYTES];
        byte[] ggufBlock = new byte[GGUF_BLOCK_BYTES];
        for (int p = p0; p < p1; p++)
            for (int b = 0; b < numBlocks; b++) {
                java.util.Arrays.fill(block, (byte) 0);
                for (int i = 0; i < ROWS; i++) {
                    long s = (long) (p * ROWS + i) * rowBytes + (long) b * GGUF_BLOCK_BYTES;
                    MemorySegment.copy(src, ValueLayout.JAVA_BYTE, s, ggufBlock, 0, GGUF_BLOCK_BYTES);
                    for (int g = 0; g < 16; g++) block[SCALES + g * ROWS + i] = ggufBlock[192 + g];
                    int d = Float.floatToRawIntBits(Float.float16ToFloat(src.get(I16, s + 208)));
                    for (int k = 0; k < 4; k++) block[D + 4 * i + k] = (byte) (d >> 8 * k);
                    for (int k = 0; k < BLOCK; k++) {
                        // block_q6_K: value 128h + 32j + l is the (j / 2)-th nibble of ql[64h + 32(j % 2) + l] under bits
                        // 2j..2j+1 of qh[32h + l] (see Q6KRows).
                        int h = k / 128, j = k % 128 / 32, l = k % 32;
                        int low = (ggufBlock[64 * h + 32 * (j & 1) + l] & 0xff) >> 4 * (j >> 1) & 15;
                        int high = (ggufBlock[128 + 32 * h + l] & 0xff) >> 2 * j & 3;
                        int v = (low | high << 4) ^ 32, lane = 2 * i + (k & 1), slot = k % 8 / 2;
                        int words = QS + (k / 16) * GROUP_BYTES + (k / 8 & 1) * WORDS + 2 * lane;
                        int bytes = QS + (k / 16) * GROUP_BYTES + BYTES + (k / 8 & 1) * 32 + lane;
                        switch (slot) {
                            case 0 -> block[words + 1] |= (byte) (v << 2);
                            case 1 -> {
                                block[words] |= (byte) (v << 4);
                                block[words + 1] |= (byte) (v >> 4);
                            }
                            case 2 -> {
                                block[words] |= (byte) (v & 15);
                                block[bytes] |= (byte) (v >> 4);
                            }
                            default -> block[bytes] |= (byte) (v << 2);
                        }
                    }
                }
                MemorySegment.copy(block, 0, dst, ValueLayout.JAVA_BYTE, ((long) p * numBlocks + b) * PANEL_BLOCK_BYTES, PANEL_BLOCK_BYTES);
            }
    }

    @Override
    public IntegerGemm.Kernel integerGemm() {
        return Q6KGemm.INSTANCE;
    }

    /** q - 32 of row i, column k (0..255) of the panel block at {@code o}. */
    private static int value(MemorySegment w, long o, int k, int i) {
        int lane = 2 * i + (k & 1);
        long group = o + QS + (long) (k / 16) * GROUP_BYTES;
        int t = k / 8 & 1, word = w.get(I16, group + WORDS * t + 2L * lane) & 0xffff, b = w.get(U8, group + BYTES + 32 * t + lane) & 0xff;
        int v = switch (k % 8 / 2) {
            case 0 -> word >> 10;
            case 1 -> word >> 4 & 63;
            case 2 -> word & 15 | (b & 3) << 4;
            default -> b >> 2;
        };
        return (v ^ 32) - 32;
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
        for (int kq = k0; kq < k0 + kn; kq += 8) {
            long o = panelOffset + (long) (kq / BLOCK) * PANEL_BLOCK_BYTES;
            if (kq == k0 || kq % BLOCK == 0) decodeScales(w, o, scales);  // once per block, not per quad
            int k = kq % BLOCK;
            long group = o + QS + (long) (k / 16) * GROUP_BYTES;
            int t = k / 8 & 1;
            ShortVector words = ShortVector.fromMemorySegment(S32, w, group + WORDS * t, LE);
            ShortVector bytes = (ShortVector) ByteVector.fromMemorySegment(B32, w, group + BYTES + 32 * t, LE).convertShape(VectorOperators.B2S, S32, 0);
            FloatVector sc = FloatVector.fromArray(F, scales, 16 * (k / 16));
            for (int s = 0; s < 4; s++) {
                ShortVector v = switch (s) {
                    case 0 -> words.lanewise(ASHR, 10);
                    case 1 -> words.lanewise(LSHL, 6).lanewise(ASHR, 10);
                    case 2 -> bytes.lanewise(LSHL, 14).lanewise(ASHR, 10).or(words.and((short) 15));
                    default -> bytes.lanewise(ASHR, 2);
                };
                IntVector pair = v.reinterpretAsInts();
                int at = (kq - k0 + 2 * s) * stride + col0;
                // (d * scale) * q, the row kernel's order, so the values are equal.
                sc.mul((FloatVector) pair.lanewise(LSHL, 16).lanewise(ASHR, 16).convert(I2F, 0)).intoMemorySegment(packed, 4L * at, NATIVE);
                sc.mul((FloatVector) pair.lanewise(ASHR, 16).convert(I2F, 0)).intoMemorySegment(packed, 4L * (at + stride), NATIVE);
            }
        }
    }

    /**
     * Two groups (one x block) spelled out, each group's four loads just before its arithmetic, in address order. As loops
     * over the groups' halves and quads this dot ran 46 GMAC/s on one thread in cache and 21-24 streaming from memory;
     * spelled out 52 and 24-27. The order of the loads matters when streaming: the same code with both groups' loads
     * first ran 16-17 (Zen 5 VM, 2048×8192). Two threads on a Q4_K_M decode's matrices: 8% more steps per second.
     */
    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        float[] xScales = xBlocks.scales();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE);
            for (int g = 0; g < 16; g += 2) {
                // Groups g and g + 1 share x block (xb + 16 g) / 32: the first's sum times (d * scale), the second's
                // added to it, then times the block's x scale into the running sum.
                int m = (xb + 16 * g) / 2;
                long ga = o + QS + (long) g * GROUP_BYTES, gb = ga + GROUP_BYTES;
                ShortVector wa0 = ShortVector.fromMemorySegment(S32, w, ga, LE), wa1 = ShortVector.fromMemorySegment(S32, w, ga + WORDS, LE);
                ShortVector ba0 = (ShortVector) ByteVector.fromMemorySegment(B32, w, ga + BYTES, LE).convertShape(VectorOperators.B2S, S32, 0);
                ShortVector ba1 = (ShortVector) ByteVector.fromMemorySegment(B32, w, ga + BYTES + 32, LE).convertShape(VectorOperators.B2S, S32, 0);
                ShortVector sa = wa0.lanewise(ASHR, 10).mul(IntVector.broadcast(I512, pairs[m]).reinterpretAsShorts())
                        .add(wa0.lanewise(LSHL, 6).lanewise(ASHR, 10).mul(IntVector.broadcast(I512, pairs[m + 1]).reinterpretAsShorts()))
                        .add(ba0.lanewise(LSHL, 14).lanewise(ASHR, 10).or(wa0.and((short) 15)).mul(IntVector.broadcast(I512, pairs[m + 2]).reinterpretAsShorts()))
                        .add(ba0.lanewise(ASHR, 2).mul(IntVector.broadcast(I512, pairs[m + 3]).reinterpretAsShorts()))
                        .add(wa1.lanewise(ASHR, 10).mul(IntVector.broadcast(I512, pairs[m + 4]).reinterpretAsShorts()))
                        .add(wa1.lanewise(LSHL, 6).lanewise(ASHR, 10).mul(IntVector.broadcast(I512, pairs[m + 5]).reinterpretAsShorts()))
                        .add(ba1.lanewise(LSHL, 14).lanewise(ASHR, 10).or(wa1.and((short) 15)).mul(IntVector.broadcast(I512, pairs[m + 6]).reinterpretAsShorts()))
                        .add(ba1.lanewise(ASHR, 2).mul(IntVector.broadcast(I512, pairs[m + 7]).reinterpretAsShorts()));
                ShortVector wb0 = ShortVector.fromMemorySegment(S32, w, gb, LE), wb1 = ShortVector.fromMemorySegment(S32, w, gb + WORDS, LE);
                ShortVector bb0 = (ShortVector) ByteVector.fromMemorySegment(B32, w, gb + BYTES, LE).convertShape(VectorOperators.B2S, S32, 0);
                ShortVector bb1 = (ShortVector) ByteVector.fromMemorySegment(B32, w, gb + BYTES + 32, LE).convertShape(VectorOperators.B2S, S32, 0);
                ShortVector sb = wb0.lanewise(ASHR, 10).mul(IntVector.broadcast(I512, pairs[m + 8]).reinterpretAsShorts())
                        .add(wb0.lanewise(LSHL, 6).lanewise(ASHR, 10).mul(IntVector.broadcast(I512, pairs[m + 9]).reinterpretAsShorts()))
                        .add(bb0.lanewise(LSHL, 14).lanewise(ASHR, 10).or(wb0.and((short) 15)).mul(IntVector.broadcast(I512, pairs[m + 10]).reinterpretAsShorts()))
                        .add(bb0.lanewise(ASHR, 2).mul(IntVector.broadcast(I512, pairs[m + 11]).reinterpretAsShorts()))
                        .add(wb1.lanewise(ASHR, 10).mul(IntVector.broadcast(I512, pairs[m + 12]).reinterpretAsShorts()))
                        .add(wb1.lanewise(LSHL, 6).lanewise(ASHR, 10).mul(IntVector.broadcast(I512, pairs[m + 13]).reinterpretAsShorts()))
                        .add(bb1.lanewise(LSHL, 14).lanewise(ASHR, 10).or(wb1.and((short) 15)).mul(IntVector.broadcast(I512, pairs[m + 14]).reinterpretAsShorts()))
                        .add(bb1.lanewise(ASHR, 2).mul(IntVector.broadcast(I512, pairs[m + 15]).reinterpretAsShorts()));
                // The two columns' lanes added per row (exact as a float), times d * scale.
                IntVector ia = sa.reinterpretAsInts(), ib = sb.reinterpretAsInts();
                FloatVector suma = (FloatVector) ia.lanewise(LSHL, 16).lanewise(ASHR, 16).add(ia.lanewise(ASHR, 16)).convert(I2F, 0);
                FloatVector sumb = (FloatVector) ib.lanewise(LSHL, 16).lanewise(ASHR, 16).add(ib.lanewise(ASHR, 16)).convert(I2F, 0);
                FloatVector sca = d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + SCALES + (long) g * ROWS, LE)
                        .convertShape(VectorOperators.B2F, F, 0));
                FloatVector scb = d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + SCALES + (long) (g + 1) * ROWS, LE)
                        .convertShape(VectorOperators.B2F, F, 0));
                acc = sumb.fma(scb, suma.mul(sca)).fma(FloatVector.broadcast(F, xScales[(xb + 16 * g) / 32]), acc);
            }
        }
        acc.intoArray(out, outOffset);
    }

    /**
     * As {@link #dot} for four tokens: a group's eight decoded vectors multiply each token's x pairs in 16-bit lanes, with
     * dot's integer group sums and dot's arithmetic after them, so results are the same bits as dot's. Spelled out, not
     * as loops over the group's halves and quads: 63 → 90 GMAC/s on one thread in cache (512×2048, Zen 5 VM).
     */
    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, p0 = a0, p1 = a0, p2 = a0, p3 = a0;
        float[] xScales = xBlocks.scales();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + D, LE);
            for (int g = 0; g < 16; g++) {
                int pp = (kb + 16 * g) / 2, m0 = x0 / 2 + pp, m1 = x1 / 2 + pp, m2 = x2 / 2 + pp, m3 = x3 / 2 + pp;
                long group = o + QS + (long) g * GROUP_BYTES;
                ShortVector w0 = ShortVector.fromMemorySegment(S32, w, group, LE), w1 = ShortVector.fromMemorySegment(S32, w, group + WORDS, LE);
                ShortVector b0 = (ShortVector) ByteVector.fromMemorySegment(B32, w, group + BYTES, LE).convertShape(VectorOperators.B2S, S32, 0);
                ShortVector b1 = (ShortVector) ByteVector.fromMemorySegment(B32, w, group + BYTES + 32, LE).convertShape(VectorOperators.B2S, S32, 0);
                ShortVector v0 = w0.lanewise(ASHR, 10), v1 = w0.lanewise(LSHL, 6).lanewise(ASHR, 10);
                ShortVector v2 = b0.lanewise(LSHL, 14).lanewise(ASHR, 10).or(w0.and((short) 15)), v3 = b0.lanewise(ASHR, 2);
                ShortVector v4 = w1.lanewise(ASHR, 10), v5 = w1.lanewise(LSHL, 6).lanewise(ASHR, 10);
                ShortVector v6 = b1.lanewise(LSHL, 14).lanewise(ASHR, 10).or(w1.and((short) 15)), v7 = b1.lanewise(ASHR, 2);
                ShortVector q0 = v0.mul(IntVector.broadcast(I512, pairs[m0]).reinterpretAsShorts())
                        .add(v1.mul(IntVector.broadcast(I512, pairs[m0 + 1]).reinterpretAsShorts()))
                        .add(v2.mul(IntVector.broadcast(I512, pairs[m0 + 2]).reinterpretAsShorts()))
                        .add(v3.mul(IntVector.broadcast(I512, pairs[m0 + 3]).reinterpretAsShorts()))
                        .add(v4.mul(IntVector.broadcast(I512, pairs[m0 + 4]).reinterpretAsShorts()))
                        .add(v5.mul(IntVector.broadcast(I512, pairs[m0 + 5]).reinterpretAsShorts()))
                        .add(v6.mul(IntVector.broadcast(I512, pairs[m0 + 6]).reinterpretAsShorts()))
                        .add(v7.mul(IntVector.broadcast(I512, pairs[m0 + 7]).reinterpretAsShorts()));
                ShortVector q1 = v0.mul(IntVector.broadcast(I512, pairs[m1]).reinterpretAsShorts())
                        .add(v1.mul(IntVector.broadcast(I512, pairs[m1 + 1]).reinterpretAsShorts()))
                        .add(v2.mul(IntVector.broadcast(I512, pairs[m1 + 2]).reinterpretAsShorts()))
                        .add(v3.mul(IntVector.broadcast(I512, pairs[m1 + 3]).reinterpretAsShorts()))
                        .add(v4.mul(IntVector.broadcast(I512, pairs[m1 + 4]).reinterpretAsShorts()))
                        .add(v5.mul(IntVector.broadcast(I512, pairs[m1 + 5]).reinterpretAsShorts()))
                        .add(v6.mul(IntVector.broadcast(I512, pairs[m1 + 6]).reinterpretAsShorts()))
                        .add(v7.mul(IntVector.broadcast(I512, pairs[m1 + 7]).reinterpretAsShorts()));
                ShortVector q2 = v0.mul(IntVector.broadcast(I512, pairs[m2]).reinterpretAsShorts())
                        .add(v1.mul(IntVector.broadcast(I512, pairs[m2 + 1]).reinterpretAsShorts()))
                        .add(v2.mul(IntVector.broadcast(I512, pairs[m2 + 2]).reinterpretAsShorts()))
                        .add(v3.mul(IntVector.broadcast(I512, pairs[m2 + 3]).reinterpretAsShorts()))
                        .add(v4.mul(IntVector.broadcast(I512, pairs[m2 + 4]).reinterpretAsShorts()))
                        .add(v5.mul(IntVector.broadcast(I512, pairs[m2 + 5]).reinterpretAsShorts()))
                        .add(v6.mul(IntVector.broadcast(I512, pairs[m2 + 6]).reinterpretAsShorts()))
                        .add(v7.mul(IntVector.broadcast(I512, pairs[m2 + 7]).reinterpretAsShorts()));
                ShortVector q3 = v0.mul(IntVector.broadcast(I512, pairs[m3]).reinterpretAsShorts())
                        .add(v1.mul(IntVector.broadcast(I512, pairs[m3 + 1]).reinterpretAsShorts()))
                        .add(v2.mul(IntVector.broadcast(I512, pairs[m3 + 2]).reinterpretAsShorts()))
                        .add(v3.mul(IntVector.broadcast(I512, pairs[m3 + 3]).reinterpretAsShorts()))
                        .add(v4.mul(IntVector.broadcast(I512, pairs[m3 + 4]).reinterpretAsShorts()))
                        .add(v5.mul(IntVector.broadcast(I512, pairs[m3 + 5]).reinterpretAsShorts()))
                        .add(v6.mul(IntVector.broadcast(I512, pairs[m3 + 6]).reinterpretAsShorts()))
                        .add(v7.mul(IntVector.broadcast(I512, pairs[m3 + 7]).reinterpretAsShorts()));
                // dot's order: the two groups of an x block as sum * (d * scale), then times the x scale into the sum.
                FloatVector sc = d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + SCALES + (long) g * ROWS, LE).convertShape(VectorOperators.B2F, F, 0));
                IntVector i0 = q0.reinterpretAsInts(), i1 = q1.reinterpretAsInts(), i2 = q2.reinterpretAsInts(), i3 = q3.reinterpretAsInts();
                FloatVector s0 = (FloatVector) i0.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i0.lanewise(ASHR, 16)).convert(I2F, 0);
                FloatVector s1 = (FloatVector) i1.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i1.lanewise(ASHR, 16)).convert(I2F, 0);
                FloatVector s2 = (FloatVector) i2.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i2.lanewise(ASHR, 16)).convert(I2F, 0);
                FloatVector s3 = (FloatVector) i3.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i3.lanewise(ASHR, 16)).convert(I2F, 0);
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

    @Override
    public void dequantizeRow(MemorySegment w, long panelOffset, int i, int cols, float[] out, int outOffset) {
        for (int kb = 0; kb < cols; kb += BLOCK) {
            long o = panelOffset + (long) (kb / BLOCK) * PANEL_BLOCK_BYTES;
            float d = w.get(F32, o + D + 4L * i);
            for (int k = 0; k < BLOCK; k++)
                out[outOffset + kb + k] = d * w.get(U8, o + SCALES + (k / 16) * ROWS + i) * value(w, o, k, i);
        }
    }
}
