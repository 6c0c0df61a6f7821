package dev.tessera.models.gguf;

import dev.tessera.kernels.TensorType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parses a GGUF (v2, v3) file mapped through FFM. Every length and count read from the file is checked against the
 * bytes that remain before anything is allocated, so a corrupt file fails with one line instead of an OOM or a hang.
 */
public final class GgufReader {
    static final int MAGIC = 0x46554747; // "GGUF" little-endian
    static final int DEFAULT_ALIGNMENT = 32;
    static final int MAX_DIMS = 4;
    static final int MAX_ARRAY_DEPTH = 8;
    /** Far above any real value (the largest vocabularies have ~0.5M merges, chat templates are kilobytes). */
    static final long MAX_ARRAY_LENGTH = 1L << 24;
    static final long MAX_STRING_BYTES = 1L << 24;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final String fileName;
    private final MemorySegment seg;
    private final long size;
    private long pos;

    private GgufReader(String fileName, MemorySegment seg) {
        this.fileName = fileName;
        this.seg = seg;
        this.size = seg.byteSize();
    }

    public static GgufFile open(Path path) {
        String name = String.valueOf(path.getFileName());
        Arena arena = Arena.ofShared();
        try {
            MemorySegment seg;
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
                seg = ch.size() == 0 ? MemorySegment.NULL.reinterpret(0) : ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            } catch (NoSuchFileException e) {
                throw new GgufException(path + ": no such file");
            } catch (IOException e) {
                throw new GgufException(path + ": cannot read (" + e.getMessage() + ")");
            }
            return new GgufReader(name, seg).parse(path, arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private GgufFile parse(Path path, Arena arena) {
        if (size < 4) throw fail("file is " + size + " bytes, too short for a GGUF header");
        int magic = seg.get(I32, 0);
        if (magic != MAGIC) throw fail(String.format("bad magic 0x%08x, expected 0x%08x (\"GGUF\"); not a GGUF file", magic, MAGIC));
        pos = 4;
        long rawVersion = u32("version");
        if (rawVersion != 2 && rawVersion != 3) {
            long swapped = Integer.toUnsignedLong(Integer.reverseBytes((int) rawVersion));
            String hint = swapped == 2 || swapped == 3 ? " (a big-endian file?)" : rawVersion == 1 ? " (GGUF v1 is obsolete)" : "";
            throw fail("unsupported GGUF version " + rawVersion + ", expected 2 or 3" + hint);
        }
        int version = (int) rawVersion;
        long numTensors = u64("tensor count");
        long numKv = u64("metadata count");
        // Each tensor entry takes at least 8+4+8+4+8 bytes and each KV at least 8+4+1: bound the counts by the file.
        if (numTensors < 0 || numTensors > (size - pos) / 32) throw fail("absurd tensor count " + Long.toUnsignedString(numTensors) + " for a file of " + size + " bytes");
        if (numKv < 0 || numKv > (size - pos) / 13) throw fail("absurd metadata count " + Long.toUnsignedString(numKv) + " for a file of " + size + " bytes");

        Map<String, GgufValue> metadata = new LinkedHashMap<>();
        for (long i = 0; i < numKv; i++) {
            String key = string("metadata key #" + i);
            String shownKey = shown(key);
            long typeId = u32("type of " + shownKey);
            GgufType type = typeId > Integer.MAX_VALUE ? null : GgufType.fromId((int) typeId);
            if (type == null) throw fail("metadata " + shownKey + " has unknown value type " + typeId);
            Object value = value(type, shownKey, 0);
            if (metadata.put(key, new GgufValue(type, value)) != null) throw fail("duplicate metadata key " + shownKey);
        }

        List<GgufTensorInfo> infos = new ArrayList<>((int) numTensors);
        Set<String> names = new HashSet<>();
        for (long i = 0; i < numTensors; i++) {
            String rawName = string("tensor name #" + i);
            String name = shown(rawName);
            long numDims = u32("dimension count of " + name);
            if (numDims < 1 || numDims > MAX_DIMS) throw fail("tensor " + name + " has " + numDims + " dimensions, expected 1 to " + MAX_DIMS);
            long[] dims = new long[(int) numDims];
            long numElements = 1;
            for (int d = 0; d < numDims; d++) {
                dims[d] = u64("dimension of " + name);
                if (dims[d] <= 0 || dims[d] > Integer.MAX_VALUE) throw fail("tensor " + name + " has absurd dimension " + Long.toUnsignedString(dims[d]));
                // No type stores an element in fewer than 2 bits, so more than 4 elements per file byte cannot fit.
                // Dividing first keeps the product from overflowing.
                if (numElements > size * 4 / dims[d]) throw fail("tensor " + name + " has absurd shape " + Arrays.toString(Arrays.copyOf(dims, d + 1)) + " for a file of " + size + " bytes");
                numElements *= dims[d];
            }
            long typeId = u32("type of " + name);
            TensorType type = typeId > Integer.MAX_VALUE ? null : TensorType.fromId((int) typeId);
            if (type == null) {
                String ggml = TensorType.ggmlTypeName(typeId);
                throw fail("tensor " + name + (ggml == null ? " has unknown tensor type " + typeId
                        : " has type " + ggml + " (ggml type " + typeId + "), which Tessera cannot compute with; it runs " + TensorType.computableNames()));
            }
            if (dims[0] % type.blockSize != 0) throw fail("tensor " + name + " row length " + dims[0] + " is not a multiple of " + type + " block size " + type.blockSize);
            long offset = u64("offset of " + name);
            if (!names.add(rawName)) throw fail("duplicate tensor " + name);
            infos.add(new GgufTensorInfo(rawName, dims, type, offset));
        }

        long alignment = DEFAULT_ALIGNMENT;
        GgufValue a = metadata.get("general.alignment");
        if (a != null) {
            if (a.type() == GgufType.STRING || a.type() == GgufType.ARRAY) throw fail("general.alignment is not an integer");
            alignment = a.asLong();
            if (alignment <= 0 || alignment > 65536 || Long.bitCount(alignment) != 1) throw fail("general.alignment " + alignment + " is not a power of two up to 65536");
        }
        long dataOffset = (pos + alignment - 1) / alignment * alignment;
        if (numTensors > 0 && dataOffset > size) throw fail("data section starts at byte " + dataOffset + ", file is " + size + " bytes");
        for (GgufTensorInfo t : infos) {
            if (t.offset() < 0 || t.offset() % alignment != 0) throw fail("tensor " + shown(t.name()) + " offset " + Long.toUnsignedString(t.offset()) + " is not aligned to " + alignment);
            // offset < 2^63 and dataOffset + sizeBytes is bounded by a few times the file, so overflow shows as a negative end.
            long end = dataOffset + t.offset() + t.sizeBytes();
            if (end < 0 || end > size) throw fail("tensor " + shown(t.name()) + " ends at byte " + (end < 0 ? Long.toUnsignedString(end) : end) + ", file is " + size + " bytes (tensor data past end of file)");
        }
        return new GgufFile(path, version, metadata, infos, dataOffset, seg, arena);
    }

    private Object value(GgufType type, String key, int depth) {
        return switch (type) {
            case UINT8 -> Byte.toUnsignedInt(bytes(1, key)[0]);
            case INT8 -> (int) bytes(1, key)[0];
            case UINT16 -> { need(2, key); int v = Short.toUnsignedInt(seg.get(I16, pos)); pos += 2; yield v; }
            case INT16 -> { need(2, key); int v = seg.get(I16, pos); pos += 2; yield v; }
            case UINT32 -> Integer.toUnsignedLong(i32(key));
            case INT32 -> i32(key);
            case FLOAT32 -> { need(4, key); float v = seg.get(F32, pos); pos += 4; yield v; }
            case BOOL -> {
                int b = bytes(1, key)[0];
                if (b != 0 && b != 1) throw fail("metadata " + key + " has bool value " + b + ", expected 0 or 1");
                yield b == 1;
            }
            case STRING -> string(key);
            case UINT64, INT64 -> u64(key);
            case FLOAT64 -> { need(8, key); double v = seg.get(F64, pos); pos += 8; yield v; }
            case ARRAY -> array(key, depth);
        };
    }

    private GgufArray array(String key, int depth) {
        if (depth >= MAX_ARRAY_DEPTH) throw fail("metadata " + key + " nests arrays deeper than " + MAX_ARRAY_DEPTH);
        long typeId = u32("array type of " + key);
        GgufType et = typeId > Integer.MAX_VALUE ? null : GgufType.fromId((int) typeId);
        if (et == null) throw fail("metadata " + key + " is an array of unknown type " + typeId);
        long n = u64("array length of " + key);
        long minBytes = et == GgufType.STRING ? 8 : et == GgufType.ARRAY ? 12 : et.scalarBytes();
        if (n < 0 || n > MAX_ARRAY_LENGTH) throw fail("metadata " + key + " claims an absurd " + Long.toUnsignedString(n) + " elements (at most " + MAX_ARRAY_LENGTH + ")");
        if (n > (size - pos) / minBytes) throw fail("metadata " + key + " claims " + Long.toUnsignedString(n) + " elements, more than the " + (size - pos) + " bytes left can hold (truncated header?)");
        int len = (int) n;
        switch (et) {
            case UINT8, INT8, UINT16, INT16, INT32 -> {
                int[] v = new int[len];
                for (int i = 0; i < len; i++) v[i] = (Integer) value(et, key, depth + 1);
                return new GgufArray(et, v);
            }
            case UINT32, UINT64, INT64 -> {
                long[] v = new long[len];
                for (int i = 0; i < len; i++) v[i] = (Long) value(et, key, depth + 1);
                return new GgufArray(et, v);
            }
            case FLOAT32 -> {
                float[] v = new float[len];
                MemorySegment.copy(seg, F32, pos, v, 0, len);
                pos += 4L * len;
                return new GgufArray(et, v);
            }
            case FLOAT64 -> {
                double[] v = new double[len];
                MemorySegment.copy(seg, F64, pos, v, 0, len);
                pos += 8L * len;
                return new GgufArray(et, v);
            }
            case BOOL -> {
                boolean[] v = new boolean[len];
                for (int i = 0; i < len; i++) v[i] = (Boolean) value(et, key, depth + 1);
                return new GgufArray(et, v);
            }
            case STRING -> {
                String[] v = new String[len];
                for (int i = 0; i < len; i++) v[i] = string(key);
                return new GgufArray(et, v);
            }
            case ARRAY -> {
                GgufArray[] v = new GgufArray[len];
                for (int i = 0; i < len; i++) v[i] = array(key, depth + 1);
                return new GgufArray(et, v);
            }
        }
        throw new IllegalStateException(et.toString());
    }

    private String string(String what) {
        long n = u64("length of " + what);
        if (n < 0 || n > MAX_STRING_BYTES) throw fail(what + " claims an absurd string of " + Long.toUnsignedString(n) + " bytes (at most " + MAX_STRING_BYTES + ")");
        if (n > size - pos) throw fail(what + " claims a string of " + n + " bytes, only " + (size - pos) + " left (truncated header?)");
        byte[] b = bytes((int) n, what);
        return new String(b, StandardCharsets.UTF_8);
    }

    private byte[] bytes(int n, String what) {
        need(n, what);
        byte[] b = new byte[n];
        MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, b, 0, n);
        pos += n;
        return b;
    }

    private int i32(String what) {
        need(4, what);
        int v = seg.get(I32, pos);
        pos += 4;
        return v;
    }

    private long u32(String what) {
        return Integer.toUnsignedLong(i32(what));
    }

    private long u64(String what) {
        need(8, what);
        long v = seg.get(I64, pos);
        pos += 8;
        return v;
    }

    private void need(long n, String what) {
        if (pos + n > size) throw fail("truncated header: " + what + " at byte " + pos + " needs " + n + " bytes, file is " + size + " bytes");
    }

    private GgufException fail(String problem) {
        return new GgufException(oneLine(fileName + ": " + problem));
    }

    /** A name from the file as shown in messages: control characters escaped, at most 80 characters. */
    static String shown(String name) {
        String s = oneLine(name);
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }

    /** Escapes control characters and line separators so a message stays on one line. */
    static String oneLine(String s) {
        StringBuilder sb = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean bad = c < 0x20 || c == 0x7f || c == 0x85 || c == 0x2028 || c == 0x2029;
            if (bad && sb == null) sb = new StringBuilder(s.length() + 8).append(s, 0, i);
            if (sb != null) {
                if (bad) sb.append(String.format("\\u%04x", (int) c));
                else sb.append(c);
            }
        }
        return sb == null ? s : sb.toString();
    }
}
