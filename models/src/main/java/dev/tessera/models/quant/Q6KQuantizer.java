package dev.tessera.models.quant;

import java.lang.foreign.MemorySegment;

import static dev.tessera.models.quant.Quantizer.I16;
import static dev.tessera.models.quant.Quantizer.U8;
import static dev.tessera.models.quant.Quantizer.nearestInt;

/**
 * block_q6_K (u8 ql[128], u8 qh[64], i8 scales[16], f16 d) as ggml's quantize_row_q6_K_ref: each 16-value group
 * gets a symmetric scale from {@link KQuantSearch#makeQxQuants}; the group scale of largest magnitude maps to -128,
 * d = 1 / iscale, and values are requantized to [-32, 31] against the coded 8-bit scales.
 */
final class Q6KQuantizer {
    private Q6KQuantizer() {}

    static void quantize(float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        int[] L = new int[256];
        float[] scales = new float[16];
        int[] sc = new int[16];
        long off = dstOffset;
        for (int base = srcOffset, end = srcOffset + n; base < end; base += 256, off += 210) {
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < 16; ib++) {
                float scale = KQuantSearch.makeQxQuants(16, 32, src, base + 16 * ib, L, 16 * ib);
                scales[ib] = scale;
                if (Math.abs(scale) > maxAbsScale) {
                    maxAbsScale = Math.abs(scale);
                    maxScale = scale;
                }
            }
            if (maxAbsScale < 1e-15f) {
                dst.asSlice(off, 210).fill((byte) 0);
                continue;
            }
            float iscale = -128f / maxScale;
            short dHalf = Float.floatToFloat16(1 / iscale);
            float d = Float.float16ToFloat(dHalf);
            for (int ib = 0; ib < 16; ib++) sc[ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib]));
            for (int j = 0; j < 16; j++) {
                float dl = d * sc[j];
                if (dl == 0f) continue;
                for (int i = 0; i < 16; i++) L[16 * j + i] = Math.max(-32, Math.min(31, nearestInt(src[base + 16 * j + i] / dl))) + 32;
            }
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < 32; l++) {
                    int k = 128 * h + l;
                    dst.set(U8, off + 64 * h + l, (byte) ((L[k] & 15) | (L[k + 64] & 15) << 4));
                    dst.set(U8, off + 64 * h + 32 + l, (byte) ((L[k + 32] & 15) | (L[k + 96] & 15) << 4));
                    dst.set(U8, off + 128 + 32 * h + l, (byte) ((L[k] >> 4) | (L[k + 32] >> 4) << 2 | (L[k + 64] >> 4) << 4 | (L[k + 96] >> 4) << 6));
                }
            }
            for (int ib = 0; ib < 16; ib++) dst.set(U8, off + 192 + ib, (byte) sc[ib]);
            dst.set(I16, off + 208, dHalf);
        }
    }
}
