package dev.tessera.serving.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.models.gguf.GgufFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tessera CLI as a user runs it: a separate JVM, stdout and stderr and the exit code. */
class CommandLineTest {

    record Run(int exitCode, String stdout, String stderr) {}

    static Path models() {
        String p = System.getProperty("tessera.models");
        Path dir = p != null ? Path.of(p) : Path.of("../../shared/models");
        if (!Files.isDirectory(dir)) throw new IllegalStateException("test data not found at " + dir.toAbsolutePath());
        return dir;
    }

    static Run tessera(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile("tessera-out", ".txt"), err = Files.createTempFile("tessera-err", ".txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("tessera " + String.join(" ", args) + " did not finish in 120 s");
        }
        Run r = new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        Files.delete(out);
        Files.delete(err);
        return r;
    }

    @Test
    void generatePrintsTheLlama2cReferenceTextExactly() throws Exception {
        JsonNode ref = new ObjectMapper().readTree(models().resolve("stories260K.reference.json").toFile());
        Run r = tessera("generate", "--model", models().resolve("stories260K.gguf").toString(), "--prompt", "",
                "--temperature", "0", "--max-tokens", "256", "--device", "cpu");
        assertEquals(0, r.exitCode(), r.stderr());
        assertEquals(ref.get("cases").get(0).get("greedy_text").asText() + "\n", r.stdout());
    }

    @Test
    void tokenizePrintsIds() throws Exception {
        Run r = tessera("tokenize", "--model", models().resolve("stories260K.gguf").toString(), "--text", "Once upon a time");
        assertEquals(0, r.exitCode(), r.stderr());
        assertEquals("1 403 407 261 378", r.stdout().strip());
        Run noBos = tessera("tokenize", "--model", models().resolve("stories260K.gguf").toString(), "--text", "Once upon a time", "--no-bos");
        assertEquals("403 407 261 378", noBos.stdout().strip());
    }

    @Test
    void badUsageExitsTwoWithOneLine() throws Exception {
        Run r = tessera("generate", "--model", "x.gguf", "--prompt", "hi", "--max-tokens", "zero");
        assertEquals(2, r.exitCode());
        assertTrue(r.stderr().contains("--max-tokens expects an integer, got 'zero'"), r.stderr());
        Run device = tessera("generate", "--model", "x.gguf", "--prompt", "hi", "--device", "tpu");
        assertEquals(2, device.exitCode(), device.stderr());
        Run reasoning = tessera("serve", "--model", models().resolve("stories260K.gguf").toString(), "--reasoning-format", "r1");
        assertEquals(2, reasoning.exitCode(), reasoning.stderr());
        assertTrue(reasoning.stderr().contains("--reasoning-format must be none, deepseek or auto, got 'r1'"), reasoning.stderr());
    }

    @Test
    void badModelFileFailsWithOneLineNamingIt(@TempDir Path dir) throws Exception {
        Path bad = dir.resolve("broken.gguf");
        Files.write(bad, "GGUF\u0003\0\0\0garbage".getBytes(StandardCharsets.ISO_8859_1));
        Run r = tessera("generate", "--model", bad.toString(), "--prompt", "hi", "--device", "cpu");
        assertEquals(1, r.exitCode(), r.stderr());
        // The JVM's own start-up warnings (incubator module) are not ours; the launcher filters them too.
        List<String> lines = r.stderr().lines().filter(l -> !l.isBlank() && !l.startsWith("WARNING:")).toList();
        assertEquals(1, lines.size(), r.stderr());
        assertTrue(lines.get(0).startsWith("tessera generate: broken.gguf: "), lines.get(0));
    }

    @Test
    void cudaWithoutDriverFailsClearlyAndAutoFallsBack() throws Exception {
        Run cuda = tessera("generate", "--model", models().resolve("stories260K.gguf").toString(), "--prompt", "Once", "--max-tokens", "4", "--device", "cuda");
        if (cuda.exitCode() == 0) return; // a machine with a GPU: nothing to check here (the GPU check covers it)
        assertEquals(1, cuda.exitCode());
        assertTrue(cuda.stderr().contains("CUDA unavailable") || cuda.stderr().contains("CUDA"), cuda.stderr());
        Run auto = tessera("generate", "--model", models().resolve("stories260K.gguf").toString(), "--prompt", "Once", "--max-tokens", "4", "--temperature", "0");
        assertEquals(0, auto.exitCode(), auto.stderr());
        assertTrue(auto.stderr().contains("using the CPU"), auto.stderr());
    }

    @Test
    void synthThenBenchJson(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("tiny.gguf");
        Run synth = tessera("synth", "--preset", "tiny", "--type", "q4_0", "--out", model.toString(),
                "--vocab-from", models().resolve("llama.cpp-vocab/ggml-vocab-llama-spm.gguf").toString());
        assertEquals(0, synth.exitCode(), synth.stderr());
        Run bench = tessera("bench", "--model", model.toString(), "--prompt-tokens", "16", "--gen-tokens", "8", "--reps", "1", "--json", "--device", "cpu");
        assertEquals(0, bench.exitCode(), bench.stderr());
        JsonNode j = new ObjectMapper().readTree(bench.stdout());
        assertTrue(j.get("prefill_tokens_per_s").asDouble() > 0);
        assertTrue(j.get("decode_tokens_per_s").asDouble() > 0);
        assertEquals(16, j.get("prompt_tokens").asInt());
        assertEquals("f32", j.get("kv_cache_type").asText());
        // llama-bench's default cache type, for a like-for-like comparison.
        Run f16 = tessera("bench", "--model", model.toString(), "--prompt-tokens", "16", "--gen-tokens", "8", "--reps", "1", "--json", "--device", "cpu",
                "--kv-cache-type", "f16");
        assertEquals(0, f16.exitCode(), f16.stderr());
        assertEquals("f16", new ObjectMapper().readTree(f16.stdout()).get("kv_cache_type").asText());
        Run bad = tessera("bench", "--model", model.toString(), "--kv-cache-type", "q8");
        assertEquals(2, bad.exitCode(), bad.stderr());
        assertTrue(bad.stderr().contains("--kv-cache-type"), bad.stderr());
    }

    @Test
    void synthWritesLlamaQuantizesQ4kmMixAndItRuns(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("tiny-q4_k_m.gguf");
        Run synth = tessera("synth", "--preset", "tiny", "--type", "Q4_K_M", "--out", model.toString(),
                "--vocab-from", models().resolve("llama.cpp-vocab/ggml-vocab-llama-spm.gguf").toString());
        assertEquals(0, synth.exitCode(), synth.stderr());
        assertTrue(synth.stderr().contains("q4_k_m weights"), synth.stderr());
        Run generate = tessera("generate", "--model", model.toString(), "--prompt", "Once", "--max-tokens", "4", "--temperature", "0", "--device", "cpu");
        assertEquals(0, generate.exitCode(), generate.stderr());
        Run unknown = tessera("synth", "--preset", "tiny", "--type", "q4_k_x", "--out", dir.resolve("x.gguf").toString());
        assertEquals(2, unknown.exitCode(), unknown.stderr());
        assertTrue(unknown.stderr().contains("unknown --type 'q4_k_x'") && unknown.stderr().contains("q4_k_m"), unknown.stderr());
    }

    @Test
    void synthWritesQwen3WithWideHeadsAndItRuns(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("tiny-qwen3.gguf");
        String vocab = models().resolve("llama.cpp-vocab/ggml-vocab-llama-spm.gguf").toString();
        // Qwen3-0.6B's proportions: heads twice as wide as dim / heads.
        Run synth = tessera("synth", "--dim", "128", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "256", "--head-dim", "64",
                "--arch", "qwen3", "--type", "q8_0", "--vocab-from", vocab, "--out", model.toString());
        assertEquals(0, synth.exitCode(), synth.stderr());
        assertTrue(synth.stderr().contains("qwen3"), synth.stderr());
        try (GgufFile f = GgufFile.open(model)) {
            assertEquals("qwen3", f.requireString("general.architecture"));
            assertEquals(64, f.getLong("qwen3.attention.key_length", 0));
            assertEquals(256, f.tensor("blk.0.attn_q.weight").rows());
            assertEquals(64, f.tensor("blk.1.attn_k_norm.weight").cols());
        }
        Run generate = tessera("generate", "--model", model.toString(), "--prompt", "Once", "--max-tokens", "4", "--temperature", "0", "--device", "cpu");
        assertEquals(0, generate.exitCode(), generate.stderr());
        Run unknown = tessera("synth", "--preset", "tiny", "--type", "q8_0", "--arch", "gemma9", "--vocab-from", vocab, "--out", dir.resolve("x.gguf").toString());
        assertEquals(2, unknown.exitCode(), unknown.stderr());
        assertTrue(unknown.stderr().contains("unknown architecture 'gemma9'") && unknown.stderr().contains("qwen3moe"), unknown.stderr());
        Run denseMoe = tessera("synth", "--preset", "tiny", "--type", "q8_0", "--arch", "olmoe", "--vocab-from", vocab, "--out", dir.resolve("y.gguf").toString());
        assertEquals(2, denseMoe.exitCode(), denseMoe.stderr());
        assertTrue(denseMoe.stderr().contains("olmoe is a mixture-of-experts architecture"), denseMoe.stderr());
    }
}
