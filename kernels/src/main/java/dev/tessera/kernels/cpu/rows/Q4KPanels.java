package dev.tessera.kernels.cpu.rows;

import dev.tessera.kernels.CorruptTensorException;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;
import static dev.tessera.kernels.cpu.rows.VectorLanes.xPair;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

/**
 * Q4_K panels: per 16-row panel and 256-column block, 2304 bytes, the GGUF block's 144 a row: a header of four 32-bit
 * words per row ([word][row], so one int vector holds a word of all 16 rows), then 64 pair slices of 32 bytes where
 * slice 16c + l holds, at byte 2i + p, qs byte 32c + 2l + p of row i: its low nibble is column 64c + 2l + p, its high
 * nibble column 64c + 32 + 2l + p. Header word 0 is the GGUF pair (f16 d, f16 dmin). Words 1-3 regroup the 6-bit scales
 * sc and mins m of the eight sub-blocks by the dots' loop over c, the 64-column pairs of sub-blocks 2c and 2c + 1: bits
 * 6c of word 1 hold sc of sub-block 2c, of word 2 sc of 2c + 1, of word 3 m of 2c, and the top bytes of words 1, 2
 * and 3 together the 24 bits of the mins of 2c + 1. A shift and an and give any field in int lanes.
 * <p>
 * Earlier panels held d and dmin as floats and the scales and mins as bytes, 5.6% over the GGUF block, because decoding
 * the header per block was thought to cost the dot its speed. Decoded from these words it does not: one thread with
 * the matrix in cache ran 36.5 against 35.9 GMAC/s (8192×2048), and two threads streaming 24 such matrices from memory
 * 55.9-62.9 against 51.9-58.5 GMAC/s (four runs each, interleaved, Zen 4). GGUF's own packing decodes sub-blocks
 * 0-3 and 4-7 differently, and bytes per field (zero-extended, shifted, or-ed) ran 33.0 GMAC/s in cache. The f16
 * pair widens by shifts alone, exact for every finite half, so a block with an Inf or NaN d or dmin is refused at
 * repack ({@link CorruptTensorException}, as llama.cpp's row validation does).
 * <p>
 * The dots take x as int8 ({@link #needsInt8}, as llama.cpp's q8_K activations): a pair slice widens into 32 short
 * lanes (row i, column parity p) and multiplies a broadcast int holding the int8 x of the two columns, summed in
 * 16-bit lanes over the 16 pair slices of a 32-column sub-block (at most 16 * 15 * 127 = 30480). That is half the
 * vector instructions of widening every value to a float, and the dot is bound by them even with the weights
 * streamed from memory. A value is d*sc * q - dmin*m, so a sub-block's sum is d*sc * scale * Σ q·qx - dmin*m * scale *
 * Σ qx, the min term taking the block sums of the int8 x ({@link ActivationBlocks#int8Sums}). Per token the
 * arithmetic is the same in {@link #dot}, {@link #dot4} and {@link #dot8}, so batching changes no result.
 */
public final class Q4KPanels extends SuperBlockPanels {
    static final PanelKernel INSTANCE = new Q4KPanels();
    static final int BLOCK_BYTES = 144;  // in the GGUF file
    /** Header words: (d, dmin) as f16, then the scale and min fields (see above). */
    static final int DS = 0, W1 = 4 * ROWS, W2 = 8 * ROWS, W3 = 12 * ROWS, QS = 16 * ROWS;
    static final int PANEL_BLOCK_BYTES = QS + 128 * ROWS;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128, B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    /** Per thread: one block's decoded d*sc and dmin*m, [2][8 sub-blocks][16 rows]. */
    private static final ThreadLocal<float[]> SCALES = ThreadLocal.withInitial(() -> new float[256]);

    private Q4KPanels() {
        super(PANEL_BLOCK_BYTES);
    }

    @Override
    void repackPanels(MemorySegment src, MemorySegment dst, int p0, int p1, int numBlocks) {
        long rowBytes = (long) numBlocks * BLOCK_BYTES;
        long[] x = new long[4];
        for (int p = p0; p < p1; p++)
            for (int b = 0; b < numBlocks; b++) {
                long s = (long) p * ROWS * rowBytes + (long) b * BLOCK_BYTES, d = ((long) p * numBlocks + b) * PANEL_BLOCK_BYTES;
                for (int i = 0; i < ROWS; i++) repackHeader(src, s + i * rowBytes, dst, d, i);
                PanelRepack.pairSlices(src, s, rowBytes, 16, 64, dst, d + QS, x);  // qs: bytes 16..143 of each row
            }
    }

    /** Row i's header words (see the class comment) from the GGUF block at {@code r} into the panel block at {@code d}. */
    static void repackHeader(MemorySegment src, long r, MemorySegment dst, long d, int i) {
        int ds = src.get(I32, r);
        // The dots widen the f16 pair with shifts alone, which keeps a finite value finite and nothing else: a block
        // whose d or dmin is Inf or NaN is corrupt (llama.cpp's quantizers never write one), so it is refused here.
        if ((ds & 0x7c00) == 0x7c00 || (ds & 0x7c000000) == 0x7c000000)
            throw new CorruptTensorException(String.format("Q4_K block with a non-finite d or dmin (f16 0x%04x, 0x%04x): the tensor data is corrupt",
                    ds & 0xffff, ds >>> 16));
        int w1 = 0, w2 = 0, w3 = 0, oddMins = 0;
        for (int c = 0; c < 4; c++) {
            w1 |= Q4KRows.scale(src, r + 4, 2 * c) << 6 * c;
            w2 |= Q4KRows.scale(src, r + 4, 2 * c + 1) << 6 * c;
            w3 |= Q4KRows.min(src, r + 4, 2 * c) << 6 * c;
            oddMins |= Q4KRows.min(src, r + 4, 2 * c + 1) << 6 * c;
        }
        dst.set(I32, d + DS + 4L * i, ds);
        dst.set(I32, d + W1 + 4L * i, w1 | oddMins << 24);
        dst.set(I32, d + W2 + 4L * i, w2 | (oddMins >>> 8) << 24);
        dst.set(I32, d + W3 + 4L * i, w3 | (oddMins >>> 16) << 24);
    }

    /** Row i's d (GGUF's f16, widened) from the header of the panel block at {@code o}. */
    static float d(MemorySegment w, long o, int i) {
        return Float.float16ToFloat(w.get(I16, o + DS + 4L * i));
    }

    /** Row i's dmin, as {@link #d}. */
    static float dmin(MemorySegment w, long o, int i) {
        return Float.float16ToFloat(w.get(I16, o + DS + 4L * i + 2));
    }

    /** Row i's 6-bit scale of sub-block j from the header of the panel block at {@code o}. */
    static int scale(MemorySegment w, long o, int i, int j) {
        return (w.get(I32, o + ((j & 1) == 0 ? W1 : W2) + 4L * i) >>> 6 * (j / 2)) & 63;
    }

    /** Row i's 6-bit min of sub-block j, as {@link #scale}. */
    static int min(MemorySegment w, long o, int i, int j) {
        if ((j & 1) == 0) return (w.get(I32, o + W3 + 4L * i) >>> 6 * (j / 2)) & 63;
        int oddMins = w.get(I32, o + W1 + 4L * i) >>> 24 | (w.get(I32, o + W2 + 4L * i) >>> 24) << 8 | (w.get(I32, o + W3 + 4L * i) >>> 24) << 16;
        return (oddMins >>> 6 * (j / 2)) & 63;
    }

    @Override
    public IntegerGemm.Kernel integerGemm() {
        return Q4KGemm.INSTANCE;
    }

    /** Pair slice m of the block at {@code o}, zero-extended: lane 2i + p is qs byte 2(m % 16) + p of row i's sub-block pair m / 16. */
    private static ShortVector pairSlice(MemorySegment w, long o, int m) {
        return (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * m, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
    }

    /**
     * Writes d*sc (at 16j) and dmin*m (at 128 + 16j) of sub-blocks j = 0..7 for the 16 rows into {@code scales}. The f16
     * pair widens by shifts: the magnitude bits moved into a float's exponent and mantissa give a float 2^112 times too
     * small, normal or subnormal, and an arithmetic shift carries the sign (repackHeader refuses Inf and NaN).
     */
    static void decodeScales(MemorySegment w, long o, float[] scales) {
        IntVector ds = IntVector.fromMemorySegment(I, w, o + DS, LE);
        FloatVector d = ds.lanewise(LSHL, 16).lanewise(ASHR, 3).and(0x8fffe000).reinterpretAsFloats().mul(0x1p112f);
        FloatVector dmin = ds.lanewise(ASHR, 3).and(0x8fffe000).reinterpretAsFloats().mul(0x1p112f);
        IntVector w1 = IntVector.fromMemorySegment(I, w, o + W1, LE), w2 = IntVector.fromMemorySegment(I, w, o + W2, LE);
        IntVector w3 = IntVector.fromMemorySegment(I, w, o + W3, LE);
        IntVector oddMins = w1.lanewise(LSHR, 24).or(w2.lanewise(LSHR, 16).and(0xff00)).or(w3.lanewise(LSHR, 8).and(0xff0000));
        for (int c = 0; c < 4; c++) {
            int shift = 6 * c;
            d.mul((FloatVector) w1.lanewise(LSHR, shift).and(63).convert(I2F, 0)).intoArray(scales, 32 * c);
            d.mul((FloatVector) w2.lanewise(LSHR, shift).and(63).convert(I2F, 0)).intoArray(scales, 32 * c + 16);
            dmin.mul((FloatVector) w3.lanewise(LSHR, shift).and(63).convert(I2F, 0)).intoArray(scales, 128 + 32 * c);
            dmin.mul((FloatVector) oddMins.lanewise(LSHR, shift).and(63).convert(I2F, 0)).intoArray(scales, 128 + 32 * c + 16);
        }
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0) {
        float[] scales = SCALES.get();
        for (int k = k0; k < k0 + kn; k += 32) {
            long o = panelOffset + (long) (k / BLOCK) * PANEL_BLOCK_BYTES;
            int j = (k % BLOCK) / 32, c = j / 2, shift = 4 * (j & 1);
            if (k == k0 || j == 0) decodeScales(w, o, scales);
            FloatVector d = FloatVector.fromArray(F, scales, 16 * j), m = FloatVector.fromArray(F, scales, 128 + 16 * j);
            int at = (k - k0) * stride + col0;
            for (int l = 0; l < 16; l++, at += 2 * stride) {
                IntVector q = pairSlice(w, o, 16 * c + l).reinterpretAsInts();
                FloatVector even = nibble(q, shift), odd = nibble(q, 16 + shift);
                // d*sc * q - dmin*m, unfused as in the row kernel, so the values are equal.
                d.mul(even).sub(m).intoMemorySegment(packed, 4L * at, NATIVE);
                d.mul(odd).sub(m).intoMemorySegment(packed, 4L * (at + stride), NATIVE);
            }
        }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        float[] sums = xBlocks.int8Sums(), xScales = xBlocks.scales();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        int touched = 0;
        // Each block's header is loaded one block ahead: every FMA of a block waits on it, and streamed from memory
        // its miss otherwise stalls the block's start (the last block loads its own header again).
        IntVector nextDs = IntVector.fromMemorySegment(I, w, o + DS, LE), nextW1 = IntVector.fromMemorySegment(I, w, o + W1, LE);
        IntVector nextW2 = IntVector.fromMemorySegment(I, w, o + W2, LE), nextW3 = IntVector.fromMemorySegment(I, w, o + W3, LE);
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            touched += CacheLines.touch(w, o, o + PANEL_BLOCK_BYTES);
            IntVector ds = nextDs, w1 = nextW1, w2 = nextW2, w3 = nextW3;
            long next = xb + BLOCK < end ? o + PANEL_BLOCK_BYTES : o;
            nextDs = IntVector.fromMemorySegment(I, w, next + DS, LE);
            nextW1 = IntVector.fromMemorySegment(I, w, next + W1, LE);
            nextW2 = IntVector.fromMemorySegment(I, w, next + W2, LE);
            nextW3 = IntVector.fromMemorySegment(I, w, next + W3, LE);
            // The header as decodeScales decodes it, spelled out.
            FloatVector d = ds.lanewise(LSHL, 16).lanewise(ASHR, 3).and(0x8fffe000).reinterpretAsFloats().mul(0x1p112f);
            FloatVector dmin = ds.lanewise(ASHR, 3).and(0x8fffe000).reinterpretAsFloats().mul(0x1p112f);
            IntVector oddMins = w1.lanewise(LSHR, 24).or(w2.lanewise(LSHR, 16).and(0xff00)).or(w3.lanewise(LSHR, 8).and(0xff0000));
            for (int c = 0; c < 4; c++) {
                ShortVector s = ShortVector.zero(S32), h = s;
                int xc = xb + 64 * c, pl = xc / 2, ph = pl + 16;
                for (int l = 0; l < 16; l++) {
                    ShortVector q = pairSlice(w, o, 16 * c + l);
                    s = s.add(q.and((short) 15).mul(xPair(pairs[pl + l])));
                    h = h.add(q.lanewise(VectorOperators.LSHR, 4).mul(xPair(pairs[ph + l])));
                }
                // The tail of sub-blocks 2c and 2c + 1 as dot4's, without a helper method (see dot4).
                int shift = 6 * c, sb = xc / 32;
                IntVector i = s.reinterpretAsInts();
                FloatVector sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16)).convert(I2F, 0);
                acc = sum.fma(d.mul((FloatVector) w1.lanewise(LSHR, shift).and(63).convert(I2F, 0)).mul(xScales[sb]), acc);
                acc = dmin.mul((FloatVector) w3.lanewise(LSHR, shift).and(63).convert(I2F, 0)).fma(FloatVector.broadcast(F, -sums[sb]), acc);
                i = h.reinterpretAsInts();
                sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16)).convert(I2F, 0);
                acc = sum.fma(d.mul((FloatVector) w2.lanewise(LSHR, shift).and(63).convert(I2F, 0)).mul(xScales[sb + 1]), acc);
                acc = dmin.mul((FloatVector) oddMins.lanewise(LSHR, shift).and(63).convert(I2F, 0)).fma(FloatVector.broadcast(F, -sums[sb + 1]), acc);
            }
        }
        acc.intoArray(out, outOffset);
        CacheLines.keep(touched);
    }

    /**
     * As {@link #dot} for four tokens: each widened pair slice's nibbles multiply the four tokens' x pairs in 16-bit
     * lanes, with the same integer sums per sub-block as dot, and what follows is dot's arithmetic, so results are the
     * same bits as dot's. Widening each value to a float for four FMAs instead ran 49-51 GMAC/s per thread, this 78-91
     * (8192×2048; eight tokens, two passes, 45-52 against 58-63). No helper method of ours is called with or for a
     * vector here: C2 counts nodes as it parses, and a helper it then declines to inline boxes its vectors.
     */
    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        float[] scales = SCALES.get(), sums = xBlocks.int8Sums(), xScales = xBlocks.scales();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            decodeScales(w, o, scales);
            for (int c = 0; c < 4; c++) {
                ShortVector s0 = ShortVector.zero(S32), s1 = s0, s2 = s0, s3 = s0, h0 = s0, h1 = s0, h2 = s0, h3 = s0;
                int kc = kb + 64 * c, p0 = (x0 + kc) / 2, p1 = (x1 + kc) / 2, p2 = (x2 + kc) / 2, p3 = (x3 + kc) / 2;
                for (int l = 0; l < 16; l++) {
                    ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + QS + 32L * (16 * c + l), LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                    ShortVector lo = q.and((short) 15), hi = q.lanewise(VectorOperators.LSHR, 4);
                    s0 = s0.add(lo.mul(IntVector.broadcast(I512, pairs[p0 + l]).reinterpretAsShorts()));
                    h0 = h0.add(hi.mul(IntVector.broadcast(I512, pairs[p0 + 16 + l]).reinterpretAsShorts()));
                    s1 = s1.add(lo.mul(IntVector.broadcast(I512, pairs[p1 + l]).reinterpretAsShorts()));
                    h1 = h1.add(hi.mul(IntVector.broadcast(I512, pairs[p1 + 16 + l]).reinterpretAsShorts()));
                    s2 = s2.add(lo.mul(IntVector.broadcast(I512, pairs[p2 + l]).reinterpretAsShorts()));
                    h2 = h2.add(hi.mul(IntVector.broadcast(I512, pairs[p2 + 16 + l]).reinterpretAsShorts()));
                    s3 = s3.add(lo.mul(IntVector.broadcast(I512, pairs[p3 + l]).reinterpretAsShorts()));
                    h3 = h3.add(hi.mul(IntVector.broadcast(I512, pairs[p3 + 16 + l]).reinterpretAsShorts()));
                }
                // d*sc and dmin*m of sub-blocks 2c and 2c + 1, loaded once for the four tokens; per token dot's order:
                // the low sub-block's sum and min, then the high one's. Row sums as VectorLanes.rowSums, spelled out.
                FloatVector dl = FloatVector.fromArray(F, scales, 32 * c), dh = FloatVector.fromArray(F, scales, 32 * c + 16);
                FloatVector ml = FloatVector.fromArray(F, scales, 128 + 32 * c), mh = FloatVector.fromArray(F, scales, 128 + 32 * c + 16);
                int b0 = (x0 + kc) / 32, b1 = (x1 + kc) / 32, b2 = (x2 + kc) / 32, b3 = (x3 + kc) / 32;
                IntVector i = s0.reinterpretAsInts(), j = h0.reinterpretAsInts();
                a0 = ml.fma(FloatVector.broadcast(F, -sums[b0]), ((FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(dl.mul(xScales[b0]), a0));
                a0 = mh.fma(FloatVector.broadcast(F, -sums[b0 + 1]), ((FloatVector) j.lanewise(LSHL, 16).lanewise(ASHR, 16).add(j.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(dh.mul(xScales[b0 + 1]), a0));
                i = s1.reinterpretAsInts();
                j = h1.reinterpretAsInts();
                a1 = ml.fma(FloatVector.broadcast(F, -sums[b1]), ((FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(dl.mul(xScales[b1]), a1));
                a1 = mh.fma(FloatVector.broadcast(F, -sums[b1 + 1]), ((FloatVector) j.lanewise(LSHL, 16).lanewise(ASHR, 16).add(j.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(dh.mul(xScales[b1 + 1]), a1));
                i = s2.reinterpretAsInts();
                j = h2.reinterpretAsInts();
                a2 = ml.fma(FloatVector.broadcast(F, -sums[b2]), ((FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(dl.mul(xScales[b2]), a2));
                a2 = mh.fma(FloatVector.broadcast(F, -sums[b2 + 1]), ((FloatVector) j.lanewise(LSHL, 16).lanewise(ASHR, 16).add(j.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(dh.mul(xScales[b2 + 1]), a2));
                i = s3.reinterpretAsInts();
                j = h3.reinterpretAsInts();
                a3 = ml.fma(FloatVector.broadcast(F, -sums[b3]), ((FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(dl.mul(xScales[b3]), a3));
                a3 = mh.fma(FloatVector.broadcast(F, -sums[b3 + 1]), ((FloatVector) j.lanewise(LSHL, 16).lanewise(ASHR, 16).add(j.lanewise(ASHR, 16))
                        .convert(I2F, 0)).fma(dh.mul(xScales[b3 + 1]), a3));
            }
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    /** The 4-bit field at bit {@code shift} of each int lane (row i's pair of bytes) as floats. */
    private static FloatVector nibble(IntVector q, int shift) {
        return (FloatVector) q.lanewise(VectorOperators.LSHR, shift).and(15).convert(VectorOperators.I2F, 0);
    }

    @Override
    public void dequantizeRow(MemorySegment w, long panelOffset, int i, int cols, float[] out, int outOffset) {
        for (int kb = 0; kb < cols; kb += BLOCK) {
            long o = panelOffset + (long) (kb / BLOCK) * PANEL_BLOCK_BYTES;
            float d = d(w, o, i), dmin = dmin(w, o, i);
            for (int c = 0; c < 4; c++) {
                // As Q4KRows.dequantize: d*sc * q - dmin*m per sub-block, so the values are equal.
                float d1 = d * scale(w, o, i, 2 * c), m1 = dmin * min(w, o, i, 2 * c);
                float d2 = d * scale(w, o, i, 2 * c + 1), m2 = dmin * min(w, o, i, 2 * c + 1);
                int oc = outOffset + kb + 64 * c;
                for (int l = 0; l < 32; l++) {
                    int q = w.get(U8, o + QS + 32L * (16 * c + l / 2) + 2 * i + (l & 1)) & 0xff;
                    out[oc + l] = d1 * (q & 0x0f) - m1;
                    out[oc + 32 + l] = d2 * (q >> 4) - m2;
                }
            }
        }
    }
}
