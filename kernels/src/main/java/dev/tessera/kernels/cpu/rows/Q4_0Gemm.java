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
 * The many-token (prefill) matmul of Q4_0 panels in 16-bit integer lanes. A K chunk of two panels (32 rows) is
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
 * The pack (from the caller, at least {@link #PACK_BYTES}): pair vector (c, v) at {@code 64 (2c + v)}, then the 16
 * rows' d of block b and panel v at {@code SCALES + 64 (2b + v)}.
 */
final class Q4_0Gemm {
    static final int K_CHUNK = 256;
    /** Rows per call: two panels. */
    static final int ROWS = 2 * PanelKernel.ROWS;
    private static final int VECTORS = 2;
    private static final long SCALES = 64L * VECTORS * (K_CHUNK / 2);
    static final long PACK_BYTES = SCALES + 64L * VECTORS * (K_CHUNK / 32);
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256, S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I32 = IntVector.SPECIES_512;

    private Q4_0Gemm() {}

    /**
     * out[t * outWidth + r0 + i] = W[r0 + i] · x[t] for rows [r0, r0 + rows) (whole panels) and every token, x as the
     * int8 blocks of {@code xBlocks}.
     */
    static void multiply(MemorySegment w, long panelBytes, int r0, int rows, int cols, ActivationBlocks xBlocks, int numTokens,
                         float[] out, int outWidth, MemorySegment pack) {
        if (pack.byteSize() < PACK_BYTES) throw new IllegalArgumentException("pack of " + pack.byteSize() + " bytes, need " + PACK_BYTES);
        for (int r = r0; r < r0 + rows; r += ROWS) twoPanels(w, panelBytes, r, r0 + rows - r > PanelKernel.ROWS, cols, xBlocks, numTokens, out, outWidth, pack);
    }

    private static void twoPanels(MemorySegment w, long panelBytes, int r0, boolean two, int cols, ActivationBlocks xBlocks, int numTokens,
                                  float[] out, int outWidth, MemorySegment pack) {
        for (int k0 = 0; k0 < cols; k0 += K_CHUNK) {
            int kn = Math.min(K_CHUNK, cols - k0);
            unpack(w, (long) (r0 / PanelKernel.ROWS) * panelBytes, k0, kn, pack, 0);
            if (two) unpack(w, (long) (r0 / PanelKernel.ROWS + 1) * panelBytes, k0, kn, pack, 1);
            else clear(pack, kn);
            for (int t = 0; t < numTokens; t += 4) {
                int n = Math.min(4, numTokens - t), x0 = t * cols, x1 = (t + Math.min(1, n - 1)) * cols;
                int x2 = (t + Math.min(2, n - 1)) * cols, x3 = (t + n - 1) * cols;
                chunk(pack, kn, k0, xBlocks, x0, x1, x2, x3, n, two, out, t * outWidth + r0, outWidth);
            }
        }
    }

    /** Pair vectors and scales of one panel's columns [k0, k0 + kn) into slot v of the pack. */
    private static void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment pack, int v) {
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

    /** Zeros slot 1 (a single panel): its sums are then 0 and never written out. */
    private static void clear(MemorySegment pack, int kn) {
        ShortVector zero = ShortVector.zero(S32);
        for (int c = 0; c < kn / 2; c++) zero.intoMemorySegment(pack, 64L * (VECTORS * c + 1), NATIVE);
        for (int b = 0; b < kn / 32; b++) FloatVector.zero(F).intoMemorySegment(pack, SCALES + 64L * (VECTORS * b + 1), NATIVE);
    }

    /**
     * One K chunk for four tokens (x offsets x0..x3, later ones may repeat the last of n) and the two panels: eight
     * 16-bit and eight float accumulators, two weight vectors and a broadcast fill 19 of the 32 registers. Written
     * without helper methods: C2 counts nodes as it parses, and a helper it then declines to inline boxes its vectors.
     */
    private static void chunk(MemorySegment pack, int kn, int k0, ActivationBlocks xBlocks, int x0, int x1, int x2, int x3, int n, boolean two,
                              float[] out, int o0, int outWidth) {
        int[] pairs = xBlocks.pairs();
        float[] xScales = xBlocks.scales();
        int o1 = o0 + Math.min(1, n - 1) * outWidth, o2 = o0 + Math.min(2, n - 1) * outWidth, o3 = o0 + (n - 1) * outWidth;
        FloatVector f0 = FloatVector.zero(F), g0 = f0, f1 = f0, g1 = f0, f2 = f0, g2 = f0, f3 = f0, g3 = f0;
        if (k0 > 0) {
            f0 = FloatVector.fromArray(F, out, o0); f1 = FloatVector.fromArray(F, out, o1);
            f2 = FloatVector.fromArray(F, out, o2); f3 = FloatVector.fromArray(F, out, o3);
            if (two) {
                g0 = FloatVector.fromArray(F, out, o0 + 16); g1 = FloatVector.fromArray(F, out, o1 + 16);
                g2 = FloatVector.fromArray(F, out, o2 + 16); g3 = FloatVector.fromArray(F, out, o3 + 16);
            }
        }
        // Per token, its first x block and column pair in this chunk.
        int c0 = (x0 + k0) / 32, c1 = (x1 + k0) / 32, c2 = (x2 + k0) / 32, c3 = (x3 + k0) / 32;
        int p0 = (x0 + k0) / 2, p1 = (x1 + k0) / 2, p2 = (x2 + k0) / 2, p3 = (x3 + k0) / 2;
        for (int b = 0; b < kn / 32; b++, c0++, c1++, c2++, c3++, p0 += 16, p1 += 16, p2 += 16, p3 += 16) {
            ShortVector a0 = ShortVector.zero(S32), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
            long at = 64L * VECTORS * 16 * b;
            for (int l = 0; l < 16; l++, at += 64 * VECTORS) {
                ShortVector wa = ShortVector.fromMemorySegment(S32, pack, at, NATIVE), wb = ShortVector.fromMemorySegment(S32, pack, at + 64, NATIVE);
                ShortVector x = IntVector.broadcast(I32, pairs[p0 + l]).reinterpretAsShorts();
                a0 = a0.add(wa.mul(x)); b0 = b0.add(wb.mul(x));
                x = IntVector.broadcast(I32, pairs[p1 + l]).reinterpretAsShorts();
                a1 = a1.add(wa.mul(x)); b1 = b1.add(wb.mul(x));
                x = IntVector.broadcast(I32, pairs[p2 + l]).reinterpretAsShorts();
                a2 = a2.add(wa.mul(x)); b2 = b2.add(wb.mul(x));
                x = IntVector.broadcast(I32, pairs[p3 + l]).reinterpretAsShorts();
                a3 = a3.add(wa.mul(x)); b3 = b3.add(wb.mul(x));
            }
            // Per row, its two lanes added (|Σ| ≤ 2 * 16 * 8 * 127 = 32512, so x + (x << 16) holds it in its high half),
            // as a float; then the dot's + (d * x scale) * that into the running sum. The integer is the dot's
            // Σq·qx - 8 Σqx, which it forms in floats exactly, so the bits are the dot's.
            FloatVector da = FloatVector.fromMemorySegment(F, pack, SCALES + 64L * VECTORS * b, NATIVE);
            FloatVector db = FloatVector.fromMemorySegment(F, pack, SCALES + 64L * VECTORS * b + 64, NATIVE);
            float s0 = xScales[c0], s1 = xScales[c1], s2 = xScales[c2], s3 = xScales[c3];
            IntVector a0i = a0.reinterpretAsInts();
            f0 = ((FloatVector) a0i.add(a0i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(da.mul(s0), f0);
            IntVector b0i = b0.reinterpretAsInts();
            g0 = ((FloatVector) b0i.add(b0i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(db.mul(s0), g0);
            IntVector a1i = a1.reinterpretAsInts();
            f1 = ((FloatVector) a1i.add(a1i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(da.mul(s1), f1);
            IntVector b1i = b1.reinterpretAsInts();
            g1 = ((FloatVector) b1i.add(b1i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(db.mul(s1), g1);
            IntVector a2i = a2.reinterpretAsInts();
            f2 = ((FloatVector) a2i.add(a2i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(da.mul(s2), f2);
            IntVector b2i = b2.reinterpretAsInts();
            g2 = ((FloatVector) b2i.add(b2i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(db.mul(s2), g2);
            IntVector a3i = a3.reinterpretAsInts();
            f3 = ((FloatVector) a3i.add(a3i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(da.mul(s3), f3);
            IntVector b3i = b3.reinterpretAsInts();
            g3 = ((FloatVector) b3i.add(b3i.lanewise(LSHL, 16)).lanewise(ASHR, 16).convert(I2F, 0)).fma(db.mul(s3), g3);
        }
        f3.intoArray(out, o3); f2.intoArray(out, o2); f1.intoArray(out, o1); f0.intoArray(out, o0);
        if (two) {
            g3.intoArray(out, o3 + 16); g2.intoArray(out, o2 + 16); g1.intoArray(out, o1 + 16); g0.intoArray(out, o0 + 16);
        }
    }
}
