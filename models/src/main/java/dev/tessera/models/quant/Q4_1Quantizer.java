package dev.tessera.models.quant;

import java.lang.foreign.MemorySegment;

import static dev.tessera.models.quant.Quantizer.I16;
import static dev.tessera.models.quant.Quantizer.U8;

/** block_q4_1 (f16 d, f16 m, u8 qs[16]) as ggml's quantize_row_q4_1_ref: m = min, d = (max - min) / 15. */
final class Q4_1Quantizer {
    private Q4_1Quantizer() {}

    static void quantize(float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        long off = dstOffset;
        for (int base = srcOffset, end = srcOffset + n; base < end; base += 32, off += 20) {
            float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
            for (int j = 0; j < 32; j++) {
                float v = src[base + j];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            float d = (max - min) / 15;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(I16, off, Float.floatToFloat16(d));
            dst.set(I16, off + 2, Float.floatToFloat16(min));
            for (int j = 0; j < 16; j++) {
                int q0 = Math.min(15, (int) ((src[base + j] - min) * id + 0.5f));
                int q1 = Math.min(15, (int) ((src[base + 16 + j] - min) * id + 0.5f));
                dst.set(U8, off + 4 + j, (byte) (q0 | q1 << 4));
            }
        }
    }
}
