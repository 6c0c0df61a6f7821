package dev.tessera.models.gguf;

/**
 * A metadata array. {@code values} is a primitive Java array matching the element type:
 * int[] for UINT8/INT8/UINT16/INT16/INT32, long[] for UINT32/UINT64/INT64, float[] for FLOAT32,
 * double[] for FLOAT64, boolean[] for BOOL, String[] for STRING and GgufArray[] for nested ARRAY.
 */
public record GgufArray(GgufType elementType, Object values) {

    public int length() {
        return java.lang.reflect.Array.getLength(values);
    }

    public static GgufArray ofStrings(String[] v) { return new GgufArray(GgufType.STRING, v); }
    public static GgufArray ofFloats(float[] v) { return new GgufArray(GgufType.FLOAT32, v); }
    public static GgufArray ofInt32s(int[] v) { return new GgufArray(GgufType.INT32, v); }
}
