package dev.tessera.models.quant;

import dev.tessera.kernels.TensorType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Encodes F32 values into a GGUF tensor type (used by the GGUF writer, synth and tests). The block formats follow
 * ggml's reference quantizers ({@code quantize_row_*_ref}), which is what llama-quantize runs without an imatrix.
 */
public final class Quantizer {
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;

    private Quantizer() {}

    /**
     * Encodes {@code n} values from {@code src[srcOffset..]} into {@code dst} at {@code dstOffset}, writing
     * {@code type.byteSize(n)} bytes. n must be a multiple of the type's block size.
     */
    public static void quantize(TensorType type, float[] src, int srcOffset, int n, MemorySegment dst, long dstOffset) {
        if (n % type.blockSize != 0) throw new IllegalArgumentException(n + " values is not a multiple of " + type + " block size " + type.blockSize);
        switch (type) {
            case F32 -> MemorySegment.copy(src, srcOffset, dst, F32, dstOffset, n);
            case F16 -> { for (int i = 0; i < n; i++) dst.set(I16, dstOffset + 2L * i, Float.floatToFloat16(src[srcOffset + i])); }
            case BF16 -> { for (int i = 0; i < n; i++) dst.set(I16, dstOffset + 2L * i, toBf16(src[srcOffset + i])); }
            case Q8_0 -> Q8_0Quantizer.quantize(src, srcOffset, n, dst, dstOffset);
            case Q4_0 -> Q4_0Quantizer.quantize(src, srcOffset, n, dst, dstOffset);
            case Q4_1 -> Q4_1Quantizer.quantize(src, srcOffset, n, dst, dstOffset);
            case Q5_0 -> Q5_0Quantizer.quantize(src, srcOffset, n, dst, dstOffset);
            case Q5_1 -> Q5_1Quantizer.quantize(src, srcOffset, n, dst, dstOffset);
            case Q4_K -> Q4KQuantizer.quantize(src, srcOffset, n, dst, dstOffset);
            case Q5_K -> Q5KQuantizer.quantize(src, srcOffset, n, dst, dstOffset);
            case Q6_K -> Q6KQuantizer.quantize(src, srcOffset, n, dst, dstOffset);
            default -> throw new UnsupportedOperationException("quantizing to " + type + " is not supported");
        }
    }

    /** float → bfloat16 rounding to nearest even, NaNs kept quiet (ggml's fp32_to_bf16). */
    static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) return (short) ((bits >>> 16) | 64);
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    /**
     * C's roundf for |v| &lt; 2^31: halves go away from zero (Math.round would send -2.5 to -2). a - t is exact, so
     * values just below a half (0.49999997) stay down.
     */
    static int roundHalfAway(float v) {
        float a = Math.abs(v);
        int t = (int) a;
        if (a - t >= 0.5f) t++;
        return v < 0 ? -t : t;
    }

    /** ggml's nearest_int: round half to even via the 1.5 * 2^23 trick; valid for |v| &lt; 2^22. */
    static int nearestInt(float v) {
        int bits = Float.floatToRawIntBits(v + 12582912f);
        return (bits & 0x007fffff) - 0x00400000;
    }
}
