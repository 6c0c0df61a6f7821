package dev.tessera.models.gguf;

import dev.tessera.kernels.TensorType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GgufWriterTest {
    @TempDir
    Path tmp;

    @Test
    void copyOfStoriesRereadsEqualAndIsByteIdentical() throws IOException {
        Path out = tmp.resolve("copy.gguf");
        try (GgufFile src = GgufFile.open(GgufReaderTest.stories())) {
            GgufWriter.copy(src, out);
            try (GgufFile copy = GgufFile.open(out)) {
                assertEquals(src.version(), copy.version());
                assertSameMetadata(src.metadata(), copy.metadata());
                assertEquals(src.dataOffset(), copy.dataOffset());
                assertEquals(new ArrayList<>(src.tensors().keySet()), new ArrayList<>(copy.tensors().keySet()));
                for (GgufTensorInfo t : src.tensors().values()) {
                    GgufTensorInfo c = copy.tensor(t.name());
                    assertArrayEquals(t.dims(), c.dims(), t.name());
                    assertEquals(t.type(), c.type(), t.name());
                    assertEquals(t.offset(), c.offset(), t.name());
                    assertEquals(-1, src.data(t).mismatch(copy.data(c)), t.name());
                }
            }
        }
        // The original was written by llama.cpp with the same layout rules, so the copy matches it byte for byte.
        assertEquals(-1, Files.mismatch(GgufReaderTest.stories(), out));
    }

    @Test
    void everyMetadataTypeRoundTrips() {
        Map<String, GgufValue> md = new LinkedHashMap<>();
        md.put("t.u8", new GgufValue(GgufType.UINT8, 255));
        md.put("t.i8", new GgufValue(GgufType.INT8, -128));
        md.put("t.u16", new GgufValue(GgufType.UINT16, 65535));
        md.put("t.i16", new GgufValue(GgufType.INT16, -32768));
        md.put("t.u32", GgufValue.ofUint32(4294967295L));
        md.put("t.i32", GgufValue.ofInt32(Integer.MIN_VALUE));
        md.put("t.f32", GgufValue.ofFloat32(-1.5e-7f));
        md.put("t.bool.true", GgufValue.ofBool(true));
        md.put("t.bool.false", GgufValue.ofBool(false));
        md.put("t.str", GgufValue.ofString("héllo ▁wörld \u0000 end"));
        md.put("t.empty", GgufValue.ofString(""));
        md.put("t.u64", new GgufValue(GgufType.UINT64, -1L));
        md.put("t.i64", new GgufValue(GgufType.INT64, Long.MIN_VALUE));
        md.put("t.f64", new GgufValue(GgufType.FLOAT64, Math.PI));
        md.put("a.u8", GgufValue.ofArray(new GgufArray(GgufType.UINT8, new int[] {0, 1, 255})));
        md.put("a.i8", GgufValue.ofArray(new GgufArray(GgufType.INT8, new int[] {-128, 127})));
        md.put("a.u16", GgufValue.ofArray(new GgufArray(GgufType.UINT16, new int[] {65535, 7})));
        md.put("a.i16", GgufValue.ofArray(new GgufArray(GgufType.INT16, new int[] {-2, 32767})));
        md.put("a.u32", GgufValue.ofArray(new GgufArray(GgufType.UINT32, new long[] {4294967295L, 3})));
        md.put("a.i32", GgufValue.ofArray(GgufArray.ofInt32s(new int[] {-1, 2, Integer.MAX_VALUE})));
        md.put("a.f32", GgufValue.ofArray(GgufArray.ofFloats(new float[] {1f, Float.NaN, -0f})));
        md.put("a.bool", GgufValue.ofArray(new GgufArray(GgufType.BOOL, new boolean[] {true, false, true})));
        md.put("a.str", GgufValue.ofArray(GgufArray.ofStrings(new String[] {"a", "", "<0x0A>", "日本"})));
        md.put("a.u64", GgufValue.ofArray(new GgufArray(GgufType.UINT64, new long[] {Long.MAX_VALUE, -1L})));
        md.put("a.i64", GgufValue.ofArray(new GgufArray(GgufType.INT64, new long[] {Long.MIN_VALUE})));
        md.put("a.f64", GgufValue.ofArray(new GgufArray(GgufType.FLOAT64, new double[] {Double.MAX_VALUE, -0.0, 1e-300})));
        md.put("a.empty", GgufValue.ofArray(new GgufArray(GgufType.FLOAT32, new float[0])));
        GgufArray inner1 = GgufArray.ofStrings(new String[] {"x", "y"});
        GgufArray inner2 = GgufArray.ofInt32s(new int[] {4, 5, 6});
        GgufArray deep = new GgufArray(GgufType.ARRAY, new GgufArray[] {
                new GgufArray(GgufType.BOOL, new boolean[] {true}), new GgufArray(GgufType.ARRAY, new GgufArray[0])});
        md.put("a.nested", GgufValue.ofArray(new GgufArray(GgufType.ARRAY, new GgufArray[] {inner1, inner2, deep})));

        Path out = tmp.resolve("types.gguf");
        float[] values = {1f, -2f, 3.5f};
        new GgufWriter().metadata(md)
                .tensor("v", new long[] {3}, TensorType.F32)
                .tensor("w", new long[] {32, 2}, TensorType.F16)
                .write(out, (info, dst) -> {
                    if (info.name().equals("v")) MemorySegment.copy(values, 0, dst, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, 3);
                    else dst.fill((byte) 0x3c);
                });
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(3, f.version());
            assertSameMetadata(md, f.metadata());
            assertEquals(new ArrayList<>(md.keySet()), new ArrayList<>(f.metadata().keySet()));
            GgufTensorInfo v = f.tensor("v");
            GgufTensorInfo w = f.tensor("w");
            assertEquals(0, v.offset());
            assertEquals(32, w.offset()); // 12 bytes of v padded to the default alignment of 32
            assertEquals(0, f.dataOffset() % 32);
            assertEquals(f.dataOffset() + 32 + 128, f.fileSize());
            float[] back = f.data(v).toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
            assertArrayEquals(values, back);
            for (byte b : f.data(w).toArray(ValueLayout.JAVA_BYTE)) assertEquals(0x3c, b);
        }
    }

    @Test
    void paddingIsZeroAndCustomAlignmentIsHonoured() throws IOException {
        Path out = tmp.resolve("aligned.gguf");
        new GgufWriter()
                .metadata("general.alignment", GgufValue.ofUint32(64))
                .metadata("general.name", GgufValue.ofString("odd-sized"))
                .tensor("a", new long[] {5}, TensorType.F32)
                .tensor("b", new long[] {7}, TensorType.F32)
                .write(out, (info, dst) -> dst.fill((byte) 0xff));
        byte[] bytes = Files.readAllBytes(out);
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(0, f.dataOffset() % 64);
            assertEquals(64, f.tensor("b").offset());
            assertEquals(f.dataOffset() + 128, bytes.length);
            long headerEnd = headerEnd(bytes);
            for (long i = headerEnd; i < f.dataOffset(); i++) assertEquals(0, bytes[(int) i], "header padding at " + i);
            for (long i = 0; i < 128; i++) {
                boolean inA = i < 20;
                boolean inB = i >= 64 && i < 64 + 28;
                assertEquals(inA || inB ? (byte) 0xff : 0, bytes[(int) (f.dataOffset() + i)], "data byte " + i);
            }
        }
    }

    /** Where the tensor directory ends: scanning the header again, independently of the reader. */
    private static long headerEnd(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        b.position(8);
        long numTensors = b.getLong();
        long numKv = b.getLong();
        for (long i = 0; i < numKv; i++) {
            skipString(b); // key
            int type = b.getInt();
            if (type == GgufType.STRING.ordinal()) skipString(b);
            else b.position(b.position() + GgufType.fromId(type).scalarBytes());
        }
        for (long i = 0; i < numTensors; i++) {
            skipString(b);
            int numDims = b.getInt();
            b.position(b.position() + 8 * numDims + 4 + 8);
        }
        return b.position();
    }

    private static void skipString(ByteBuffer b) {
        int length = (int) b.getLong();
        b.position(b.position() + length);
    }

    @Test
    void writesAndReadsVersion2() throws IOException {
        Path out = tmp.resolve("v2.gguf");
        new GgufWriter().version(2)
                .metadata("general.architecture", GgufValue.ofString("llama"))
                .tensor("x", new long[] {4, 2}, TensorType.F32)
                .write(out, (info, dst) -> dst.fill((byte) 1));
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(2, f.version());
            assertEquals("llama", f.requireString("general.architecture"));
            assertEquals(32, f.tensor("x").sizeBytes());
        }

        // stories260K with its version patched to 2 reads the same as the v3 original.
        byte[] bytes = Files.readAllBytes(GgufReaderTest.stories());
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(4, 2);
        Path patched = tmp.resolve("stories-v2.gguf");
        Files.write(patched, bytes);
        try (GgufFile v2 = GgufFile.open(patched); GgufFile v3 = GgufFile.open(GgufReaderTest.stories())) {
            assertEquals(2, v2.version());
            assertSameMetadata(v3.metadata(), v2.metadata());
            assertEquals(v3.tensors().size(), v2.tensors().size());
            assertEquals(v3.dataOffset(), v2.dataOffset());
        }
    }

    @Test
    void failedWriteLeavesNoFile() {
        Path out = tmp.resolve("failed.gguf");
        GgufWriter w = new GgufWriter().tensor("a", new long[] {8}, TensorType.F32).tensor("b", new long[] {8}, TensorType.F32);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> w.write(out, (info, dst) -> {
            if (info.name().equals("b")) throw new IllegalStateException("source broke");
            dst.fill((byte) 1);
        }));
        assertEquals("source broke", e.getMessage());
        assertTrue(Files.notExists(out));
    }

    @Test
    void rejectsValuesThatWouldNotReadBack() {
        GgufWriter w = new GgufWriter();
        assertThrows(IllegalArgumentException.class, () -> w.metadata("k", new GgufValue(GgufType.UINT8, 256)));
        assertThrows(IllegalArgumentException.class, () -> w.metadata("k", new GgufValue(GgufType.UINT32, 5)));
        assertThrows(IllegalArgumentException.class, () -> w.metadata("k", new GgufValue(GgufType.FLOAT64, 1f)));
        assertThrows(IllegalArgumentException.class, () -> w.metadata("k", GgufValue.ofArray(new GgufArray(GgufType.INT32, new long[1]))));
        assertThrows(IllegalArgumentException.class, () -> w.metadata("k", GgufValue.ofArray(new GgufArray(GgufType.INT8, new int[] {200}))));
        assertThrows(IllegalArgumentException.class, () -> w.tensor("q", new long[] {33, 2}, TensorType.Q8_0));
        w.tensor("t", new long[] {1}, TensorType.F32);
        assertThrows(IllegalArgumentException.class, () -> w.tensor("t", new long[] {1}, TensorType.F32));
        assertThrows(IllegalArgumentException.class, () -> w.version(1));
    }

    static void assertSameMetadata(Map<String, GgufValue> expected, Map<String, GgufValue> actual) {
        assertEquals(new ArrayList<>(expected.keySet()), new ArrayList<>(actual.keySet()));
        for (String key : expected.keySet()) {
            GgufValue e = expected.get(key);
            GgufValue a = actual.get(key);
            assertEquals(e.type(), a.type(), key);
            if (e.value() instanceof GgufArray ea) assertSameArray(key, ea, (GgufArray) a.value());
            else assertEquals(e.value(), a.value(), key);
        }
    }

    private static void assertSameArray(String key, GgufArray e, GgufArray a) {
        assertEquals(e.elementType(), a.elementType(), key);
        assertEquals(e.length(), a.length(), key);
        switch (e.values()) {
            case int[] v -> assertArrayEquals(v, (int[]) a.values(), key);
            case long[] v -> assertArrayEquals(v, (long[]) a.values(), key);
            case float[] v -> assertArrayEquals(v, (float[]) a.values(), key); // compares bits, so NaN and -0 count
            case double[] v -> assertArrayEquals(v, (double[]) a.values(), key);
            case boolean[] v -> assertArrayEquals(v, (boolean[]) a.values(), key);
            case String[] v -> assertArrayEquals(v, (String[]) a.values(), key);
            case GgufArray[] v -> {
                GgufArray[] av = (GgufArray[]) a.values();
                for (int i = 0; i < v.length; i++) assertSameArray(key + "[" + i + "]", v[i], av[i]);
            }
            default -> throw new AssertionError(key + ": unexpected " + e.values().getClass());
        }
    }
}
