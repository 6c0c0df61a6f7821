package dev.tessera.models.quant;

import java.lang.foreign.MemorySegment;

import static dev.tessera.models.quant.Quantizer.I16;
import static dev.tessera.models.quant.Quantizer.I32;
import static dev.tessera.models.quant.Quantizer.U8;

/**
 * block_q5_1 (f16 d, f16 m, u32 qh, u8 qs[16]) as ggml's quantize_row_q5_1_ref: m = min, d = (max - min) / 31.
 * ggml does not clamp q here; we clamp to 31, which only matters if rounding pushes (max - min) / d past 31.5.
 */
final class Q5_1Quantizer {
    private Q5_1Quantizer() {}

    static void quantize(float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        long off = dstOffset;
        for (int base = srcOffset, end = srcOffset + n; base < end; base += 32, off += 24) {
            float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
            for (int j = 0; j < 32; j++) {
                float v = src[base + j];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            float d = (max - min) / 31;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(I16, off, Float.floatToFloat16(d));
            dst.set(I16, off + 2, Float.floatToFloat16(min));
            int qh = 0;
            for (int j = 0; j < 16; j++) {
                int q0 = Math.min(31, (int) ((src[base + j] - min) * id + 0.5f));
                int q1 = Math.min(31, (int) ((src[base + 16 + j] - min) * id + 0.5f));
                dst.set(U8, off + 8 + j, (byte) ((q0 & 15) | (q1 & 15) << 4));
                qh |= (q0 >> 4) << j | (q1 >> 4) << (j + 16);
            }
            dst.set(I32, off + 4, qh);
        }
    }
}
