package dev.tessera.models.synth;

import dev.tessera.kernels.TensorType;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.models.gguf.GgufType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SynthModelTest {
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path tmp;

    static Path vocab() {
        Path p = Path.of(System.getProperty("tessera.models", "../../shared/models")).resolve(SynthPreset.DEFAULT_VOCAB);
        assertTrue(Files.isRegularFile(p), "missing " + p.toAbsolutePath());
        return p;
    }

    @Test
    void tinyF16HasLlamaCppLayoutAndLoads() throws IOException {
        Path out = tmp.resolve("tiny-f16.gguf");
        SynthModel.of(SynthPreset.TINY, TensorType.F16, 42).write(vocab(), out, null);
        try (GgufFile f = GgufFile.open(out)) {
            assertTinyLayout(f, TensorType.F16, 1);
            // Weights look like N(0, 0.02) and norms like N(1, 0.02), after F16 rounding.
            double[] q = stats(f, "blk.2.attn_q.weight");
            assertEquals(0, q[0], 5e-4);
            assertEquals(0.02, q[1], 5e-4);
            double[] embd = stats(f, "token_embd.weight");
            assertEquals(0, embd[0], 1e-4);
            assertEquals(0.02, embd[1], 2e-4);
            double[] norm = stats(f, "output_norm.weight");
            assertEquals(1, norm[0], 0.01);
            assertTrue(norm[1] > 0.01 && norm[1] < 0.03, "norm std " + norm[1]);
            // Every tensor gets its own stream: the embedding and output differ.
            assertTrue(f.data(f.tensor("token_embd.weight")).mismatch(f.data(f.tensor("output.weight"))) >= 0);
        }
        ModelLoader.check(out);

        Path again = tmp.resolve("again.gguf");
        SynthModel.of(SynthPreset.TINY, TensorType.F16, 42).write(vocab(), again, null);
        assertEquals(-1, Files.mismatch(out, again), "same seed, same bytes");
        Path other = tmp.resolve("other.gguf");
        SynthModel.of(SynthPreset.TINY, TensorType.F16, 43).write(vocab(), other, null);
        assertNotEquals(-1, Files.mismatch(out, other), "another seed, other weights");
        assertEquals(Files.size(out), Files.size(other));
    }

    @Test
    void tinyQ8_0HasLlamaCppLayoutAndLoads() {
        Path out = tmp.resolve("tiny-q8_0.gguf");
        SynthModel.of(SynthPreset.TINY, TensorType.Q8_0, 7).write(vocab(), out, null);
        try (GgufFile f = GgufFile.open(out)) {
            assertTinyLayout(f, TensorType.Q8_0, 7);
            // Decode Q8_0 blocks (f16 scale, 32 int8) of one tensor by hand.
            GgufTensorInfo t = f.tensor("blk.1.ffn_down.weight");
            MemorySegment data = f.data(t);
            double sum = 0, sumSq = 0;
            long n = t.numElements();
            for (long b = 0; b < n / 32; b++) {
                float d = Float.float16ToFloat(data.get(I16, b * 34));
                for (int i = 0; i < 32; i++) {
                    double x = d * data.get(ValueLayout.JAVA_BYTE, b * 34 + 2 + i);
                    sum += x;
                    sumSq += x * x;
                }
            }
            double mean = sum / n;
            assertEquals(0, mean, 5e-4);
            assertEquals(0.02, Math.sqrt(sumSq / n - mean * mean), 5e-4);
        }
        ModelLoader.check(out);
    }

    @Test
    void customShapeWithF32() {
        Path out = tmp.resolve("custom.gguf");
        new SynthModel("custom", 64, 2, 4, 2, 96, TensorType.F32, 1).write(vocab(), out, null);
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(3 + 2 * 9, f.tensors().size());
            assertArrayEquals(new long[] {64, 32}, f.tensor("blk.1.attn_k.weight").dims());
            assertArrayEquals(new long[] {96, 64}, f.tensor("blk.1.ffn_down.weight").dims());
            assertEquals(16, f.requireInt("llama.rope.dimension_count"));
            assertEquals(0, f.requireInt("general.file_type"));
        }
        ModelLoader.check(out);
    }

    @Test
    void rejectsShapesThatCannotWork() {
        assertThrows(IllegalArgumentException.class, () -> new SynthModel("x", 100, 2, 3, 1, 64, TensorType.F32, 0).validate());
        assertThrows(IllegalArgumentException.class, () -> new SynthModel("x", 96, 2, 6, 4, 64, TensorType.F32, 0).validate());
        assertThrows(IllegalArgumentException.class, () -> new SynthModel("x", 96, 2, 32, 4, 64, TensorType.F32, 0).validate()); // head dim 3
        assertThrows(IllegalArgumentException.class, () -> new SynthModel("x", 128, 2, 4, 4, 512, TensorType.Q4_K, 0).validate());
        assertThrows(IllegalArgumentException.class, () -> new SynthModel("x", 256, 2, 4, 4, 100, TensorType.Q8_0, 0).validate());
        assertThrows(IllegalArgumentException.class, () -> new SynthModel("x", 256, 2, 4, 4, 512, TensorType.Q2_K, 0).validate());
        assertThrows(IllegalArgumentException.class, () -> new SynthModel("x", 0, 2, 4, 4, 512, TensorType.F32, 0).validate());
        new SynthModel("x", 256, 2, 4, 4, 512, TensorType.Q4_K, 0).validate();
    }

    @Test
    void presetsAndFileTypes() {
        assertEquals(SynthPreset.LLAMA_7B, SynthPreset.find("llama-7b"));
        assertEquals(null, SynthPreset.find("llama-13b"));
        assertEquals(512, SynthModel.of(SynthPreset.LLAMA_1B, TensorType.Q8_0, 0).kvDim()); // 8 KV heads of 64
        assertEquals(128, SynthModel.of(SynthPreset.LLAMA_7B, TensorType.Q8_0, 0).headDim());
        for (SynthPreset p : SynthPreset.values())
            for (TensorType t : List.of(TensorType.F32, TensorType.F16, TensorType.BF16, TensorType.Q8_0, TensorType.Q4_0,
                    TensorType.Q4_1, TensorType.Q5_0, TensorType.Q5_1, TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K))
                SynthModel.of(p, t, 0).validate();
        assertEquals(15, SynthModel.fileType(TensorType.Q4_K));
        assertEquals(32, SynthModel.fileType(TensorType.BF16));
    }

    private static void assertTinyLayout(GgufFile f, TensorType type, int fileType) {
        assertEquals(3, f.version());
        assertEquals("llama", f.requireString("general.architecture"));
        assertEquals("synth-tiny", f.requireString("general.name"));
        assertEquals(fileType, f.requireInt("general.file_type"));
        assertEquals(GgufType.UINT32, f.value("general.quantization_version").type());
        assertEquals(2, f.requireInt("general.quantization_version"));
        assertEquals(32, f.requireInt("general.alignment"));
        assertEquals(4096, f.requireInt("llama.context_length"));
        assertEquals(256, f.requireInt("llama.embedding_length"));
        assertEquals(768, f.requireInt("llama.feed_forward_length"));
        assertEquals(4, f.requireInt("llama.block_count"));
        assertEquals(8, f.requireInt("llama.attention.head_count"));
        assertEquals(4, f.requireInt("llama.attention.head_count_kv"));
        assertEquals(32, f.requireInt("llama.rope.dimension_count"));
        assertEquals(10000.0, f.getDouble("llama.rope.freq_base", 0));
        assertEquals(1e-5f, (float) f.getDouble("llama.attention.layer_norm_rms_epsilon", 0));
        assertEquals(32000, f.requireInt("llama.vocab_size"));

        try (GgufFile v = GgufFile.open(vocab())) {
            List<String> vocabKeys = new ArrayList<>(v.metadata().keySet().stream().filter(k -> k.startsWith("tokenizer.")).toList());
            List<String> keys = new ArrayList<>(f.metadata().keySet().stream().filter(k -> k.startsWith("tokenizer.")).toList());
            assertEquals(vocabKeys, keys);
            assertArrayEquals(v.getStringArray("tokenizer.ggml.tokens"), f.getStringArray("tokenizer.ggml.tokens"));
            assertArrayEquals(v.getFloatArray("tokenizer.ggml.scores"), f.getFloatArray("tokenizer.ggml.scores"));
            assertArrayEquals(v.getIntArray("tokenizer.ggml.token_type"), f.getIntArray("tokenizer.ggml.token_type"));
            for (String k : vocabKeys) assertEquals(v.value(k).type(), f.value(k).type(), k);
        }

        assertEquals(3 + 4 * 9, f.tensors().size());
        List<String> names = new ArrayList<>(f.tensors().keySet());
        assertEquals(List.of("token_embd.weight", "output_norm.weight", "output.weight", "blk.0.attn_norm.weight",
                "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.attn_output.weight",
                "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"), names.subList(0, 12));
        assertTensor(f, "token_embd.weight", type, 256, 32000);
        assertTensor(f, "output_norm.weight", TensorType.F32, 256);
        assertTensor(f, "output.weight", type, 256, 32000);
        for (int i = 0; i < 4; i++) {
            String b = "blk." + i + ".";
            assertTensor(f, b + "attn_norm.weight", TensorType.F32, 256);
            assertTensor(f, b + "attn_q.weight", type, 256, 256);
            assertTensor(f, b + "attn_k.weight", type, 256, 128);
            assertTensor(f, b + "attn_v.weight", type, 256, 128);
            assertTensor(f, b + "attn_output.weight", type, 256, 256);
            assertTensor(f, b + "ffn_norm.weight", TensorType.F32, 256);
            assertTensor(f, b + "ffn_gate.weight", type, 256, 768);
            assertTensor(f, b + "ffn_up.weight", type, 256, 768);
            assertTensor(f, b + "ffn_down.weight", type, 768, 256);
        }
        long end = 0;
        for (GgufTensorInfo t : f.tensors().values()) end = Math.max(end, f.dataOffset() + t.offset() + t.sizeBytes());
        assertEquals(end, f.fileSize());
    }

    private static void assertTensor(GgufFile f, String name, TensorType type, long... dims) {
        GgufTensorInfo t = f.tensor(name);
        assertTrue(t != null, "missing " + name);
        assertArrayEquals(dims, t.dims(), name);
        assertEquals(type, t.type(), name);
    }

    /** Mean and standard deviation of an F16 or F32 tensor. */
    private static double[] stats(GgufFile f, String name) {
        GgufTensorInfo t = f.tensor(name);
        MemorySegment data = f.data(t);
        double sum = 0, sumSq = 0;
        long n = t.numElements();
        for (long i = 0; i < n; i++) {
            double x = t.type() == TensorType.F16 ? Float.float16ToFloat(data.getAtIndex(I16, i)) : data.getAtIndex(F32, i);
            sum += x;
            sumSq += x * x;
        }
        double mean = sum / n;
        return new double[] {mean, Math.sqrt(sumSq / n - mean * mean)};
    }
}
