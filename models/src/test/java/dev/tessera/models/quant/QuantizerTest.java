package dev.tessera.models.quant;

import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cpu.rows.RowKernel;
import dev.tessera.kernels.cpu.rows.RowKernels;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class QuantizerTest {
    private static final TensorType[] QUANTIZED = {TensorType.Q8_0, TensorType.Q6_K, TensorType.Q5_K, TensorType.Q5_1,
            TensorType.Q5_0, TensorType.Q4_K, TensorType.Q4_1, TensorType.Q4_0};

    private static Path models() {
        return Path.of(System.getProperty("tessera.models", "../../shared/models"));
    }

    private static byte[] encode(TensorType type, float[] src) {
        byte[] out = new byte[(int) type.byteSize(src.length)];
        Quantizer.quantize(type, src, 0, src.length, MemorySegment.ofArray(out), 0);
        return out;
    }

    private static float[] decode(TensorType type, MemorySegment bytes, long offset, int n) {
        float[] out = new float[n];
        RowKernels.forType(type).dequantize(bytes, offset, out, 0, n);
        return out;
    }

    /** RMS(decoded - src) / RMS(src). */
    private static double relativeRmsError(float[] src, float[] decoded) {
        double err = 0, ref = 0;
        for (int i = 0; i < src.length; i++) {
            double e = decoded[i] - src[i];
            err += e * e;
            ref += (double) src[i] * src[i];
        }
        return Math.sqrt(err / ref);
    }

    private static float[] gaussian(int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian() * 0.02f;
        return x;
    }

    @Test
    void gaussianRoundTripErrorIsAtEachFormatsLevel() {
        // Bounds sit just above what these (ggml reference) quantizers reach on this data: Q8_0 0.54%, Q6_K 1.8%,
        // Q5_K 3.6%, Q5_1 3.8%, Q5_0 4.3%, Q4_K 7.1%, Q4_1 7.8%, Q4_0 8.6%. Each is near step / sqrt(12) for the
        // format's step (max|x| / 127, max|x| / 8, (max - min) / 15, ...).
        Map<TensorType, Double> bound = new EnumMap<>(TensorType.class);
        bound.put(TensorType.Q8_0, 0.0060);
        bound.put(TensorType.Q6_K, 0.020);
        bound.put(TensorType.Q5_K, 0.039);
        bound.put(TensorType.Q5_1, 0.041);
        bound.put(TensorType.Q5_0, 0.046);
        bound.put(TensorType.Q4_K, 0.076);
        bound.put(TensorType.Q4_1, 0.083);
        bound.put(TensorType.Q4_0, 0.092);
        float[] src = gaussian(64 * 1024, 7);
        Map<TensorType, Double> error = new EnumMap<>(TensorType.class);
        for (TensorType type : QUANTIZED) {
            float[] decoded = decode(type, MemorySegment.ofArray(encode(type, src)), 0, src.length);
            double e = relativeRmsError(src, decoded);
            error.put(type, e);
            assertTrue(e < bound.get(type), type + " relative RMS error " + e + ", expected below " + bound.get(type));
        }
        assertTrue(error.get(TensorType.Q4_K) < Math.min(error.get(TensorType.Q4_0), error.get(TensorType.Q4_1)), error.toString());
        assertTrue(error.get(TensorType.Q5_K) < Math.min(error.get(TensorType.Q5_0), error.get(TensorType.Q5_1)), error.toString());
        assertTrue(error.get(TensorType.Q6_K) < error.get(TensorType.Q5_K), error.toString());
        assertTrue(error.get(TensorType.Q8_0) < error.get(TensorType.Q6_K), error.toString());
    }

    @Test
    void skewedAndZeroBlocksStayFinite() {
        // All-zero, constant, all-positive and single-spike blocks hit the d == 0 and min > 0 branches.
        int n = 1024;
        float[] src = new float[n];
        for (int i = 256; i < 512; i++) src[i] = 0.5f;
        for (int i = 512; i < 768; i++) src[i] = 1f + (i % 17) * 0.01f;
        src[800] = 3f;
        for (TensorType type : QUANTIZED) {
            float[] decoded = decode(type, MemorySegment.ofArray(encode(type, src)), 0, n);
            for (int i = 0; i < 256; i++) assertTrue(decoded[i] == 0f, type + " zero block at " + i + ": " + decoded[i]);
            for (int i = 0; i < n; i++) assertFalse(Float.isNaN(decoded[i]) || Float.isInfinite(decoded[i]), type + " at " + i);
            double e = relativeRmsError(src, decoded);
            assertTrue(e < 0.1, type + " relative RMS error " + e);
        }
    }

    @Test
    void handComputedQ4_0AndQ8_0Blocks() {
        float[] src = new float[32];
        for (int j = 0; j < 32; j++) src[j] = j - 16; // max magnitude -16 → d = 2, q = x / 2 + 8
        byte[] q4 = encode(TensorType.Q4_0, src);
        assertEquals((short) 0x4000, (short) ((q4[0] & 0xff) | q4[1] << 8));
        for (int j = 0; j < 16; j++) {
            assertEquals(Math.min(15, (int) ((j - 16) / 2f + 8.5f)), q4[2 + j] & 15, "lo " + j);
            assertEquals(Math.min(15, (int) (j / 2f + 8.5f)), (q4[2 + j] >> 4) & 15, "hi " + j);
        }
        byte[] q8 = encode(TensorType.Q8_0, src);
        float d = 16f / 127;
        for (int j = 0; j < 32; j++) assertEquals(Quantizer.roundHalfAway((j - 16) * (1f / d)), q8[2 + j], "q8 " + j);
        assertEquals(-127, q8[2]);
    }

    @Test
    void roundingHelpersMatchC() {
        assertEquals(-3, Quantizer.roundHalfAway(-2.5f));
        assertEquals(3, Quantizer.roundHalfAway(2.5f));
        assertEquals(0, Quantizer.roundHalfAway(0.49999997f));
        assertEquals(2, Quantizer.nearestInt(2.5f)); // ties to even
        assertEquals(4, Quantizer.nearestInt(3.5f));
        assertEquals(-2, Quantizer.nearestInt(-2.5f));
        assertEquals(-7, Quantizer.nearestInt(-6.6f));
        assertEquals((short) 0x3f80, Quantizer.toBf16(1f));
        assertEquals((short) 0x3f80, Quantizer.toBf16(Float.intBitsToFloat(0x3f808000))); // tie → even
        assertEquals((short) 0x3f82, Quantizer.toBf16(Float.intBitsToFloat(0x3f818000))); // tie → even (up)
        assertEquals((short) 0x3f81, Quantizer.toBf16(Float.intBitsToFloat(0x3f808001)));
        assertTrue(Float.isNaN(Float.intBitsToFloat((Quantizer.toBf16(Float.NaN) & 0xffff) << 16)));
    }

    @Test
    void floatFormatsRoundTrip() {
        float[] src = gaussian(1000, 3);
        assertArrayEquals(src, decode(TensorType.F32, MemorySegment.ofArray(encode(TensorType.F32, src)), 0, src.length));
        float[] f16 = decode(TensorType.F16, MemorySegment.ofArray(encode(TensorType.F16, src)), 0, src.length);
        float[] bf16 = decode(TensorType.BF16, MemorySegment.ofArray(encode(TensorType.BF16, src)), 0, src.length);
        for (int i = 0; i < src.length; i++) {
            assertEquals(Float.float16ToFloat(Float.floatToFloat16(src[i])), f16[i]);
            assertEquals(src[i], bf16[i], Math.abs(src[i]) / 256);
        }
        assertTrue(relativeRmsError(src, bf16) < 0.003);
    }

    @Test
    void dequantizedStoriesTensorsMatchTheF32Source() throws Exception {
        Path dir = models();
        assertTrue(Files.exists(dir.resolve("stories260K.gguf")), "missing " + dir.resolve("stories260K.gguf"));
        try (GgufFile f32 = GgufFile.open(dir.resolve("stories260K.gguf"));
             GgufFile q8 = GgufFile.open(dir.resolve("derived/stories260K-Q8_0.gguf"));
             GgufFile q4 = GgufFile.open(dir.resolve("derived/stories260K-Q4_0.gguf"))) {
            int checked = 0;
            for (GgufFile quantized : new GgufFile[] {q8, q4}) {
                for (GgufTensorInfo info : quantized.tensors().values()) {
                    TensorType type = info.type();
                    if (type != TensorType.Q8_0 && type != TensorType.Q4_0) continue;
                    float[] src = readF32(f32, info.name());
                    float[] decoded = decode(type, quantized.data(info), 0, (int) info.numElements());
                    double e = relativeRmsError(src, decoded);
                    double bound = type == TensorType.Q8_0 ? 0.008 : 0.11;
                    assertTrue(e < bound, quantized.path().getFileName() + " " + info.name() + " " + type + " relative RMS error " + e);
                    checked++;
                }
            }
            assertEquals(32 + 32, checked, "Q8_0 tensors in the Q8_0 file (32) plus Q4_0 (31) and Q8_0 (1) in the Q4_0 file");
        }
    }

    @Test
    void requantizingStoriesReproducesLlamaQuantizeBytes() throws Exception {
        Path dir = models();
        try (GgufFile f32 = GgufFile.open(dir.resolve("stories260K.gguf"));
             GgufFile q8 = GgufFile.open(dir.resolve("derived/stories260K-Q8_0.gguf"));
             GgufFile q4 = GgufFile.open(dir.resolve("derived/stories260K-Q4_0.gguf"))) {
            for (GgufFile quantized : new GgufFile[] {q8, q4}) {
                for (GgufTensorInfo info : quantized.tensors().values()) {
                    TensorType type = info.type();
                    if (type != TensorType.Q8_0 && type != TensorType.Q4_0) continue;
                    float[] src = readF32(f32, info.name());
                    byte[] ours = encode(type, src);
                    byte[] theirs = quantized.data(info).toArray(ValueLayout.JAVA_BYTE);
                    int firstDiff = java.util.Arrays.mismatch(ours, theirs);
                    assertEquals(-1, firstDiff, quantized.path().getFileName() + " " + info.name() + " " + type
                            + ": first differing byte " + firstDiff + " of " + theirs.length);
                }
            }
        }
    }

    private static float[] readF32(GgufFile file, String name) {
        GgufTensorInfo info = file.tensor(name);
        assertEquals(TensorType.F32, info.type(), name);
        return file.data(info).toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN));
    }
}
