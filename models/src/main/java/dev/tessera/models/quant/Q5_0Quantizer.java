package dev.tessera.models.quant;

import java.lang.foreign.MemorySegment;

import static dev.tessera.models.quant.Quantizer.I16;
import static dev.tessera.models.quant.Quantizer.I32;
import static dev.tessera.models.quant.Quantizer.U8;

/**
 * block_q5_0 (f16 d, u32 qh, u8 qs[16]) as ggml's quantize_row_q5_0_ref: d = max / -16,
 * q = min(31, trunc(x / d + 16.5)); bit 4 of value j goes to bit j of qh.
 */
final class Q5_0Quantizer {
    private Q5_0Quantizer() {}

    static void quantize(float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        long off = dstOffset;
        for (int base = srcOffset, end = srcOffset + n; base < end; base += 32, off += 22) {
            float amax = 0f, max = 0f;
            for (int j = 0; j < 32; j++) {
                float v = src[base + j];
                if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
            }
            float d = max / -16;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(I16, off, Float.floatToFloat16(d));
            int qh = 0;
            for (int j = 0; j < 16; j++) {
                int q0 = Math.min(31, (int) (src[base + j] * id + 16.5f));
                int q1 = Math.min(31, (int) (src[base + 16 + j] * id + 16.5f));
                dst.set(U8, off + 6 + j, (byte) ((q0 & 15) | (q1 & 15) << 4));
                qh |= (q0 >> 4) << j | (q1 >> 4) << (j + 16);
            }
            dst.set(I32, off + 2, qh);
        }
    }
}
