package dev.tessera.kernels;

/**
 * ggml tensor element types, with the ids GGUF stores and their block geometry.
 * A row of {@code n} elements takes {@code n / blockSize * blockBytes} bytes; n must be a multiple of blockSize.
 */
public enum TensorType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),
    Q4_1(3, 32, 20),
    Q5_0(6, 32, 22),
    Q5_1(7, 32, 24),
    Q8_0(8, 32, 34),
    Q8_1(9, 32, 36),
    Q2_K(10, 256, 84),
    Q3_K(11, 256, 110),
    Q4_K(12, 256, 144),
    Q5_K(13, 256, 176),
    Q6_K(14, 256, 210),
    Q8_K(15, 256, 292),
    BF16(30, 1, 2);

    public final int id;
    public final int blockSize;
    public final int blockBytes;

    TensorType(int id, int blockSize, int blockBytes) {
        this.id = id;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    /** Returns the type with this GGUF id, or null when Tessera does not know it. */
    public static TensorType fromId(int id) {
        for (TensorType t : values()) if (t.id == id) return t;
        return null;
    }

    /** Types whose weights Tessera can compute with. Q8_1 and Q8_K (activation formats) are recognised but not computed. */
    public boolean computable() {
        return switch (this) {
            case F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> true;
            default -> false;
        };
    }

    /** Bytes taken by {@code numElements} elements; numElements must be a multiple of blockSize. */
    public long byteSize(long numElements) {
        return numElements / blockSize * blockBytes;
    }

    public String ggmlName() {
        return name().toLowerCase();
    }
}
