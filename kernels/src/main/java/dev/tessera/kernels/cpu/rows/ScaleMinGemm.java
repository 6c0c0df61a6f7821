package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

/**
 * The many-token (prefill) matmul of the K-quants whose 32-column sub-blocks each have a d*sc and a dmin*m per row
 * ({@link Q4KGemm}, {@link Q5KGemm}), in 16-bit integer lanes, shaped as {@link Q4_0Gemm}: a block of 256 columns of
 * three panels (48 rows) is unpacked once into pair vectors (32 shorts, lane 2i + p holding row i's value at column
 * 2c + p, less the type's {@link #valueOffset}) and its sub-blocks' d*sc and dmin*m; each pair vector then multiplies
 * four tokens' broadcast x pairs, summed per sub-block in 16-bit lanes (16 products per lane: Q4_K's 0..15 times at most
 * 127 is 30480, and Q5_K's 0..31 less 16 at most 32512). A float GEMM on the unpacked values is bound by its FMAs;
 * 16-bit multiplies and adds issue on other pipes.
 * <p>
 * A sub-block's sum then takes the dots' arithmetic ({@link Q4KPanels#dot}, {@link Q5KPanels#dot}): the row's two lanes
 * added in 32 bits (their sum may pass 16 bits, so each lane is sign-extended first), plus the offset times the x
 * block's int8 total, which makes it the dot's integer Σq·qx; as a float, times d*sc * x scale into the running sum,
 * then dmin*m times -Σqx. Every token's row is the same bits as its dot alone, whatever the batch.
 * <p>
 * The pack (from the caller, at least {@link #PACK_BYTES}): pair vector (c, v) at {@code 64 (3c + v)}, then d*sc of
 * sub-block j and panel v at {@code SCALES + 64 (3j + v)}, dmin*m at {@code MINS + 64 (3j + v)}. A type's
 * {@link #unpack} fills the pair vectors and calls {@link #unpackScales} for the rest.
 */
abstract class ScaleMinGemm implements IntegerGemm.Kernel {
    static final int BLOCK = Q4KPanels.BLOCK;
    static final int VECTORS = IntegerGemm.VECTORS;
    private static final long SCALES = 64L * VECTORS * (BLOCK / 2), MINS = SCALES + 64L * VECTORS * 8;
    static final long PACK_BYTES = MINS + 64L * VECTORS * 8;
    static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I32 = IntVector.SPECIES_512;
    /** What unpack took from every value, given back per sub-block as this times Σqx. */
    private final int valueOffset;

    ScaleMinGemm(int valueOffset) {
        this.valueOffset = valueOffset;
    }

    @Override
    public final int kChunk() {
        return BLOCK;
    }

    @Override
    public final long packBytes() {
        return PACK_BYTES;
    }

    /** d*sc and dmin*m of the panel block at {@code o} (Q4KPanels' header) into slot v, as Q4KPanels.decodeScales makes them. */
    static void unpackScales(MemorySegment w, long o, MemorySegment pack, int v) {
        IntVector ds = IntVector.fromMemorySegment(I32, w, o + Q4KPanels.DS, LE);
        FloatVector d = ds.lanewise(LSHL, 16).lanewise(ASHR, 3).and(0x8fffe000).reinterpretAsFloats().mul(0x1p112f);
        FloatVector dmin = ds.lanewise(ASHR, 3).and(0x8fffe000).reinterpretAsFloats().mul(0x1p112f);
        IntVector w1 = IntVector.fromMemorySegment(I32, w, o + Q4KPanels.W1, LE), w2 = IntVector.fromMemorySegment(I32, w, o + Q4KPanels.W2, LE);
        IntVector w3 = IntVector.fromMemorySegment(I32, w, o + Q4KPanels.W3, LE);
        IntVector oddMins = w1.lanewise(LSHR, 24).or(w2.lanewise(LSHR, 16).and(0xff00))
                .or(w3.lanewise(LSHR, 8).and(0xff0000));
        for (int c = 0; c < 4; c++) {
            int shift = 6 * c;
            long even = 64L * (VECTORS * 2 * c + v), odd = 64L * (VECTORS * (2 * c + 1) + v);
            d.mul((FloatVector) w1.lanewise(LSHR, shift).and(63).convert(I2F, 0)).intoMemorySegment(pack, SCALES + even, NATIVE);
            d.mul((FloatVector) w2.lanewise(LSHR, shift).and(63).convert(I2F, 0)).intoMemorySegment(pack, SCALES + odd, NATIVE);
            dmin.mul((FloatVector) w3.lanewise(LSHR, shift).and(63).convert(I2F, 0)).intoMemorySegment(pack, MINS + even, NATIVE);
            dmin.mul((FloatVector) oddMins.lanewise(LSHR, shift).and(63).convert(I2F, 0)).intoMemorySegment(pack, MINS + odd, NATIVE);
        }
    }

    @Override
    public final void clear(MemorySegment pack, int kn, int v) {
        ShortVector zero = ShortVector.zero(S32);
        for (int c = 0; c < BLOCK / 2; c++) zero.intoMemorySegment(pack, 64L * (VECTORS * c + v), NATIVE);
        for (int j = 0; j < 8; j++) {
            FloatVector.zero(F).intoMemorySegment(pack, SCALES + 64L * (VECTORS * j + v), NATIVE);
            FloatVector.zero(F).intoMemorySegment(pack, MINS + 64L * (VECTORS * j + v), NATIVE);
        }
    }

    /**
     * One 256-column block for four tokens (x offsets x0..x3, later ones may repeat the last of n) and three panels:
     * twelve 16-bit and twelve float accumulators, three weight vectors and a broadcast, as in Q4_0Gemm. Written without
     * helper methods: C2 counts nodes as it parses, and a helper it then declines to inline boxes its vectors.
     */
    @Override
    public final void chunk(MemorySegment pack, int kn, int k0, ActivationBlocks xBlocks, int x0, int x1, int x2, int x3, int n, int vectors,
                      float[] out, int o0, int outWidth) {
        int[] pairs = xBlocks.pairs();
        float[] xScales = xBlocks.scales(), sums = xBlocks.int8Sums();
        int[] totals = xBlocks.int8Totals();
        int o1 = o0 + Math.min(1, n - 1) * outWidth, o2 = o0 + Math.min(2, n - 1) * outWidth, o3 = o0 + (n - 1) * outWidth;
        FloatVector fA0 = FloatVector.zero(F), fA1 = fA0, fA2 = fA0, fA3 = fA0, fB0 = fA0, fB1 = fA0, fB2 = fA0, fB3 = fA0;
        FloatVector fC0 = fA0, fC1 = fA0, fC2 = fA0, fC3 = fA0;
        if (k0 > 0) {
            fA0 = FloatVector.fromArray(F, out, o0); fA1 = FloatVector.fromArray(F, out, o1);
            fA2 = FloatVector.fromArray(F, out, o2); fA3 = FloatVector.fromArray(F, out, o3);
            if (vectors > 1) {
                fB0 = FloatVector.fromArray(F, out, o0 + 16); fB1 = FloatVector.fromArray(F, out, o1 + 16);
                fB2 = FloatVector.fromArray(F, out, o2 + 16); fB3 = FloatVector.fromArray(F, out, o3 + 16);
            }
            if (vectors > 2) {
                fC0 = FloatVector.fromArray(F, out, o0 + 32); fC1 = FloatVector.fromArray(F, out, o1 + 32);
                fC2 = FloatVector.fromArray(F, out, o2 + 32); fC3 = FloatVector.fromArray(F, out, o3 + 32);
            }
        }
        // Per token, its first x block and column pair in this block.
        int xb0 = (x0 + k0) / 32, xb1 = (x1 + k0) / 32, xb2 = (x2 + k0) / 32, xb3 = (x3 + k0) / 32;
        int p0 = (x0 + k0) / 2, p1 = (x1 + k0) / 2, p2 = (x2 + k0) / 2, p3 = (x3 + k0) / 2;
        for (int j = 0; j < 8; j++, xb0++, xb1++, xb2++, xb3++, p0 += 16, p1 += 16, p2 += 16, p3 += 16) {
            ShortVector sA0 = ShortVector.zero(S32), sA1 = sA0, sA2 = sA0, sA3 = sA0, sB0 = sA0, sB1 = sA0, sB2 = sA0, sB3 = sA0;
            ShortVector sC0 = sA0, sC1 = sA0, sC2 = sA0, sC3 = sA0;
            long at = 64L * VECTORS * 16 * j;
            for (int l = 0; l < 16; l++, at += 64 * VECTORS) {
                ShortVector wA = ShortVector.fromMemorySegment(S32, pack, at, NATIVE), wB = ShortVector.fromMemorySegment(S32, pack, at + 64, NATIVE),
                        wC = ShortVector.fromMemorySegment(S32, pack, at + 128, NATIVE);
                ShortVector x = IntVector.broadcast(I32, pairs[p0 + l]).reinterpretAsShorts();
                sA0 = sA0.add(wA.mul(x)); sB0 = sB0.add(wB.mul(x)); sC0 = sC0.add(wC.mul(x));
                x = IntVector.broadcast(I32, pairs[p1 + l]).reinterpretAsShorts();
                sA1 = sA1.add(wA.mul(x)); sB1 = sB1.add(wB.mul(x)); sC1 = sC1.add(wC.mul(x));
                x = IntVector.broadcast(I32, pairs[p2 + l]).reinterpretAsShorts();
                sA2 = sA2.add(wA.mul(x)); sB2 = sB2.add(wB.mul(x)); sC2 = sC2.add(wC.mul(x));
                x = IntVector.broadcast(I32, pairs[p3 + l]).reinterpretAsShorts();
                sA3 = sA3.add(wA.mul(x)); sB3 = sB3.add(wB.mul(x)); sC3 = sC3.add(wC.mul(x));
            }
            // The dot's order per token: Σq·qx (the lanes, plus the offset's share) as a float times (d*sc * x scale) into the sum, then dmin*m times -Σqx.
            long sc = SCALES + 64L * VECTORS * j, mn = MINS + 64L * VECTORS * j;
            FloatVector dA = FloatVector.fromMemorySegment(F, pack, sc, NATIVE), dB = FloatVector.fromMemorySegment(F, pack, sc + 64, NATIVE),
                    dC = FloatVector.fromMemorySegment(F, pack, sc + 128, NATIVE);
            FloatVector mA = FloatVector.fromMemorySegment(F, pack, mn, NATIVE), mB = FloatVector.fromMemorySegment(F, pack, mn + 64, NATIVE),
                    mC = FloatVector.fromMemorySegment(F, pack, mn + 128, NATIVE);
            float s0 = xScales[xb0], s1 = xScales[xb1], s2 = xScales[xb2], s3 = xScales[xb3];
            FloatVector n0 = FloatVector.broadcast(F, -sums[xb0]), n1 = FloatVector.broadcast(F, -sums[xb1]);
            FloatVector n2 = FloatVector.broadcast(F, -sums[xb2]), n3 = FloatVector.broadcast(F, -sums[xb3]);
            // The offset's share in a branch, not as an add of 0: where no offset is ever taken (a run of Q4_K alone), C2 drops it.
            boolean offset = valueOffset != 0;
            int c0 = valueOffset * totals[xb0], c1 = valueOffset * totals[xb1], c2 = valueOffset * totals[xb2], c3 = valueOffset * totals[xb3];
            IntVector i, r;
            i = sA0.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c0);
            fA0 = mA.fma(n0, ((FloatVector) r.convert(I2F, 0)).fma(dA.mul(s0), fA0));
            i = sB0.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c0);
            fB0 = mB.fma(n0, ((FloatVector) r.convert(I2F, 0)).fma(dB.mul(s0), fB0));
            i = sC0.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c0);
            fC0 = mC.fma(n0, ((FloatVector) r.convert(I2F, 0)).fma(dC.mul(s0), fC0));
            i = sA1.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c1);
            fA1 = mA.fma(n1, ((FloatVector) r.convert(I2F, 0)).fma(dA.mul(s1), fA1));
            i = sB1.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c1);
            fB1 = mB.fma(n1, ((FloatVector) r.convert(I2F, 0)).fma(dB.mul(s1), fB1));
            i = sC1.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c1);
            fC1 = mC.fma(n1, ((FloatVector) r.convert(I2F, 0)).fma(dC.mul(s1), fC1));
            i = sA2.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c2);
            fA2 = mA.fma(n2, ((FloatVector) r.convert(I2F, 0)).fma(dA.mul(s2), fA2));
            i = sB2.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c2);
            fB2 = mB.fma(n2, ((FloatVector) r.convert(I2F, 0)).fma(dB.mul(s2), fB2));
            i = sC2.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c2);
            fC2 = mC.fma(n2, ((FloatVector) r.convert(I2F, 0)).fma(dC.mul(s2), fC2));
            i = sA3.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c3);
            fA3 = mA.fma(n3, ((FloatVector) r.convert(I2F, 0)).fma(dA.mul(s3), fA3));
            i = sB3.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c3);
            fB3 = mB.fma(n3, ((FloatVector) r.convert(I2F, 0)).fma(dB.mul(s3), fB3));
            i = sC3.reinterpretAsInts();
            r = i.lanewise(LSHL, 16).lanewise(ASHR, 16).add(i.lanewise(ASHR, 16));
            if (offset) r = r.add(c3);
            fC3 = mC.fma(n3, ((FloatVector) r.convert(I2F, 0)).fma(dC.mul(s3), fC3));
        }
        fA3.intoArray(out, o3); fA2.intoArray(out, o2); fA1.intoArray(out, o1); fA0.intoArray(out, o0);
        if (vectors > 1) {
            fB3.intoArray(out, o3 + 16); fB2.intoArray(out, o2 + 16); fB1.intoArray(out, o1 + 16); fB0.intoArray(out, o0 + 16);
        }
        if (vectors > 2) {
            fC3.intoArray(out, o3 + 32); fC2.intoArray(out, o2 + 32); fC1.intoArray(out, o1 + 32); fC0.intoArray(out, o0 + 32);
        }
    }
}
