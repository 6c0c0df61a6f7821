package dev.tessera.models.quant;

import java.lang.foreign.MemorySegment;

import static dev.tessera.models.quant.Quantizer.I16;
import static dev.tessera.models.quant.Quantizer.U8;
import static dev.tessera.models.quant.Quantizer.nearestInt;

/**
 * block_q4_K (f16 d, f16 dmin, u8 scales[12], u8 qs[128]) as ggml's quantize_row_q4_K_ref: each 32-value sub-block
 * gets a scale and min from {@link KQuantSearch#makeQkx2Quants}, weighted by rms(sub-block) + |x|; those are coded
 * as 6-bit multiples of d = max scale / 63 and dmin = max min / 63, and the values are requantized against the
 * coded scales.
 */
final class Q4KQuantizer {
    private Q4KQuantizer() {}

    static void quantize(float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        KScratch s = new KScratch();
        long off = dstOffset;
        for (int base = srcOffset, end = srcOffset + n; base < end; base += 256, off += 144) {
            s.fitScalesAndMins(src, base, 15, -1f, 0.1f, 20);
            s.writeHeader(dst, off);
            s.requantize(src, base, 15);
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++)
                    dst.set(U8, off + 16 + 32 * c + l, (byte) (s.L[64 * c + l] | s.L[64 * c + 32 + l] << 4));
        }
    }

    /** Scratch and the shared steps of Q4_K and Q5_K, which differ only in nmax, search range and bit packing. */
    static final class KScratch {
        final int[] L = new int[256];
        final int[] laux = new int[32];
        final float[] weights = new float[32];
        final float[] scales = new float[8];
        final float[] mins = new float[8];
        final int[] packed = new int[12];
        short dHalf, dminHalf;

        void fitScalesAndMins(float[] x, int base, int nmax, float rmin, float rdelta, int nstep) {
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 8; j++) {
                int xo = base + 32 * j;
                float sumX2 = 0;
                for (int l = 0; l < 32; l++) sumX2 += x[xo + l] * x[xo + l];
                float avX = (float) Math.sqrt(sumX2 / 32);
                for (int l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[xo + l]);
                scales[j] = KQuantSearch.makeQkx2Quants(32, nmax, x, xo, weights, L, 32 * j, mins, j, laux, rmin, rdelta, nstep);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            float invScale = maxScale > 0 ? 63f / maxScale : 0f;
            float invMin = maxMin > 0 ? 63f / maxMin : 0f;
            java.util.Arrays.fill(packed, 0);
            for (int j = 0; j < 8; j++) {
                int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xff);
                int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xff);
                if (j < 4) {
                    packed[j] = ls;
                    packed[j + 4] = lm;
                } else {
                    packed[j + 4] = (ls & 15) | (lm & 15) << 4;
                    packed[j - 4] |= (ls >> 4) << 6;
                    packed[j] |= (lm >> 4) << 6;
                }
            }
            dHalf = Float.floatToFloat16(maxScale / 63f);
            dminHalf = Float.floatToFloat16(maxMin / 63f);
        }

        /** Writes d, dmin and the 12 packed scale bytes at {@code off}. */
        void writeHeader(MemorySegment dst, long off) {
            dst.set(I16, off, dHalf);
            dst.set(I16, off + 2, dminHalf);
            for (int i = 0; i < 12; i++) dst.set(U8, off + 4 + i, (byte) packed[i]);
        }

        /** Re-derives L in [0, nmax] from the coded (6-bit, f16) scales and mins. */
        void requantize(float[] x, int base, int nmax) {
            float d = Float.float16ToFloat(dHalf), dmin = Float.float16ToFloat(dminHalf);
            for (int j = 0; j < 8; j++) {
                int sc, m;
                if (j < 4) {
                    sc = packed[j] & 63;
                    m = packed[j + 4] & 63;
                } else {
                    sc = (packed[j + 4] & 15) | (packed[j - 4] >> 6) << 4;
                    m = (packed[j + 4] >> 4) | (packed[j] >> 6) << 4;
                }
                float dl = d * sc;
                if (dl == 0f) continue;
                float dm = dmin * m;
                for (int i = 0; i < 32; i++) {
                    L[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt((x[base + 32 * j + i] + dm) / dl)));
                }
            }
        }
    }
}
