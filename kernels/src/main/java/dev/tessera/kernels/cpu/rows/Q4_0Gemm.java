package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;

/**
 * The many-token (prefill) matmul of Q4_0 panels in 16-bit integer lanes. A K chunk of three panels (48 rows) is
 * unpacked once into pair vectors: 32 shorts, lane 2i + p holding q - 8 (-8..7) of row i at column 2c + p, the
 * column pair x's pair ints cover ({@link ActivationBlocks#pairs}). Each pair vector is then multiplied by four tokens'
 * broadcast x pairs and summed per 32-column block in 16-bit lanes (16 products of at most 8 * 127 per lane, 16256).
 * On Zen 5 a 16-bit multiply and add ran 165-183 GMAC/s per thread in a register-blocked loop where float FMAs ran
 * 76-78: the multiplies and adds issue on separate pipes, an FMA on the two FMA pipes only. The whole matmul
 * (8192×2048, 128 tokens, one thread, alternating in one process) ran 114-119 against the float GEMM's 84-85 GMAC/s,
 * and a 1B Q4_0 model's 128-token prefill (2 threads) 192-201 against 147-156 tok/s.
 * <p>
 * A block's sum then takes the one-token dot's arithmetic ({@link Q4_0Panels#dot}): Σ(q - 8)·qx as a float (the
 * dot's float Σq·qx - 8 Σqx, both exact), times d * x scale, added into the running sum block after block. So every
 * token's row is the same bits as its dot alone, whatever the batch. The running sums stay in registers over a chunk:
 * parking them in memory between blocks, with the block's 16-bit sums, took as long as the multiplies (82 against
 * 152 GMAC/s with that step left out).
 * <p>
 * The pack (from the caller, at least {@link #PACK_BYTES}): pair vector (c, v) at {@code 64 (3c + v)}, then the 16
 * rows' d of block b and panel v at {@code SCALES + 64 (3b + v)}.
 */
final class Q4_0Gemm implements IntegerGemm.Kernel {
    static final Q4_0Gemm INSTANCE = new Q4_0Gemm();
    static final int K_CHUNK = 256;
    private static final int VECTORS = IntegerGemm.VECTORS;
    private static final long SCALES = 64L * VECTORS * (K_CHUNK / 2);
    static final long PACK_BYTES = SCALES + 64L * VECTORS * (K_CHUNK / 32);
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256, S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I32 = IntVector.SPECIES_512;

    private Q4_0Gemm() {}

    @Override
    public int kChunk() {
        return K_CHUNK;
    }

    @Override
    public long packBytes() {
        return PACK_BYTES;
    }

    /** Pair vectors and scales of one panel's columns [k0, k0 + kn) into slot v of the pack. */
    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment pack, int v) {
        long o = panelOffset + (long) (k0 / 32) * Q4_0Panels.PANEL_BLOCK_BYTES;
        for (int b = 0; b < kn / 32; b++, o += Q4_0Panels.PANEL_BLOCK_BYTES) {
            VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE)).intoMemorySegment(pack, SCALES + 64L * (VECTORS * b + v), NATIVE);
            for (int m = 0; m < 8; m++) {
                // Pair slice m: low nibbles are columns 2m, 2m + 1 (pair m), high nibbles 16 + 2m, 17 + 2m (pair m + 8).
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + Q4_0Panels.QS + 32L * m, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                long c = 16L * b + m;
                q.and((short) 15).sub((short) 8).intoMemorySegment(pack, 64 * (VECTORS * c + v), NATIVE);
                q.lanewise(VectorOperators.LSHR, 4).sub((short) 8).intoMemorySegment(pack, 64 * (VECTORS * (c + 8) + v), NATIVE);
            }
        }
    }

    @Override
    public void clear(MemorySegment pack, int kn, int v) {
        ShortVector zero = ShortVector.zero(S32);
        for (int c = 0; c < kn / 2; c++) zero.intoMemorySegment(pack, 64L * (VECTORS * c + v), NATIVE);
        for (int b = 0; b < kn / 32; b++) FloatVector.zero(F).intoMemorySegment(pack, SCALES + 64L * (VECTORS * b + v), NATIVE);
    }

    /**
     * One K chunk for four tokens (x offsets x0..x3, later ones may repeat the last of n) and three panels: twelve
     * 16-bit and twelve float accumulators, three weight vectors and a broadcast fill 28 of the 32 registers (two
     * panels: 114-119 GMAC/s for the whole matmul, three: 120-123). Written without helper methods: C2 counts nodes as it
     * parses, and a helper it then declines to inline boxes its vectors.
     */
    @Override
    public void chunk(MemorySegment pack, int kn, int k0, ActivationBlocks xBlocks, int x0, int x1, int x2, int x3, int n, int vectors,
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
        // Per token, its first x block and column pair in this chunk.
        int xb0 = (x0 + k0) / 32, xb1 = (x1 + k0) / 32, xb2 = (x2 + k0) / 32, xb3 = (x3 + k0) / 32;
        int p0 = (x0 + k0) / 2, p1 = (x1 + k0) / 2, p2 = (x2 + k0) / 2, p3 = (x3 + k0) / 2;
        for (int b = 0; b < kn / 32; b++, xb0++, xb1++, xb2++, xb3++, p0 += 16, p1 += 16, p2 += 16, p3 += 16) {
            ShortVector sA0 = ShortVector.zero(S32), sA1 = sA0, sA2 = sA0, sA3 = sA0, sB0 = sA0, sB1 = sA0, sB2 = sA0, sB3 = sA0;
            ShortVector sC0 = sA0, sC1 = sA0, sC2 = sA0, sC3 = sA0;
            long at = 64L * VECTORS * 16 * b;
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
            // Per row, its two lanes added (|Σ| ≤ 2 * 16 * 8 * 127 = 32512, so x + (x << 16) holds it in its high half),
            // as a float; then the dot's + (d * x scale) * that into the running sum. The integer is the dot's
            // Σq·qx - 8 Σqx, which it forms in floats exactly, so the bits are the dot's.
            long sc = SCALES + 64L * VECTORS * b;
            FloatVector dA = FloatVector.fromMemorySegment(F, pack, sc, NATIVE), dB = FloatVector.fromMemorySegment(F, pack, sc + 64, NATIVE),
                    dC = FloatVector.fromMemorySegment(F, pack, sc + 128, NATIVE);
            float s0 = xScales[xb0], s1 = xScales[xb1], s2 = xScales[xb2], s3 = xScales[xb3];
            IntVector i;
            i = sA0.reinterpretAsInts();
            fA0 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dA.mul(s0), fA0);
            i = sB0.reinterpretAsInts();
            fB0 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dB.mul(s0), fB0);
            i = sC0.reinterpretAsInts();
            fC0 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dC.mul(s0), fC0);
            i = sA1.reinterpretAsInts();
            fA1 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dA.mul(s1), fA1);
            i = sB1.reinterpretAsInts();
            fB1 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dB.mul(s1), fB1);
            i = sC1.reinterpretAsInts();
            fC1 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dC.mul(s1), fC1);
            i = sA2.reinterpretAsInts();
            fA2 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dA.mul(s2), fA2);
            i = sB2.reinterpretAsInts();
            fB2 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dB.mul(s2), fB2);
            i = sC2.reinterpretAsInts();
            fC2 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dC.mul(s2), fC2);
            i = sA3.reinterpretAsInts();
            fA3 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dA.mul(s3), fA3);
            i = sB3.reinterpretAsInts();
            fB3 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dB.mul(s3), fB3);
            i = sC3.reinterpretAsInts();
            fC3 = ((FloatVector) i.add(i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(dC.mul(s3), fC3);
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
