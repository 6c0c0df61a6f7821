package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.NE;

/**
 * Q5_K panels: {@link Q4KPanels}' header (its four words per row: the f16 pair and the regrouped 6-bit fields) and its
 * 64 pair slices of the low nibbles, with the fifth bits in one plane per eight slices: 32 shorts, one per lane 2i + p
 * (row i, column parity p), whose bit k is the fifth bit of the k-th slice's low-nibble value there and bit 8 + k
 * that of its high-nibble value. After the header come eight groups of eight slices, each its plane (64 bytes) then
 * its slices (256 bytes), so a dot reads the block front to back: with the bits in one run after all the slices, a
 * one-token dot streamed from memory at a third of the speed (Zen 4: a 512-byte run of each block skipped and read
 * apart left the prefetcher behind; Q4_K panels with 512 unread bytes per block ran 7.7 against 16.9 GB/s on one
 * thread). 2816 bytes per 16 rows and 256 columns, the GGUF block's 176 a row.
 * <p>
 * A value q = n + 16 h (n the nibble, h the fifth bit), so a sub-block's Σ q·qx is Σ n·qx, as Q4_K's dots form it in
 * 16-bit lanes, plus 16 Σ qx over the values whose h is set: an and and a compare of the plane give a slice's 32-lane
 * mask, and a masked add of the broadcast x pair sums those x, at most 16 * 127 per lane. Both sums are added per row
 * in 32-bit lanes before the float tail, which is Q4_K's ({@code d*sc * x scale}, then {@code dmin*m} times -Σx).
 * Widening each value with its bit instead takes a shift, an and and an or per value where the mask takes one masked
 * add. The plane replaced one long per slice (bit 2i + p low, 32 + 2i + p high), read as a scalar and moved into a
 * mask register: on Zen 5 a one-token dot ran 27 against 33 GMAC/s in cache, and two threads streaming from memory 37
 * against 43.5 (a 64-bit vector load of the long instead was slower from memory, 8 GMAC/s on one thread).
 * <p>
 * Many tokens go through {@link Q5KGemm}, not a float GEMM on {@link #unpack}ed values: its integer sums are the dots',
 * so a prefill's rows are the bits its tokens get in a decode step, and a sequence's output does not depend on how its
 * prompt was batched.
 */
public final class Q5KPanels extends ValuePanels {
    static final PanelKernel INSTANCE = new Q5KPanels();
    static final int BLOCK_BYTES = 176;  // in the GGUF file: d, dmin, scales[12], qh[32], qs[128]
    private static final int GGUF_QH = 16, GGUF_QS = 48;
    /** The first group of slices, after the header; a group is a plane of fifth bits (a short per lane), then 8 pair slices. */
    static final int GROUPS = Q4KPanels.QS, PLANE_BYTES = 2 * 2 * ROWS, GROUP_BYTES = PLANE_BYTES + 8 * 32;
    static final int PANEL_BLOCK_BYTES = GROUPS + 8 * GROUP_BYTES;
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;

    private Q5KPanels() {
        super(PANEL_BLOCK_BYTES);
    }

    @Override
    void repackPanels(MemorySegment src, MemorySegment dst, int p0, int p1, int numBlocks) {
        long rowBytes = (long) numBlocks * BLOCK_BYTES;
        long[] x = new long[4];
        for (int p = p0; p < p1; p++)
            for (int b = 0; b < numBlocks; b++) {
                long s = (long) p * ROWS * rowBytes + (long) b * BLOCK_BYTES, d = ((long) p * numBlocks + b) * PANEL_BLOCK_BYTES;
                for (int i = 0; i < ROWS; i++) Q4KPanels.repackHeader(src, s + i * rowBytes, dst, d, i);
                for (int g = 0; g < 8; g++) PanelRepack.pairSlices(src, s, rowBytes, GGUF_QS + 16 * g, 8, dst, d + slice(8 * g), x);
                // Slice 16c + l holds qs byte 32c + 2l + p of each row: values 64c + 2l + p (low nibble) and 64c + 32 + 2l + p
                // (high), whose fifth bits are bits 2c and 2c + 1 of the row's qh[2l + p]. They go to bits k and 8 + k of the
                // lane's short in the plane of the slice's group, k = l % 8.
                for (int g = 0; g < 8; g++)
                    for (int lane = 0; lane < 2 * ROWS; lane++) {
                        int i = lane / 2, q = lane % 2, plane = 0;
                        for (int k = 0; k < 8; k++) {
                            int m = 8 * g + k, c = m / 16, l = m % 16;
                            int h = src.get(U8, s + i * rowBytes + GGUF_QH + 2 * l + q) & 0xff;
                            plane |= ((h >> (2 * c)) & 1) << k | ((h >> (2 * c + 1)) & 1) << (8 + k);
                        }
                        dst.set(I16, d + plane(g) + 2L * lane, (short) plane);
                    }
            }
    }

    @Override
    public void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset) {
        FloatVector acc = FloatVector.zero(F);
        float[] sums = xBlocks.int8Sums(), xScales = xBlocks.scales();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        // Each block's header loaded one block ahead, as in Q4KPanels.dot.
        IntVector nextDs = IntVector.fromMemorySegment(I, w, o + Q4KPanels.DS, LE), nextW1 = IntVector.fromMemorySegment(I, w, o + Q4KPanels.W1, LE);
        IntVector nextW2 = IntVector.fromMemorySegment(I, w, o + Q4KPanels.W2, LE), nextW3 = IntVector.fromMemorySegment(I, w, o + Q4KPanels.W3, LE);
        for (int xb = xOffset, end = xOffset + cols; xb < end; xb += BLOCK, o += PANEL_BLOCK_BYTES) {
            IntVector ds = nextDs, w1 = nextW1, w2 = nextW2, w3 = nextW3;
            long next = xb + BLOCK < end ? o + PANEL_BLOCK_BYTES : o;
            nextDs = IntVector.fromMemorySegment(I, w, next + Q4KPanels.DS, LE);
            nextW1 = IntVector.fromMemorySegment(I, w, next + Q4KPanels.W1, LE);
            nextW2 = IntVector.fromMemorySegment(I, w, next + Q4KPanels.W2, LE);
            nextW3 = IntVector.fromMemorySegment(I, w, next + Q4KPanels.W3, LE);
            // Q4KPanels.decodeScales' header decode, spelled out.
            FloatVector d = ds.lanewise(LSHL, 16).lanewise(ASHR, 3).and(0x8fffe000).reinterpretAsFloats().mul(0x1p112f);
            FloatVector dmin = ds.lanewise(ASHR, 3).and(0x8fffe000).reinterpretAsFloats().mul(0x1p112f);
            IntVector oddMins = w1.lanewise(LSHR, 24).or(w2.lanewise(LSHR, 16).and(0xff00)).or(w3.lanewise(LSHR, 8).and(0xff0000));
            for (int c = 0; c < 4; c++) {
                ShortVector s = ShortVector.zero(S32), h = s, sHigh = s, hHigh = s;
                int xc = xb + 64 * c, pl = xc / 2, ph = pl + 16;
                ShortVector plane = ShortVector.zero(S32);
                for (int l = 0; l < 16; l++) {
                    long m = 16L * c + l;
                    if ((l & 7) == 0) plane = ShortVector.fromMemorySegment(S32, w, o + plane(m >> 3), LE);
                    ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + slice(m), LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                    ShortVector xl = IntVector.broadcast(I512, pairs[pl + l]).reinterpretAsShorts();
                    ShortVector xh = IntVector.broadcast(I512, pairs[ph + l]).reinterpretAsShorts();
                    s = s.add(q.and((short) 15).mul(xl));
                    h = h.add(q.lanewise(LSHR, 4).mul(xh));
                    sHigh = sHigh.add(xl, plane.and((short) (1 << (l & 7))).compare(NE, 0));
                    hHigh = hHigh.add(xh, plane.and((short) (0x100 << (l & 7))).compare(NE, 0));
                }
                // As Q4KPanels.dot's tail, on Σ n·qx + 16 Σ qx (fifth bit set) per row.
                int shift = 6 * c, sb = xc / 32;
                IntVector i = s.reinterpretAsInts(), k = sHigh.reinterpretAsInts();
                FloatVector sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4)).convert(I2F, 0);
                acc = sum.fma(d.mul((FloatVector) w1.lanewise(LSHR, shift).and(63).convert(I2F, 0)).mul(xScales[sb]), acc);
                acc = dmin.mul((FloatVector) w3.lanewise(LSHR, shift).and(63).convert(I2F, 0)).fma(FloatVector.broadcast(F, -sums[sb]), acc);
                i = h.reinterpretAsInts();
                k = hHigh.reinterpretAsInts();
                sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4)).convert(I2F, 0);
                acc = sum.fma(d.mul((FloatVector) w2.lanewise(LSHR, shift).and(63).convert(I2F, 0)).mul(xScales[sb + 1]), acc);
                acc = dmin.mul((FloatVector) oddMins.lanewise(LSHR, shift).and(63).convert(I2F, 0)).fma(FloatVector.broadcast(F, -sums[sb + 1]), acc);
            }
        }
        acc.intoArray(out, outOffset);
    }

    /**
     * As {@link #dot} for four tokens: each widened pair slice and its two bit masks serve the four tokens, with dot's
     * integer sums per sub-block and dot's float tail, so results are the same bits as dot's. Written without helper
     * methods, as Q4_K's dot4: C2 boxes the vectors of a helper it declines to inline.
     */
    @Override
    public void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
                     int numTokens, float[] out, int o0, int outWidth) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        float[] sums = xBlocks.int8Sums(), xScales = xBlocks.scales();
        int[] pairs = xBlocks.pairs();
        long o = panelOffset;
        for (int kb = 0; kb < cols; kb += BLOCK, o += PANEL_BLOCK_BYTES) {
            IntVector ds = IntVector.fromMemorySegment(I, w, o + Q4KPanels.DS, LE);
            FloatVector d = ds.lanewise(LSHL, 16).lanewise(ASHR, 3).and(0x8fffe000).reinterpretAsFloats().mul(0x1p112f);
            FloatVector dmin = ds.lanewise(ASHR, 3).and(0x8fffe000).reinterpretAsFloats().mul(0x1p112f);
            for (int c = 0; c < 4; c++) {
                ShortVector s0 = ShortVector.zero(S32), s1 = s0, s2 = s0, s3 = s0, h0 = s0, h1 = s0, h2 = s0, h3 = s0;
                ShortVector t0 = s0, t1 = s0, t2 = s0, t3 = s0, u0 = s0, u1 = s0, u2 = s0, u3 = s0;
                int kc = kb + 64 * c, p0 = (x0 + kc) / 2, p1 = (x1 + kc) / 2, p2 = (x2 + kc) / 2, p3 = (x3 + kc) / 2;
                ShortVector plane = ShortVector.zero(S32);
                for (int l = 0; l < 16; l++) {
                    long m = 16L * c + l;
                    if ((l & 7) == 0) plane = ShortVector.fromMemorySegment(S32, w, o + plane(m >> 3), LE);
                    ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + slice(m), LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                    ShortVector lo = q.and((short) 15), hi = q.lanewise(LSHR, 4);
                    VectorMask<Short> loHigh = plane.and((short) (1 << (l & 7))).compare(NE, 0);
                    VectorMask<Short> hiHigh = plane.and((short) (0x100 << (l & 7))).compare(NE, 0);
                    ShortVector xv = IntVector.broadcast(I512, pairs[p0 + l]).reinterpretAsShorts();
                    s0 = s0.add(lo.mul(xv));
                    t0 = t0.add(xv, loHigh);
                    xv = IntVector.broadcast(I512, pairs[p0 + 16 + l]).reinterpretAsShorts();
                    h0 = h0.add(hi.mul(xv));
                    u0 = u0.add(xv, hiHigh);
                    xv = IntVector.broadcast(I512, pairs[p1 + l]).reinterpretAsShorts();
                    s1 = s1.add(lo.mul(xv));
                    t1 = t1.add(xv, loHigh);
                    xv = IntVector.broadcast(I512, pairs[p1 + 16 + l]).reinterpretAsShorts();
                    h1 = h1.add(hi.mul(xv));
                    u1 = u1.add(xv, hiHigh);
                    xv = IntVector.broadcast(I512, pairs[p2 + l]).reinterpretAsShorts();
                    s2 = s2.add(lo.mul(xv));
                    t2 = t2.add(xv, loHigh);
                    xv = IntVector.broadcast(I512, pairs[p2 + 16 + l]).reinterpretAsShorts();
                    h2 = h2.add(hi.mul(xv));
                    u2 = u2.add(xv, hiHigh);
                    xv = IntVector.broadcast(I512, pairs[p3 + l]).reinterpretAsShorts();
                    s3 = s3.add(lo.mul(xv));
                    t3 = t3.add(xv, loHigh);
                    xv = IntVector.broadcast(I512, pairs[p3 + 16 + l]).reinterpretAsShorts();
                    h3 = h3.add(hi.mul(xv));
                    u3 = u3.add(xv, hiHigh);
                }
                // d*sc and dmin*m of sub-blocks 2c and 2c + 1 as Q4KPanels.decodeScales makes them, once for the four
                // tokens (decoded here from the header words: through decodeScales' array prefill ran 4% slower); per
                // token dot's order.
                int shift = 6 * c;
                IntVector w1 = IntVector.fromMemorySegment(I, w, o + Q4KPanels.W1, LE), w2 = IntVector.fromMemorySegment(I, w, o + Q4KPanels.W2, LE);
                IntVector w3 = IntVector.fromMemorySegment(I, w, o + Q4KPanels.W3, LE);
                FloatVector dl = d.mul((FloatVector) w1.lanewise(LSHR, shift).and(63).convert(I2F, 0));
                FloatVector dh = d.mul((FloatVector) w2.lanewise(LSHR, shift).and(63).convert(I2F, 0));
                FloatVector ml = dmin.mul((FloatVector) w3.lanewise(LSHR, shift).and(63).convert(I2F, 0));
                FloatVector mh = dmin.mul((FloatVector) w1.lanewise(LSHR, 24).or(w2.lanewise(LSHR, 16).and(0xff00)).or(w3.lanewise(LSHR, 8).and(0xff0000))
                        .lanewise(LSHR, shift).and(63).convert(I2F, 0));
                int b0 = (x0 + kc) / 32, b1 = (x1 + kc) / 32, b2 = (x2 + kc) / 32, b3 = (x3 + kc) / 32;
                IntVector i = s0.reinterpretAsInts(), k = t0.reinterpretAsInts();
                FloatVector sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4)).convert(I2F, 0);
                a0 = ml.fma(FloatVector.broadcast(F, -sums[b0]), sum.fma(dl.mul(xScales[b0]), a0));
                i = h0.reinterpretAsInts();
                k = u0.reinterpretAsInts();
                sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4)).convert(I2F, 0);
                a0 = mh.fma(FloatVector.broadcast(F, -sums[b0 + 1]), sum.fma(dh.mul(xScales[b0 + 1]), a0));
                i = s1.reinterpretAsInts();
                k = t1.reinterpretAsInts();
                sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4)).convert(I2F, 0);
                a1 = ml.fma(FloatVector.broadcast(F, -sums[b1]), sum.fma(dl.mul(xScales[b1]), a1));
                i = h1.reinterpretAsInts();
                k = u1.reinterpretAsInts();
                sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4)).convert(I2F, 0);
                a1 = mh.fma(FloatVector.broadcast(F, -sums[b1 + 1]), sum.fma(dh.mul(xScales[b1 + 1]), a1));
                i = s2.reinterpretAsInts();
                k = t2.reinterpretAsInts();
                sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4)).convert(I2F, 0);
                a2 = ml.fma(FloatVector.broadcast(F, -sums[b2]), sum.fma(dl.mul(xScales[b2]), a2));
                i = h2.reinterpretAsInts();
                k = u2.reinterpretAsInts();
                sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4)).convert(I2F, 0);
                a2 = mh.fma(FloatVector.broadcast(F, -sums[b2 + 1]), sum.fma(dh.mul(xScales[b2 + 1]), a2));
                i = s3.reinterpretAsInts();
                k = t3.reinterpretAsInts();
                sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4)).convert(I2F, 0);
                a3 = ml.fma(FloatVector.broadcast(F, -sums[b3]), sum.fma(dl.mul(xScales[b3]), a3));
                i = h3.reinterpretAsInts();
                k = u3.reinterpretAsInts();
                sum = (FloatVector) i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16))
                        .add(k.lanewise(LSHL, 16).lanewise(ASHR, 16).add(k.lanewise(ASHR, 16)).lanewise(LSHL, 4)).convert(I2F, 0);
                a3 = mh.fma(FloatVector.broadcast(F, -sums[b3 + 1]), sum.fma(dh.mul(xScales[b3 + 1]), a3));
            }
        }
        a0.intoArray(out, o0);
        if (numTokens > 1) a1.intoArray(out, o0 + outWidth);
        if (numTokens > 2) a2.intoArray(out, o0 + 2 * outWidth);
        if (numTokens > 3) a3.intoArray(out, o0 + 3 * outWidth);
    }

    @Override
    public IntegerGemm.Kernel integerGemm() {
        return Q5KGemm.INSTANCE;
    }

    /** Offset in a panel block of pair slice m (0..63). */
    private static long slice(long m) {
        return GROUPS + GROUP_BYTES * (m >> 3) + PLANE_BYTES + 32 * (m & 7);
    }

    /** Offset in a panel block of the fifth-bit plane of slice group g (0..7). */
    private static long plane(long g) {
        return GROUPS + GROUP_BYTES * g;
    }

    /** Row i's value at column k, as Q5KRows.dequantize computes it (d*sc * q - dmin*m), so the two are equal. */
    @Override
    float value(MemorySegment w, long panelOffset, int i, int k) {
        long o = panelOffset + (long) (k / BLOCK) * PANEL_BLOCK_BYTES;
        int col = k % BLOCK, c = col / 64, high = (col % 64) / 32, l = col % 32, j = 2 * c + high;
        long m = 16L * c + l / 2;
        int lane = 2 * i + (l & 1), qs = w.get(U8, o + slice(m) + lane) & 0xff;
        int plane = w.get(I16, o + plane(m >> 3) + 2L * lane);
        int q = (high == 0 ? qs & 0x0f : qs >> 4) | (plane >> (8 * high + (int) (m & 7)) & 1) << 4;
        return Q4KPanels.d(w, o, i) * Q4KPanels.scale(w, o, i, j) * q - Q4KPanels.dmin(w, o, i) * Q4KPanels.min(w, o, i, j);
    }
}
