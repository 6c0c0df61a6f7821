package dev.tessera.models.quant;

import java.lang.foreign.MemorySegment;

import static dev.tessera.models.quant.Quantizer.I16;
import static dev.tessera.models.quant.Quantizer.U8;

/**
 * block_q4_0 (f16 d, u8 qs[16]) as ggml's quantize_row_q4_0_ref: the value of largest magnitude (first one on ties)
 * maps to -8, so d = max / -8 and q = min(15, trunc(x / d + 8.5)).
 */
final class Q4_0Quantizer {
    private Q4_0Quantizer() {}

    static void quantize(float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        long off = dstOffset;
        for (int base = srcOffset, end = srcOffset + n; base < end; base += 32, off += 18) {
            float amax = 0f, max = 0f;
            for (int j = 0; j < 32; j++) {
                float v = src[base + j];
                if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
            }
            float d = max / -8;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(I16, off, Float.floatToFloat16(d));
            for (int j = 0; j < 16; j++) {
                int q0 = Math.min(15, (int) (src[base + j] * id + 8.5f));
                int q1 = Math.min(15, (int) (src[base + 16 + j] * id + 8.5f));
                dst.set(U8, off + 2 + j, (byte) (q0 | q1 << 4));
            }
        }
    }
}
