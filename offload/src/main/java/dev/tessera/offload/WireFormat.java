package dev.tessera.offload;

import java.nio.ByteBuffer;
import java.util.Locale;

/**
 * How activation rows travel between compute and memory nodes ({@code --offload-wire}): F16 halves the bytes at
 * the cost of rounding q, k, v and the attention output to half precision (their magnitudes suit it); F32 is exact.
 */
public enum WireFormat {
    F32(4), F16(2);

    public final int bytes;

    WireFormat(int bytes) {
        this.bytes = bytes;
    }

    public static WireFormat parse(String s) {
        return switch (s.trim().toLowerCase(Locale.ROOT)) {
            case "f32" -> F32;
            case "f16" -> F16;
            default -> throw new IllegalArgumentException("unknown wire format '" + s + "', expected f32|f16");
        };
    }

    /** Puts columns [from, to) of rows [0, numRows) of the row-major {@code src} (rows of {@code width}). */
    public void put(ByteBuffer b, float[] src, int numRows, int width, int from, int to) {
        for (int r = 0; r < numRows; r++) {
            int o = r * width;
            if (this == F32) for (int c = from; c < to; c++) b.putFloat(src[o + c]);
            else for (int c = from; c < to; c++) b.putShort(Float.floatToFloat16(src[o + c]));
        }
    }

    /** Reads rows [0, numRows) into columns [from, to) of {@code dst} (rows of {@code width}). */
    public void get(ByteBuffer b, float[] dst, int numRows, int width, int from, int to) {
        for (int r = 0; r < numRows; r++) {
            int o = r * width;
            if (this == F32) for (int c = from; c < to; c++) dst[o + c] = b.getFloat();
            else for (int c = from; c < to; c++) dst[o + c] = Float.float16ToFloat(b.getShort());
        }
    }

    /** Bytes of {@code numRows} rows of {@code cols} values. */
    public long size(int numRows, int cols) {
        return (long) numRows * cols * bytes;
    }

    public String flag() {
        return name().toLowerCase(Locale.ROOT);
    }
}
