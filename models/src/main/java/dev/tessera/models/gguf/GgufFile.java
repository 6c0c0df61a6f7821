package dev.tessera.models.gguf;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An open, memory-mapped GGUF file: metadata, tensor directory and zero-copy views of tensor data.
 * Closing it unmaps the file; views taken from it must not be used afterwards.
 */
public final class GgufFile implements AutoCloseable {
    private final Path path;
    private final int version;
    private final Map<String, GgufValue> metadata;
    private final Map<String, GgufTensorInfo> tensors;
    private final long dataOffset;
    private final MemorySegment mapped;
    private final Arena arena;

    GgufFile(Path path, int version, Map<String, GgufValue> metadata, List<GgufTensorInfo> tensors,
             long dataOffset, MemorySegment mapped, Arena arena) {
        this.path = path;
        this.version = version;
        this.metadata = Collections.unmodifiableMap(metadata);
        Map<String, GgufTensorInfo> byName = new LinkedHashMap<>();
        for (GgufTensorInfo t : tensors) byName.put(t.name(), t);
        this.tensors = Collections.unmodifiableMap(byName);
        this.dataOffset = dataOffset;
        this.mapped = mapped;
        this.arena = arena;
    }

    public static GgufFile open(Path path) {
        return GgufReader.open(path);
    }

    public Path path() { return path; }
    public int version() { return version; }
    public Map<String, GgufValue> metadata() { return metadata; }
    public Map<String, GgufTensorInfo> tensors() { return tensors; }
    public long dataOffset() { return dataOffset; }
    public long fileSize() { return mapped.byteSize(); }

    public GgufTensorInfo tensor(String name) {
        return tensors.get(name);
    }

    /** Zero-copy view of a tensor's bytes inside the mapped file. */
    public MemorySegment data(GgufTensorInfo info) {
        return mapped.asSlice(dataOffset + info.offset(), info.sizeBytes());
    }

    public boolean has(String key) { return metadata.containsKey(key); }

    public GgufValue value(String key) { return metadata.get(key); }

    public String getString(String key, String fallback) {
        GgufValue v = metadata.get(key);
        return v != null && v.value() instanceof String s ? s : fallback;
    }

    public String requireString(String key) {
        String s = getString(key, null);
        if (s == null) throw fail("missing metadata key " + key);
        return s;
    }

    public long getLong(String key, long fallback) {
        GgufValue v = metadata.get(key);
        if (v == null || v.type() == GgufType.STRING || v.type() == GgufType.ARRAY) return fallback;
        return v.asLong();
    }

    public int requireInt(String key) {
        GgufValue v = metadata.get(key);
        if (v == null || v.type() == GgufType.STRING || v.type() == GgufType.ARRAY) throw fail("missing metadata key " + key);
        long n = v.asLong();
        if (n < 0 || n > Integer.MAX_VALUE) throw fail(key + " = " + n + " is out of range");
        return (int) n;
    }

    public double getDouble(String key, double fallback) {
        GgufValue v = metadata.get(key);
        if (v == null || v.type() == GgufType.STRING || v.type() == GgufType.ARRAY) return fallback;
        return v.asDouble();
    }

    public boolean getBool(String key, boolean fallback) {
        GgufValue v = metadata.get(key);
        return v != null && v.value() instanceof Boolean b ? b : fallback;
    }

    public GgufArray getArray(String key) {
        GgufValue v = metadata.get(key);
        return v != null && v.value() instanceof GgufArray a ? a : null;
    }

    public String[] getStringArray(String key) {
        GgufArray a = getArray(key);
        return a != null && a.values() instanceof String[] s ? s : null;
    }

    public float[] getFloatArray(String key) {
        GgufArray a = getArray(key);
        if (a == null) return null;
        if (a.values() instanceof float[] f) return f;
        if (a.values() instanceof double[] d) {
            float[] f = new float[d.length];
            for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
            return f;
        }
        return null;
    }

    public int[] getIntArray(String key) {
        GgufArray a = getArray(key);
        if (a == null) return null;
        if (a.values() instanceof int[] i) return i;
        if (a.values() instanceof long[] l) {
            int[] i = new int[l.length];
            for (int k = 0; k < l.length; k++) i[k] = (int) l[k];
            return i;
        }
        return null;
    }

    /** An error naming this file. */
    public GgufException fail(String problem) {
        return new GgufException(GgufReader.oneLine(path.getFileName() + ": " + problem));
    }

    @Override
    public void close() {
        arena.close();
    }
}
