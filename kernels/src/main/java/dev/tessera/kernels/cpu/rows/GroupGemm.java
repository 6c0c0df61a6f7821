package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;

/**
 * The many-token (prefill) matmul of the K-quants whose 16-column groups each have one float d * scale per row, two
 * groups sharing an x block ({@link Q6KGemm}, {@link Q3KGemm}), in 16-bit integer lanes, shaped as {@link Q4KGemm}: a
 * block of 256 columns of three panels is decoded once into pair vectors (32 shorts, lane 2i + p holding the signed
 * value of row i at column 2c + p) and its 16 groups' d * scale; each pair vector then multiplies four tokens'
 * broadcast x pairs, summed per group in 16-bit lanes (8 products per lane: for Q6_K at most 8 * 32 * 127 = 32512).
 * <p>
 * A group's sum then takes the dots' arithmetic ({@link Q6KPanels#dot}, {@link Q3KPanels#dot}): the row's two lanes
 * added as a float, times d * scale; the first group of an x block kept, the second's added to it, times the block's x
 * scale into the running sum. Every token's row is the same bits as its dot alone, whatever the batch.
 * <p>
 * The pack (from the caller, at least {@link #PACK_BYTES}): pair vector (c, v) at {@code 64 (3c + v)}, then d * scale
 * of group g and panel v at {@code SCALES + 64 (3g + v)}. A type's {@link #unpack} fills it.
 */
abstract class GroupGemm implements IntegerGemm.Kernel {
    static final int BLOCK = SuperBlockPanels.BLOCK;
    static final int VECTORS = IntegerGemm.VECTORS;
    static final long SCALES = 64L * VECTORS * (BLOCK / 2);
    static final long PACK_BYTES = SCALES + 64L * VECTORS * 16;
    static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I32 = IntVector.SPECIES_512;

    @Override
    public final int kChunk() {
        return BLOCK;
    }

    @Override
    public final long packBytes() {
        return PACK_BYTES;
    }

    @Override
    public final void clear(MemorySegment pack, int kn, int v) {
        ShortVector zero = ShortVector.zero(S32);
        for (int c = 0; c < BLOCK / 2; c++) zero.intoMemorySegment(pack, 64L * (VECTORS * c + v), NATIVE);
        for (int g = 0; g < 16; g++) FloatVector.zero(F).intoMemorySegment(pack, SCALES + 64L * (VECTORS * g + v), NATIVE);
    }

    /**
     * One 256-column block for four tokens (x offsets x0..x3, later ones may repeat the last of n) and three panels.
     * Written without helper methods: C2 counts nodes as it parses, and a helper it then declines to inline boxes its
     * vectors.
     */
    @Override
    public final void chunk(MemorySegment pack, int kn, int k0, ActivationBlocks xBlocks, int x0, int x1, int x2, int x3, int n, int vectors,
                      float[] out, int o0, int outWidth) {
        int[] pairs = xBlocks.pairs();
        float[] xScales = xBlocks.scales();
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
        // The first group of each x block: its sum times d * scale, per token and panel, until the second group's.
        FloatVector pA0 = fA0, pA1 = fA0, pA2 = fA0, pA3 = fA0, pB0 = fA0, pB1 = fA0, pB2 = fA0, pB3 = fA0;
        FloatVector pC0 = fA0, pC1 = fA0, pC2 = fA0, pC3 = fA0;
        int xb0 = (x0 + k0) / 32, xb1 = (x1 + k0) / 32, xb2 = (x2 + k0) / 32, xb3 = (x3 + k0) / 32;
        int p0 = (x0 + k0) / 2, p1 = (x1 + k0) / 2, p2 = (x2 + k0) / 2, p3 = (x3 + k0) / 2;
        for (int g = 0; g < 16; g++, p0 += 8, p1 += 8, p2 += 8, p3 += 8) {
            ShortVector sA0 = ShortVector.zero(S32), sA1 = sA0, sA2 = sA0, sA3 = sA0, sB0 = sA0, sB1 = sA0, sB2 = sA0, sB3 = sA0;
            ShortVector sC0 = sA0, sC1 = sA0, sC2 = sA0, sC3 = sA0;
            long at = 64L * VECTORS * 8 * g;
            for (int l = 0; l < 8; l++, at += 64 * VECTORS) {
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
            long sc = SCALES + 64L * VECTORS * g;
            FloatVector dA = FloatVector.fromMemorySegment(F, pack, sc, NATIVE), dB = FloatVector.fromMemorySegment(F, pack, sc + 64, NATIVE),
                    dC = FloatVector.fromMemorySegment(F, pack, sc + 128, NATIVE);
            IntVector iA0 = sA0.reinterpretAsInts(), iB0 = sB0.reinterpretAsInts(), iC0 = sC0.reinterpretAsInts();
            IntVector iA1 = sA1.reinterpretAsInts(), iB1 = sB1.reinterpretAsInts(), iC1 = sC1.reinterpretAsInts();
            IntVector iA2 = sA2.reinterpretAsInts(), iB2 = sB2.reinterpretAsInts(), iC2 = sC2.reinterpretAsInts();
            IntVector iA3 = sA3.reinterpretAsInts(), iB3 = sB3.reinterpretAsInts(), iC3 = sC3.reinterpretAsInts();
            // Row sums: each lane sign-extended, the two added (the sum may pass 16 bits), as a float.
            FloatVector rA0 = (FloatVector) iA0.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iA0.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rB0 = (FloatVector) iB0.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iB0.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rC0 = (FloatVector) iC0.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iC0.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rA1 = (FloatVector) iA1.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iA1.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rB1 = (FloatVector) iB1.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iB1.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rC1 = (FloatVector) iC1.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iC1.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rA2 = (FloatVector) iA2.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iA2.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rB2 = (FloatVector) iB2.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iB2.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rC2 = (FloatVector) iC2.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iC2.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rA3 = (FloatVector) iA3.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iA3.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rB3 = (FloatVector) iB3.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iB3.lanewise(ASHR, 16)).convert(I2F, 0);
            FloatVector rC3 = (FloatVector) iC3.lanewise(LSHL, 16).lanewise(ASHR, 16).add(iC3.lanewise(ASHR, 16)).convert(I2F, 0);
            if ((g & 1) == 0) {
                pA0 = rA0.mul(dA); pB0 = rB0.mul(dB); pC0 = rC0.mul(dC);
                pA1 = rA1.mul(dA); pB1 = rB1.mul(dB); pC1 = rC1.mul(dC);
                pA2 = rA2.mul(dA); pB2 = rB2.mul(dB); pC2 = rC2.mul(dC);
                pA3 = rA3.mul(dA); pB3 = rB3.mul(dB); pC3 = rC3.mul(dC);
            } else {
                FloatVector s0 = FloatVector.broadcast(F, xScales[xb0]), s1 = FloatVector.broadcast(F, xScales[xb1]);
                FloatVector s2 = FloatVector.broadcast(F, xScales[xb2]), s3 = FloatVector.broadcast(F, xScales[xb3]);
                fA0 = rA0.fma(dA, pA0).fma(s0, fA0); fB0 = rB0.fma(dB, pB0).fma(s0, fB0); fC0 = rC0.fma(dC, pC0).fma(s0, fC0);
                fA1 = rA1.fma(dA, pA1).fma(s1, fA1); fB1 = rB1.fma(dB, pB1).fma(s1, fB1); fC1 = rC1.fma(dC, pC1).fma(s1, fC1);
                fA2 = rA2.fma(dA, pA2).fma(s2, fA2); fB2 = rB2.fma(dB, pB2).fma(s2, fB2); fC2 = rC2.fma(dC, pC2).fma(s2, fC2);
                fA3 = rA3.fma(dA, pA3).fma(s3, fA3); fB3 = rB3.fma(dB, pB3).fma(s3, fB3); fC3 = rC3.fma(dC, pC3).fma(s3, fC3);
                xb0++; xb1++; xb2++; xb3++;
            }
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
