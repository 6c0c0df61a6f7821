package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;

/**
 * A prefill GEMM in float FMAs on integer values: each weight type unpacks a K chunk of three panels (48 rows) into
 * float vectors of the 16 rows' integer values at one column, at {@code 64 (3k + v)}, and each 32-column block's scale
 * for the 16 rows at {@code SCALES + 64 (3b + v)}; then every four tokens run over it. An int8-range weight times int8
 * x is exact in a float, and so is a block's sum of them (at most 32 * 128 * 127 < 2^24) in any order: the very
 * integer the type's one-token dot forms in 16-bit and int lanes. Each block sum then takes the dot's arithmetic, times
 * scale * x scale into the running sum block after block, so every token's row is the same bits as its one-token dot
 * whatever the batch.
 * <p>
 * Floats rather than 16-bit lanes because an int8-range weight times int8 x leaves room for only two products per
 * 16-bit lane, and widening those sums to ints cost as much as the multiplies: for Q8_0 an integer GEMM (and the
 * four-token dots) ran a 2048×2048, 128-token matmul at 36.5 GMAC/s per thread against 48.9 for a float GEMM.
 * 2 threads, 128 tokens, Zen 4: 5632×2048 at 93 GMAC/s as the float GEMM on dequantized weights; with 128-column
 * chunks (24 KB, L1) 90, with eight tokens at a time (the running sums in {@code out} between blocks) 71.
 */
abstract class FloatIntegerGemm implements IntegerGemm.Kernel {
    static final int K_CHUNK = 256;
    static final int VECTORS = IntegerGemm.VECTORS;
    static final long SCALES = 64L * VECTORS * K_CHUNK;
    static final long PACK_BYTES = SCALES + 64L * VECTORS * (K_CHUNK / 32);

    @Override
    public final int kChunk() {
        return K_CHUNK;
    }

    @Override
    public final long packBytes() {
        return PACK_BYTES;
    }

    @Override
    public final void clear(MemorySegment pack, int kn, int v) {
        FloatVector zero = FloatVector.zero(F);
        for (int c = 0; c < kn; c++) zero.intoMemorySegment(pack, 64L * (VECTORS * c + v), NATIVE);
        for (int b = 0; b < kn / 32; b++) zero.intoMemorySegment(pack, SCALES + 64L * (VECTORS * b + v), NATIVE);
    }

    /**
     * One K chunk for four tokens (x offsets x0..x3, later ones may repeat the last of n) and three panels: twelve block
     * sums and twelve running sums, three weight vectors and a broadcast, 28 of the 32 registers. Written without helper
     * methods, as {@link Q4_0Gemm#chunk} is.
     */
    @Override
    public final void chunk(MemorySegment pack, int kn, int k0, ActivationBlocks xBlocks, int x0, int x1, int x2, int x3, int n, int vectors,
                      float[] out, int o0, int outWidth) {
        float[] q = xBlocks.int8Floats();
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
        int q0 = x0 + k0, q1 = x1 + k0, q2 = x2 + k0, q3 = x3 + k0;
        for (int b = 0; b < kn / 32; b++, q0 += 32, q1 += 32, q2 += 32, q3 += 32) {
            FloatVector sA0 = FloatVector.zero(F), sA1 = sA0, sA2 = sA0, sA3 = sA0, sB0 = sA0, sB1 = sA0, sB2 = sA0, sB3 = sA0;
            FloatVector sC0 = sA0, sC1 = sA0, sC2 = sA0, sC3 = sA0;
            long at = 64L * VECTORS * 32 * b;
            for (int l = 0; l < 32; l++, at += 64 * VECTORS) {
                FloatVector wA = FloatVector.fromMemorySegment(F, pack, at, NATIVE), wB = FloatVector.fromMemorySegment(F, pack, at + 64, NATIVE),
                        wC = FloatVector.fromMemorySegment(F, pack, at + 128, NATIVE);
                FloatVector x = FloatVector.broadcast(F, q[q0 + l]);
                sA0 = wA.fma(x, sA0); sB0 = wB.fma(x, sB0); sC0 = wC.fma(x, sC0);
                x = FloatVector.broadcast(F, q[q1 + l]);
                sA1 = wA.fma(x, sA1); sB1 = wB.fma(x, sB1); sC1 = wC.fma(x, sC1);
                x = FloatVector.broadcast(F, q[q2 + l]);
                sA2 = wA.fma(x, sA2); sB2 = wB.fma(x, sB2); sC2 = wC.fma(x, sC2);
                x = FloatVector.broadcast(F, q[q3 + l]);
                sA3 = wA.fma(x, sA3); sB3 = wB.fma(x, sB3); sC3 = wC.fma(x, sC3);
            }
            // The dot's arithmetic: the block's integer sum times (d * x scale), added into the running sum.
            long sc = SCALES + 64L * VECTORS * b;
            FloatVector dA = FloatVector.fromMemorySegment(F, pack, sc, NATIVE), dB = FloatVector.fromMemorySegment(F, pack, sc + 64, NATIVE),
                    dC = FloatVector.fromMemorySegment(F, pack, sc + 128, NATIVE);
            float s0 = xScales[q0 / 32], s1 = xScales[q1 / 32], s2 = xScales[q2 / 32], s3 = xScales[q3 / 32];
            fA0 = sA0.fma(dA.mul(s0), fA0); fB0 = sB0.fma(dB.mul(s0), fB0); fC0 = sC0.fma(dC.mul(s0), fC0);
            fA1 = sA1.fma(dA.mul(s1), fA1); fB1 = sB1.fma(dB.mul(s1), fB1); fC1 = sC1.fma(dC.mul(s1), fC1);
            fA2 = sA2.fma(dA.mul(s2), fA2); fB2 = sB2.fma(dB.mul(s2), fB2); fC2 = sC2.fma(dC.mul(s2), fC2);
            fA3 = sA3.fma(dA.mul(s3), fA3); fB3 = sB3.fma(dB.mul(s3), fB3); fC3 = sC3.fma(dC.mul(s3), fC3);
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
