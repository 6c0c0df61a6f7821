package dev.tessera.kernels;

import java.util.Locale;

/** Element type of cached keys and values ({@code --kv-cache-type}): F16 halves the memory per token. */
public enum KvCacheType {
    F32(4), F16(2);

    private final int bytes;

    KvCacheType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    public static KvCacheType parse(String name) {
        for (KvCacheType t : values()) if (t.name().equalsIgnoreCase(name)) return t;
        throw new IllegalArgumentException("unknown KV cache type '" + name + "': expected f32 or f16");
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
