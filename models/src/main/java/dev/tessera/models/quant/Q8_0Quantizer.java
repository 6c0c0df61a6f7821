package dev.tessera.models.quant;

import java.lang.foreign.MemorySegment;

import static dev.tessera.models.quant.Quantizer.I16;
import static dev.tessera.models.quant.Quantizer.U8;

/** block_q8_0 (f16 d, int8 qs[32]) as ggml's quantize_row_q8_0_ref: d = max|x| / 127, q = roundf(x / d). */
final class Q8_0Quantizer {
    private Q8_0Quantizer() {}

    static void quantize(float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        long off = dstOffset;
        for (int base = srcOffset, end = srcOffset + n; base < end; base += 32, off += 34) {
            float amax = 0f;
            for (int j = 0; j < 32; j++) {
                float a = Math.abs(src[base + j]);
                if (a > amax) amax = a; // ggml's MAX(amax, fabsf(v)); Math.max's NaN and -0 handling costs more
            }
            float d = amax / 127;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(I16, off, Float.floatToFloat16(d));
            for (int j = 0; j < 32; j++) dst.set(U8, off + 2 + j, (byte) Quantizer.roundHalfAway(src[base + j] * id));
        }
    }
}
