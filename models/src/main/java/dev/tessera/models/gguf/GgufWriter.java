package dev.tessera.models.gguf;

import dev.tessera.kernels.TensorType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes a GGUF (v3, or v2 on request) file. Declare metadata and tensors, then {@link #write} lays out the file:
 * header and tensor directory, zero padding to {@code general.alignment} (default 32), then each tensor's bytes at an
 * aligned offset, each followed by zero padding. Tensor data is produced by a {@link TensorSource} straight into a
 * memory-mapped window of the output, one tensor at a time, so multi-GB files never pass through the heap.
 */
public final class GgufWriter {

    /** Fills one tensor's bytes; {@code dst} is exactly {@code info.sizeBytes()} long and may be written from any thread. */
    @FunctionalInterface
    public interface TensorSource {
        void fill(GgufTensorInfo info, MemorySegment dst);
    }

    private final Map<String, GgufValue> metadata = new LinkedHashMap<>();
    private final List<GgufTensorInfo> tensors = new ArrayList<>();
    private final Set<String> tensorNames = new HashSet<>();
    private int version = 3;

    public GgufWriter version(int version) {
        if (version != 2 && version != 3) throw new IllegalArgumentException("GGUF version " + version + " cannot be written, only 2 or 3");
        this.version = version;
        return this;
    }

    /** Adds (or replaces) one metadata entry; entries are written in the order they were first added. */
    public GgufWriter metadata(String key, GgufValue value) {
        checkValue(key, value.type(), value.value(), 0);
        metadata.put(key, value);
        return this;
    }

    public GgufWriter metadata(Map<String, GgufValue> entries) {
        entries.forEach(this::metadata);
        return this;
    }

    /** Declares a tensor; {@code dims} are ggml ne (ne0 first). Offsets are assigned by {@link #tensors()}. */
    public GgufWriter tensor(String name, long[] dims, TensorType type) {
        if (!tensorNames.add(name)) throw new IllegalArgumentException("duplicate tensor " + name);
        if (dims.length < 1 || dims.length > GgufReader.MAX_DIMS) throw new IllegalArgumentException("tensor " + name + " has " + dims.length + " dimensions");
        for (long d : dims) if (d <= 0) throw new IllegalArgumentException("tensor " + name + " has dimension " + d);
        if (dims[0] % type.blockSize != 0) throw new IllegalArgumentException("tensor " + name + " row length " + dims[0] + " is not a multiple of " + type + " block size " + type.blockSize);
        tensors.add(new GgufTensorInfo(name, dims.clone(), type, -1));
        return this;
    }

    public long alignment() {
        GgufValue a = metadata.get("general.alignment");
        if (a == null) return GgufReader.DEFAULT_ALIGNMENT;
        long n = a.asLong();
        if (n <= 0 || n > 65536 || Long.bitCount(n) != 1) throw new IllegalArgumentException("general.alignment " + n + " is not a power of two up to 65536");
        return n;
    }

    /** The declared tensors with their data-section offsets, in file order. */
    public List<GgufTensorInfo> tensors() {
        long alignment = alignment();
        List<GgufTensorInfo> laidOut = new ArrayList<>(tensors.size());
        long offset = 0;
        for (GgufTensorInfo t : tensors) {
            laidOut.add(new GgufTensorInfo(t.name(), t.dims(), t.type(), offset));
            offset = align(offset + t.sizeBytes(), alignment);
        }
        return Collections.unmodifiableList(laidOut);
    }

    /** Bytes of the data section: every tensor, each padded to the alignment. */
    public long dataSizeBytes() {
        long alignment = alignment();
        long total = 0;
        for (GgufTensorInfo t : tensors) total = align(total + t.sizeBytes(), alignment);
        return total;
    }

    /** Writes the file, replacing any existing one. If anything fails, the partial file is deleted. */
    public void write(Path out, TensorSource source) {
        try {
            writeOrLeavePartial(out, source);
        } catch (RuntimeException | Error e) {
            try {
                Files.deleteIfExists(out);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    private void writeOrLeavePartial(Path out, TensorSource source) {
        long alignment = alignment();
        List<GgufTensorInfo> laidOut = tensors();
        byte[] header = header(laidOut);
        long dataOffset = align(header.length, alignment);
        long fileSize = dataOffset + dataSizeBytes();
        try (FileChannel ch = FileChannel.open(out, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            // Header and its padding through the channel; the file is then grown to its full size (new bytes read as zero).
            ByteBuffer headerBuf = ByteBuffer.allocate((int) dataOffset);
            headerBuf.put(header).position(0);
            while (headerBuf.hasRemaining()) ch.write(headerBuf);
            if (fileSize > dataOffset) {
                ch.write(ByteBuffer.allocate(1), fileSize - 1);
            }
            for (GgufTensorInfo t : laidOut) {
                long start = dataOffset + t.offset();
                long padded = align(t.sizeBytes(), alignment);
                // A shared arena so the source may fill rows from several threads; closing it unmaps this window.
                try (Arena arena = Arena.ofShared()) {
                    MemorySegment window = ch.map(FileChannel.MapMode.READ_WRITE, start, padded, arena);
                    source.fill(t, window.asSlice(0, t.sizeBytes()));
                    window.asSlice(t.sizeBytes()).fill((byte) 0);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
        }
    }

    /** Writes a copy of {@code src} (same version, metadata, tensor order and bytes) to {@code out}. */
    public static void copy(GgufFile src, Path out) {
        GgufWriter w = new GgufWriter().version(src.version()).metadata(src.metadata());
        for (GgufTensorInfo t : src.tensors().values()) w.tensor(t.name(), t.dims(), t.type());
        w.write(out, (info, dst) -> dst.copyFrom(src.data(src.tensor(info.name()))));
    }

    private byte[] header(List<GgufTensorInfo> laidOut) {
        HeaderBuffer b = new HeaderBuffer();
        b.u32(GgufReader.MAGIC);
        b.u32(version);
        b.u64(laidOut.size());
        b.u64(metadata.size());
        for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
            b.string(e.getKey());
            b.u32(e.getValue().type().ordinal());
            writeValue(b, e.getValue().type(), e.getValue().value());
        }
        for (GgufTensorInfo t : laidOut) {
            b.string(t.name());
            b.u32(t.dims().length);
            for (long d : t.dims()) b.u64(d);
            b.u32(t.type().id);
            b.u64(t.offset());
        }
        return b.toByteArray();
    }

    private static void writeValue(HeaderBuffer b, GgufType type, Object v) {
        switch (type) {
            case UINT8, INT8, BOOL -> b.u8(v instanceof Boolean bool ? (bool ? 1 : 0) : ((Number) v).intValue());
            case UINT16, INT16 -> b.u16(((Number) v).intValue());
            case UINT32, INT32 -> b.u32(((Number) v).intValue());
            case UINT64, INT64 -> b.u64(((Number) v).longValue());
            case FLOAT32 -> b.u32(Float.floatToRawIntBits(((Number) v).floatValue()));
            case FLOAT64 -> b.u64(Double.doubleToRawLongBits(((Number) v).doubleValue()));
            case STRING -> b.string((String) v);
            case ARRAY -> writeArray(b, (GgufArray) v);
        }
    }

    private static void writeArray(HeaderBuffer b, GgufArray a) {
        GgufType et = a.elementType();
        b.u32(et.ordinal());
        int n = a.length();
        b.u64(n);
        switch (a.values()) {
            case int[] v -> { for (int x : v) writeValue(b, et, x); }
            case long[] v -> { for (long x : v) writeValue(b, et, x); }
            case float[] v -> { for (float x : v) b.u32(Float.floatToRawIntBits(x)); }
            case double[] v -> { for (double x : v) b.u64(Double.doubleToRawLongBits(x)); }
            case boolean[] v -> { for (boolean x : v) b.u8(x ? 1 : 0); }
            case String[] v -> { for (String x : v) b.string(x); }
            case GgufArray[] v -> { for (GgufArray x : v) writeArray(b, x); }
            default -> throw new IllegalStateException("unchecked array " + a.values().getClass());
        }
    }

    /** Rejects values the reader would not give back unchanged; these are programming errors, not bad files. */
    private static void checkValue(String key, GgufType type, Object v, int depth) {
        boolean ok = switch (type) {
            case UINT8 -> v instanceof Integer i && i >= 0 && i <= 0xFF;
            case INT8 -> v instanceof Integer i && i >= Byte.MIN_VALUE && i <= Byte.MAX_VALUE;
            case UINT16 -> v instanceof Integer i && i >= 0 && i <= 0xFFFF;
            case INT16 -> v instanceof Integer i && i >= Short.MIN_VALUE && i <= Short.MAX_VALUE;
            case INT32 -> v instanceof Integer;
            case UINT32 -> v instanceof Long l && l >= 0 && l <= 0xFFFF_FFFFL;
            case UINT64, INT64 -> v instanceof Long;
            case FLOAT32 -> v instanceof Float;
            case FLOAT64 -> v instanceof Double;
            case BOOL -> v instanceof Boolean;
            case STRING -> v instanceof String;
            case ARRAY -> v instanceof GgufArray;
        };
        if (!ok) throw new IllegalArgumentException("metadata " + key + ": " + describe(v) + " is not a valid " + type);
        if (v instanceof GgufArray a) checkArray(key, a, depth);
    }

    private static void checkArray(String key, GgufArray a, int depth) {
        if (depth >= GgufReader.MAX_ARRAY_DEPTH) throw new IllegalArgumentException("metadata " + key + " nests arrays deeper than " + GgufReader.MAX_ARRAY_DEPTH);
        GgufType et = a.elementType();
        Object vs = a.values();
        boolean ok = switch (et) {
            case UINT8, INT8, UINT16, INT16, INT32 -> vs instanceof int[];
            case UINT32, UINT64, INT64 -> vs instanceof long[];
            case FLOAT32 -> vs instanceof float[];
            case FLOAT64 -> vs instanceof double[];
            case BOOL -> vs instanceof boolean[];
            case STRING -> vs instanceof String[];
            case ARRAY -> vs instanceof GgufArray[];
        };
        if (!ok) throw new IllegalArgumentException("metadata " + key + ": array of " + et + " holds " + describe(vs));
        switch (vs) {
            case int[] v -> { for (int x : v) checkValue(key, et, x, depth); }
            case long[] v -> { for (long x : v) checkValue(key, et, x, depth); }
            case String[] v -> { for (String x : v) checkValue(key, et, x, depth); }
            case GgufArray[] v -> { for (GgufArray x : v) checkValue(key, et, x, depth + 1); }
            default -> { }
        }
    }

    private static String describe(Object v) {
        if (v == null) return "null";
        if (v.getClass().isArray()) return v.getClass().getComponentType().getSimpleName() + "[]";
        return v.getClass().getSimpleName() + " " + v;
    }

    static long align(long n, long alignment) {
        return (n + alignment - 1) / alignment * alignment;
    }

    /** A growable little-endian byte buffer for the header (metadata can reach megabytes with large vocabularies). */
    private static final class HeaderBuffer {
        private ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

        void u8(int v) { room(1); buf.put((byte) v); }
        void u16(int v) { room(2); buf.putShort((short) v); }
        void u32(int v) { room(4); buf.putInt(v); }
        void u64(long v) { room(8); buf.putLong(v); }

        void string(String s) {
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            u64(bytes.length);
            room(bytes.length);
            buf.put(bytes);
        }

        private void room(int n) {
            if (buf.remaining() >= n) return;
            long want = Math.max((long) buf.capacity() * 2, (long) buf.position() + n);
            if (want > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("GGUF header larger than 2 GiB");
            ByteBuffer bigger = ByteBuffer.allocate((int) want).order(ByteOrder.LITTLE_ENDIAN);
            bigger.put(buf.flip());
            buf = bigger;
        }

        byte[] toByteArray() {
            return Arrays.copyOf(buf.array(), buf.position());
        }
    }
}
