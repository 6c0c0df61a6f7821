package dev.tessera.models.gguf;

import dev.tessera.kernels.TensorType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GgufReaderTest {
    static final long STORIES_SIZE = 1185376;

    /** The shared test-data folder: surefire passes it as {@code tessera.models}; from the module dir it is ../../shared/models. */
    static Path modelsDir() {
        Path dir = Path.of(System.getProperty("tessera.models", "../../shared/models"));
        assertTrue(Files.isDirectory(dir), "test data folder " + dir.toAbsolutePath() + " is missing");
        return dir;
    }

    static Path stories() {
        Path p = modelsDir().resolve("stories260K.gguf");
        assertTrue(Files.isRegularFile(p), "missing " + p.toAbsolutePath());
        return p;
    }

    @Test
    void readsAllNineteenMetadataKeys() {
        try (GgufFile f = GgufFile.open(stories())) {
            assertEquals(3, f.version());
            assertEquals(STORIES_SIZE, f.fileSize());
            assertEquals(List.of(
                    "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.model",
                    "general.architecture", "general.name", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id",
                    "tokenizer.ggml.eos_token_id", "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id",
                    "llama.context_length", "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
                    "llama.attention.head_count_kv", "llama.block_count", "llama.rope.dimension_count",
                    "llama.attention.layer_norm_rms_epsilon"), new ArrayList<>(f.metadata().keySet()));

            String[] tokens = f.getStringArray("tokenizer.ggml.tokens");
            assertEquals(512, tokens.length);
            assertEquals("<unk>", tokens[0]);
            assertEquals("<s>", tokens[1]);
            assertEquals("</s>", tokens[2]);
            assertEquals("<0x00>", tokens[3]);
            assertEquals("<0xFF>", tokens[258]);
            float[] scores = f.getFloatArray("tokenizer.ggml.scores");
            assertEquals(512, scores.length);
            assertEquals(0f, scores[259], 0f); // stored as -0.0
            assertEquals(-1f, scores[260]);
            assertEquals(-252f, scores[511]);
            GgufArray types = f.getArray("tokenizer.ggml.token_type");
            assertEquals(GgufType.INT32, types.elementType());
            int[] tt = (int[]) types.values();
            assertEquals(2, tt[0]);
            assertEquals(3, tt[1]);
            assertEquals(6, tt[3]);
            assertEquals(1, tt[511]);

            assertEquals("llama", f.requireString("tokenizer.ggml.model"));
            assertEquals("llama", f.requireString("general.architecture"));
            assertEquals("llama", f.requireString("general.name"));
            assertEquals(0, f.requireInt("tokenizer.ggml.unknown_token_id"));
            assertEquals(1, f.requireInt("tokenizer.ggml.bos_token_id"));
            assertEquals(2, f.requireInt("tokenizer.ggml.eos_token_id"));
            assertEquals(new GgufValue(GgufType.UINT32, 4294967295L), f.value("tokenizer.ggml.seperator_token_id"));
            assertEquals(4294967295L, f.getLong("tokenizer.ggml.padding_token_id", 0));
            assertEquals(2048, f.requireInt("llama.context_length"));
            assertEquals(64, f.requireInt("llama.embedding_length"));
            assertEquals(172, f.requireInt("llama.feed_forward_length"));
            assertEquals(8, f.requireInt("llama.attention.head_count"));
            assertEquals(4, f.requireInt("llama.attention.head_count_kv"));
            assertEquals(5, f.requireInt("llama.block_count"));
            assertEquals(8, f.requireInt("llama.rope.dimension_count"));
            assertEquals(GgufType.FLOAT32, f.value("llama.attention.layer_norm_rms_epsilon").type());
            assertEquals(9.999999747378752e-06, f.getDouble("llama.attention.layer_norm_rms_epsilon", 0));
            assertNull(f.value("general.alignment"));
        }
    }

    @Test
    void readsAllFortyEightTensors() {
        try (GgufFile f = GgufFile.open(stories())) {
            assertEquals(14176, f.dataOffset());
            assertEquals(48, f.tensors().size());
            assertTensor(f, "token_embd.weight", 64, 512);
            assertTensor(f, "output_norm.weight", 64);
            assertTensor(f, "output.weight", 64, 512);
            for (int i = 0; i < 5; i++) {
                String b = "blk." + i + ".";
                assertTensor(f, b + "attn_q.weight", 64, 64);
                assertTensor(f, b + "attn_k.weight", 64, 32);
                assertTensor(f, b + "attn_v.weight", 64, 32);
                assertTensor(f, b + "attn_output.weight", 64, 64);
                assertTensor(f, b + "attn_norm.weight", 64);
                assertTensor(f, b + "ffn_gate.weight", 64, 172);
                assertTensor(f, b + "ffn_down.weight", 172, 64);
                assertTensor(f, b + "ffn_up.weight", 64, 172);
                assertTensor(f, b + "ffn_norm.weight", 64);
            }
            long totalFloats = 0;
            long lastEnd = 0;
            for (GgufTensorInfo t : f.tensors().values()) {
                totalFloats += t.numElements();
                assertEquals(0, t.offset() % 32, t.name());
                lastEnd = Math.max(lastEnd, f.dataOffset() + t.offset() + t.sizeBytes());
            }
            assertEquals(292800, totalFloats);
            assertEquals(STORIES_SIZE, lastEnd);

            // output.weight is a copy of token_embd.weight (PROVENANCE.md §1).
            assertEquals(-1, f.data(f.tensor("token_embd.weight")).mismatch(f.data(f.tensor("output.weight"))));
            var le = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            var norm = f.data(f.tensor("output_norm.weight"));
            for (int i = 0; i < 64; i++) assertTrue(Float.isFinite(norm.getAtIndex(le, i)));
        }
    }

    private static void assertTensor(GgufFile f, String name, long... dims) {
        GgufTensorInfo t = f.tensor(name);
        assertTrue(t != null, "missing tensor " + name);
        assertArrayEquals(dims, t.dims(), name);
        assertEquals(TensorType.F32, t.type(), name);
        assertEquals(4 * t.numElements(), t.sizeBytes(), name);
    }

    @Test
    void readsTheLlamaSpmVocabulary() {
        try (GgufFile f = GgufFile.open(modelsDir().resolve("llama.cpp-vocab/ggml-vocab-llama-spm.gguf"))) {
            assertEquals(0, f.tensors().size());
            assertEquals("llama", f.requireString("tokenizer.ggml.model"));
            assertEquals(32000, f.getStringArray("tokenizer.ggml.tokens").length);
            assertEquals(32000, f.getFloatArray("tokenizer.ggml.scores").length);
        }
    }

    @Test
    void missingFileIsOneLine() {
        GgufException e = org.junit.jupiter.api.Assertions.assertThrows(GgufException.class,
                () -> GgufFile.open(modelsDir().resolve("no-such-model.gguf")));
        assertTrue(e.getMessage().endsWith("no-such-model.gguf: no such file"), e.getMessage());
    }
}
