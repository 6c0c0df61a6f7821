package dev.tessera.models.quant;

import java.lang.foreign.MemorySegment;

import static dev.tessera.models.quant.Quantizer.U8;

/**
 * block_q5_K (f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]) as ggml's quantize_row_q5_K_ref: Q4_K's scale
 * fitting with 5-bit values (search -0.5 + 0.1 * is, 16 steps); bit 4 of value 64c + l goes to bit 2c of qh[l] and
 * that of value 64c + 32 + l to bit 2c + 1.
 */
final class Q5KQuantizer {
    private Q5KQuantizer() {}

    static void quantize(float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        Q4KQuantizer.KScratch s = new Q4KQuantizer.KScratch();
        long off = dstOffset;
        for (int base = srcOffset, end = srcOffset + n; base < end; base += 256, off += 176) {
            s.fitScalesAndMins(src, base, 31, -0.5f, 0.1f, 15);
            s.writeHeader(dst, off);
            s.requantize(src, base, 31);
            int[] L = s.L;
            for (int l = 0; l < 32; l++) {
                int h = 0;
                for (int c = 0; c < 4; c++) h |= (L[64 * c + l] >> 4) << (2 * c) | (L[64 * c + 32 + l] >> 4) << (2 * c + 1);
                dst.set(U8, off + 16 + l, (byte) h);
            }
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++)
                    dst.set(U8, off + 48 + 32 * c + l, (byte) ((L[64 * c + l] & 15) | (L[64 * c + 32 + l] & 15) << 4));
        }
    }
}
