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
    IQ4_NL(20, 32, 18),
    IQ4_XS(23, 256, 136),
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
            case F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS -> true;
            default -> false;
        };
    }

    /**
     * ggml's name of a type id, for messages about files whose types Tessera does not know (IQ2_XXS, TQ1_0, ...), or
     * null for an id ggml does not define.
     */
    public static String ggmlTypeName(long id) {
        TensorType known = id >= 0 && id <= Integer.MAX_VALUE ? fromId((int) id) : null;
        if (known != null) return known.name();
        return id >= 0 && id < GGML_NAMES.length && !GGML_NAMES[(int) id].isEmpty() ? GGML_NAMES[(int) id] : null;
    }

    /** ggml's type ids 0..39 (ggml.h); the empty names are ids ggml removed. */
    private static final String[] GGML_NAMES = {"F32", "F16", "Q4_0", "Q4_1", "", "", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
            "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
            "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "", "", "", "TQ1_0", "TQ2_0", "", "", "", "MXFP4"};

    /** Names of the types Tessera computes with, for messages. */
    public static String computableNames() {
        StringBuilder sb = new StringBuilder();
        for (TensorType t : values()) if (t.computable()) sb.append(sb.isEmpty() ? "" : ", ").append(t.name());
        return sb.toString();
    }

    /** Bytes taken by {@code numElements} elements; numElements must be a multiple of blockSize. */
    public long byteSize(long numElements) {
        return numElements / blockSize * blockBytes;
    }

    public String ggmlName() {
        return name().toLowerCase();
    }
}
