package dev.tessera.serving.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.scheduler.placement.Placement;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static dev.tessera.serving.cli.CommandLineTest.models;
import static dev.tessera.serving.cli.CommandLineTest.tessera;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** synth --preset moe-tiny --affinity, trace-routing and place as real processes, end to end. */
class MoeCommandsTest {

    @Test
    void synthTraceAndPlace(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("moe.gguf"), prompts = dir.resolve("prompts.txt"), trace = dir.resolve("moe.trace"), placement = dir.resolve("p.json");
        CommandLineTest.Run synth = tessera("synth", "--preset", "moe-tiny", "--type", "q8_0", "--affinity", "1", "--out", model.toString(),
                "--vocab-from", models().resolve("llama.cpp-vocab/ggml-vocab-llama-spm.gguf").toString());
        assertEquals(0, synth.exitCode(), synth.stderr());
        Files.writeString(prompts, "Once upon a time\n\nThe engine reads every weight once per step\nA little dog ran\nExperts route tokens\n");
        CommandLineTest.Run traced = tessera("trace-routing", "--model", model.toString(), "--prompts", prompts.toString(),
                "--out", trace.toString(), "--gen-tokens", "3", "--threads", "2");
        assertEquals(0, traced.exitCode(), traced.stderr());
        String text = Files.readString(trace);
        assertTrue(text.startsWith("tessera-routing-trace 1\nmodel synth-moe-tiny layers 4 experts 8 top_k 2\n"), text);
        assertTrue(text.contains("\n3 0 "), "the fourth non-empty prompt is sequence 3");
        CommandLineTest.Run placed = tessera("place", "--trace", trace.toString(), "--devices", "2", "--holdout", "--time-limit", "2", "--out", placement.toString());
        assertEquals(0, placed.exitCode(), placed.stderr());
        assertTrue(placed.stdout().contains("contiguous") && placed.stdout().contains("round-robin") && placed.stdout().contains("held-out"), placed.stdout());
        JsonNode j = new ObjectMapper().readTree(placement.toFile());
        assertEquals(4, j.get("device_of_expert").size());
        assertEquals(8, j.get("device_of_expert").get(0).size());
        assertEquals(2, j.get("num_devices").asInt());
    }

    /** DeepSeek-MoE's first layer is dense: the trace and the placement cover layers 1..3, and serving gets layer 0 a row. */
    @Test
    void leadingDenseLayersAreLeftOutOfTheTraceAndThePlacement(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("deepseek.gguf"), prompts = dir.resolve("prompts.txt"), trace = dir.resolve("ds.trace"), placement = dir.resolve("p.json");
        CommandLineTest.Run synth = tessera("synth", "--preset", "moe-tiny", "--arch", "deepseek", "--type", "q8_0", "--affinity", "1", "--out", model.toString(),
                "--vocab-from", models().resolve("llama.cpp-vocab/ggml-vocab-llama-spm.gguf").toString());
        assertEquals(0, synth.exitCode(), synth.stderr());
        Files.writeString(prompts, "Once upon a time\nA little dog ran\nExperts route tokens\nThe engine reads every weight\n");
        CommandLineTest.Run traced = tessera("trace-routing", "--model", model.toString(), "--prompts", prompts.toString(),
                "--out", trace.toString(), "--gen-tokens", "3", "--threads", "2");
        assertEquals(0, traced.exitCode(), traced.stderr());
        assertTrue(traced.stderr().contains("the first 1 layer(s) are dense"), traced.stderr());
        assertTrue(Files.readString(trace).startsWith("tessera-routing-trace 1\nmodel synth-moe-tiny layers 3 experts 8 top_k 2\n"), Files.readString(trace));
        CommandLineTest.Run placed = tessera("place", "--trace", trace.toString(), "--devices", "2", "--time-limit", "2", "--out", placement.toString());
        assertEquals(0, placed.exitCode(), placed.stderr());
        JsonNode table = new ObjectMapper().readTree(placement.toFile()).get("device_of_expert");
        assertEquals(3, table.size());
        try (GgufFile f = GgufFile.open(model)) {
            Placement p = ExpertParallelOptions.placement(placement.toString(), ModelConfig.fromGguf(f), 2);
            assertEquals(4, p.device().length, "a row per model layer");
            for (int l = 1; l < 4; l++)
                for (int e = 0; e < 8; e++) assertEquals(table.get(l - 1).get(e).asInt(), p.device()[l][e], "layer " + l + ", expert " + e);
            CliArgs.UsageException e = org.junit.jupiter.api.Assertions.assertThrows(CliArgs.UsageException.class,
                    () -> ExpertParallelOptions.placement(placement.toString(), ModelConfig.fromGguf(f), 4));
            assertTrue(e.getMessage().contains("places experts on 2 devices"), e.getMessage());
        }
    }

    @Test
    void denseModelAndBadDeviceCountsAreClearErrors(@TempDir Path dir) throws Exception {
        Path prompts = dir.resolve("p.txt");
        Files.writeString(prompts, "Once upon a time\n");
        CommandLineTest.Run dense = tessera("trace-routing", "--model", models().resolve("stories260K.gguf").toString(), "--prompts", prompts.toString(),
                "--out", dir.resolve("t").toString());
        assertEquals(1, dense.exitCode());
        assertTrue(dense.stderr().contains("is not a mixture-of-experts model"), dense.stderr());
        Path trace = dir.resolve("t.trace");
        Files.writeString(trace, "tessera-routing-trace 1\nmodel m layers 2 experts 4 top_k 1\n0 0 1 2\n1 0 0 3\n");
        CommandLineTest.Run bad = tessera("place", "--trace", trace.toString(), "--devices", "3", "--out", dir.resolve("p.json").toString());
        assertEquals(2, bad.exitCode());
        assertTrue(bad.stderr().contains("--devices 3 does not divide the trace's 4 experts per layer"), bad.stderr());
    }

    @Test
    void expertParallelRefusesBadInputInOneLine(@TempDir Path dir) throws Exception {
        String dense = models().resolve("stories260K.gguf").toString();
        CommandLineTest.Run notMoe = tessera("generate", "--model", dense, "--prompt", "Hi", "--expert-workers", "127.0.0.1:9");
        assertEquals(2, notMoe.exitCode(), notMoe.stderr());
        assertTrue(notMoe.stderr().contains("stories260K.gguf is not a mixture-of-experts model"), notMoe.stderr());
        CommandLineTest.Run worker = tessera("expert-worker", "--listen", "127.0.0.1:0", "--model", dense);
        assertEquals(2, worker.exitCode(), worker.stderr());
        assertTrue(worker.stderr().contains("not a mixture-of-experts model"), worker.stderr());

        Path model = dir.resolve("moe.gguf");
        assertEquals(0, tessera("synth", "--preset", "moe-tiny", "--type", "q8_0", "--out", model.toString(),
                "--vocab-from", models().resolve("llama.cpp-vocab/ggml-vocab-llama-spm.gguf").toString()).exitCode());
        Path garbage = dir.resolve("garbage.json"), fourDevices = dir.resolve("four.json"), uneven = dir.resolve("uneven.json");
        Files.writeString(garbage, "{\"format\": \"tessera-expert-placement\", \"device_of_expert\": [[0, 1");
        Files.writeString(fourDevices, "{\"format\": \"tessera-expert-placement\", \"num_devices\": 4, \"device_of_expert\": []}");
        Files.writeString(uneven, "{\"format\": \"tessera-expert-placement\", \"num_devices\": 2, \"device_of_expert\": "
                + "[[0,0,0,0,0,1,1,1],[0,0,0,0,1,1,1,1],[0,0,0,0,1,1,1,1],[0,0,0,0,1,1,1,1]]}");
        String[][] cases = {
                {garbage.toString(), "not valid JSON"},
                {fourDevices.toString(), "places experts on 4 devices; this run has 2"},
                {uneven.toString(), "layer 0: device 0 holds 5 experts, expected 4"},
                {dir.resolve("missing.json").toString(), "is neither contiguous, round-robin nor a placement file"}};
        for (String[] c : cases) {
            CommandLineTest.Run r = tessera("generate", "--model", model.toString(), "--prompt", "Hi", "--expert-workers", "127.0.0.1:9",
                    "--expert-placement", c[0]);
            assertEquals(2, r.exitCode(), r.stderr());
            assertTrue(r.stderr().contains(c[1]) && !r.stderr().contains("Exception") && !r.stderr().contains("\tat "), c[0] + ": " + r.stderr());
        }
        CommandLineTest.Run mode = tessera("generate", "--model", model.toString(), "--prompt", "Hi", "--expert-workers", "127.0.0.1:9", "--expert-mode", "fast");
        assertEquals(2, mode.exitCode(), mode.stderr());
        assertTrue(mode.stderr().contains("unknown expert-parallel mode 'fast', expected coherent|baseline"), mode.stderr());
    }
}
