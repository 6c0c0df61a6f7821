package dev.tessera.models.gguf;

/**
 * One metadata value with its GGUF type, so a file can be written back unchanged.
 * Java representation: UINT8/INT8/UINT16/INT16/INT32 → Integer, UINT32/UINT64/INT64 → Long, FLOAT32 → Float,
 * FLOAT64 → Double, BOOL → Boolean, STRING → String, ARRAY → {@link GgufArray}.
 */
public record GgufValue(GgufType type, Object value) {

    public static GgufValue ofString(String s) { return new GgufValue(GgufType.STRING, s); }
    public static GgufValue ofUint32(long v) { return new GgufValue(GgufType.UINT32, v); }
    public static GgufValue ofInt32(int v) { return new GgufValue(GgufType.INT32, v); }
    public static GgufValue ofFloat32(float v) { return new GgufValue(GgufType.FLOAT32, v); }
    public static GgufValue ofBool(boolean v) { return new GgufValue(GgufType.BOOL, v); }
    public static GgufValue ofArray(GgufArray a) { return new GgufValue(GgufType.ARRAY, a); }

    public long asLong() {
        return switch (value) {
            case Integer i -> i;
            case Long l -> l;
            case Float f -> (long) (float) f;
            case Double d -> (long) (double) d;
            case Boolean b -> b ? 1 : 0;
            default -> throw new IllegalArgumentException("not a number: " + type);
        };
    }

    public double asDouble() {
        return switch (value) {
            case Float f -> f;
            case Double d -> d;
            default -> asLong();
        };
    }
}
