package dev.tessera.models.gguf;

/** Metadata value types as numbered by the GGUF spec. */
public enum GgufType {
    UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64;

    public static GgufType fromId(int id) {
        return id >= 0 && id < values().length ? values()[id] : null;
    }

    /** Fixed byte size of a scalar of this type; 0 for STRING and ARRAY. */
    public int scalarBytes() {
        return switch (this) {
            case UINT8, INT8, BOOL -> 1;
            case UINT16, INT16 -> 2;
            case UINT32, INT32, FLOAT32 -> 4;
            case UINT64, INT64, FLOAT64 -> 8;
            case STRING, ARRAY -> 0;
        };
    }
}
