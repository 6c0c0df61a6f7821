package dev.tessera.models.quant;

import dev.tessera.kernels.TensorType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Encodes F32 values into a GGUF tensor type (used by the GGUF writer, synth and tests). */
public final class Quantizer {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

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
            default -> throw new UnsupportedOperationException("quantizing to " + type + " is not implemented yet");
        }
    }
}
