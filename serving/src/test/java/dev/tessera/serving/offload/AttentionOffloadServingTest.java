package dev.tessera.serving.offload;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;
import dev.tessera.offload.OffloadClient;
import dev.tessera.offload.WireFormat;
import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.scheduler.offload.AttentionOffloadRunner;
import dev.tessera.serving.ServedModel;
import dev.tessera.serving.ServingConfig;
import dev.tessera.serving.TestServer;
import dev.tessera.serving.CliProcesses;
import dev.tessera.serving.GreedyParity;
import dev.tessera.serving.PromtoolTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code serve} with attention offloaded to real {@code tessera attention-worker} processes: 16 concurrent greedy
 * requests through a KV pool too small for all of them (preemption) with shared openings (prefix hits) give each
 * prompt's text alone, with one and with two memory nodes, on stories260K and on a synthetic Q8_0 model; a memory node
 * killed with streams in flight fails them naming it, frees every block, and is served again once it is back.
 */
class AttentionOffloadServingTest {
    static final List<Process> NODES = new ArrayList<>();
    static final List<Integer> PORTS = new ArrayList<>();

    @TempDir
    static Path tmp;

    @BeforeAll
    static void startMemoryNodes() throws Exception {
        for (int i = 0; i < 2; i++) {
            PORTS.add(freePortOutsideEphemeralRange());
            NODES.add(startNode(PORTS.get(i)));
        }
    }

    @AfterAll
    static void stopMemoryNodes() throws Exception {
        for (Process p : NODES) p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }

    static String request(String model, int i, boolean stream, int maxTokens) {
        return GreedyParity.request(model, i, stream, maxTokens);
    }

    static List<String> alone(Path model, String name) throws Exception {
        return GreedyParity.alone(model, name);
    }

    /** A compute node in this process over memory nodes {@code ports}, with a pool of {@code numKvBlocks} blocks. */
    static ServedModel offloaded(Path model, String name, List<Integer> ports, int numKvBlocks, AtomicReference<AttentionOffloadRunner> runner) {
        ModelConfig c;
        try (GgufFile f = GgufFile.open(model)) {
            c = ModelConfig.fromGguf(f);
        }
        long bytes = numKvBlocks * KvBlockStore.bytesPerBlock(c.numLayers(), c.kvDim(), 16, KvCacheType.F32);
        EngineConfig engine = EngineConfig.defaults(16, 64, 64).withKvCache(bytes, KvCacheType.F32);
        int[] weights = new int[ports.size()];
        Arrays.fill(weights, 1);
        return ServedModel.load(model, name, engine, file -> {
            ModelConfig config = ModelConfig.fromGguf(file);
            CpuBackend backend = new CpuBackend(1);
            OffloadClient client = new OffloadClient(name, config, ports.stream().map(p -> new InetSocketAddress("127.0.0.1", p)).toList(),
                    weights, WireFormat.F32, 64, 2, Duration.ofSeconds(20));
            AttentionOffloadRunner r = new AttentionOffloadRunner(config, LlamaWeights.load(file, config, backend), backend, client, 2, 64, 16);
            runner.set(r);
            return r;
        });
    }

    static List<HttpResponse<String>> concurrently(TestServer server, String name, int n) {
        return GreedyParity.concurrently(server, name, n);
    }

    static void assertSameTexts(List<String> alone, List<HttpResponse<String>> got, String what) throws Exception {
        GreedyParity.assertSameTexts(alone, got, what);
    }

    @Test
    void oneAndTwoMemoryNodesMatchLocalAttentionUnderPreemptionAndPrefixHits() throws Exception {
        String name = TestServer.MODEL_NAME;
        List<String> alone = alone(TestServer.modelPath(), name);
        for (List<Integer> ports : List.of(PORTS.subList(0, 1), PORTS)) {
            AtomicReference<AttentionOffloadRunner> runner = new AtomicReference<>();
            try (TestServer server = TestServer.unloaded(new ServingConfig(name, null, ServingConfig.DEFAULT_MAX_BODY_BYTES))) {
                // 24 blocks of 16 positions: not all 16 sequences fit at once, so some are preempted and recomputed.
                server.context.ready(offloaded(TestServer.modelPath(), name, ports, 24, runner));
                assertSameTexts(alone, concurrently(server, name, 16), ports.size() + " memory node(s)");
                assertTrue(server.metric("tessera_num_preemptions_total") > 0, "no request was preempted");
                assertTrue(server.metric("tessera_prefix_cache_hits_total") > 0, "no prefix-cache hit");
                String stats = String.join("\n", runner.get().stats());
                assertTrue(!stats.contains(" 0 pipelined"), "no step was split into two micro-batches:\n" + stats);
                String metrics = server.get("/metrics").body();
                assertTrue(metrics.contains("tessera_offload_network_wait_ratio"), metrics);
                PromtoolTest.assertLints(metrics);
            }
        }
    }

    @Test
    void synthesizedQ8ModelMatchesLocalAttentionOverTwoMemoryNodes() throws Exception {
        Path model = tmp.resolve("synth-tiny-q8_0.gguf");
        SynthModel.of(SynthPreset.TINY, TensorType.Q8_0, 7).write(TestServer.modelPath().getParent().resolve(SynthPreset.DEFAULT_VOCAB), model, null);
        List<String> alone = alone(model, "synth");
        AtomicReference<AttentionOffloadRunner> runner = new AtomicReference<>();
        try (TestServer server = TestServer.unloaded(new ServingConfig("synth", null, ServingConfig.DEFAULT_MAX_BODY_BYTES))) {
            server.context.ready(offloaded(model, "synth", PORTS, 24, runner));
            assertSameTexts(alone, concurrently(server, "synth", 16), "synthetic Q8_0 model");
            assertTrue(server.metric("tessera_num_preemptions_total") > 0, "no request was preempted");
        }
    }

    @Test
    void aKilledMemoryNodeFailsItsRequestsFreesEveryBlockAndIsServedAgainOnceBack() throws Exception {
        String name = TestServer.MODEL_NAME;
        String victim = "127.0.0.1:" + PORTS.get(1);
        AtomicReference<AttentionOffloadRunner> runner = new AtomicReference<>();
        try (TestServer server = TestServer.unloaded(new ServingConfig(name, null, ServingConfig.DEFAULT_MAX_BODY_BYTES))) {
            server.context.ready(offloaded(TestServer.modelPath(), name, PORTS, 64, runner));
            assertEquals(200, server.post("/v1/completions", request(name, 0, false, 4)).statusCode());
            List<CompletableFuture<HttpResponse<String>>> streams = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                streams.add(server.client.sendAsync(HttpRequest.newBuilder(server.uri("/v1/completions")).header("Content-Type", "application/json")
                        .timeout(Duration.ofSeconds(120)).POST(HttpRequest.BodyPublishers.ofString(request(name, i, true, 400))).build(),
                        HttpResponse.BodyHandlers.ofString()));
            }
            // Kill the node once all eight are decoding (each asks for 400 tokens: seconds of work here).
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (server.metric("tessera_num_requests_running") < 8 && System.nanoTime() < deadline) Thread.sleep(5);
            Thread.sleep(100);
            NODES.get(1).destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            for (CompletableFuture<HttpResponse<String>> f : streams) {
                String body = f.get(60, TimeUnit.SECONDS).body();
                assertTrue(body.contains("\"error\"") && body.contains(victim), body.length() > 400 ? body.substring(body.length() - 400) : body);
                assertTrue(body.strip().endsWith("data: [DONE]"), "stream did not end with [DONE]");
            }
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (server.metric("tessera_kv_cache_usage_perc") != 0 && System.nanoTime() < deadline) Thread.sleep(20);
            assertEquals(0, server.metric("tessera_kv_cache_usage_perc"), "KV blocks leaked after the failure");

            HttpResponse<String> lost = server.post("/v1/completions", request(name, 0, false, 8));
            assertEquals(503, lost.statusCode(), lost.body());
            JsonNode error = TestServer.json(lost).get("error");
            assertTrue(error.get("message").asText().contains(victim), error.toString());
            assertEquals("device_unavailable", error.get("code").asText());
            assertEquals(200, server.get("/health").statusCode(), "the server stays up");

            NODES.set(1, startNode(PORTS.get(1)));
            List<String> alone = alone(TestServer.modelPath(), name);
            assertSameTexts(alone, concurrently(server, name, 4), "after the memory node came back");
        }
    }

    static Process startNode(int port) throws Exception {
        return CliProcesses.start("attention-worker: listening on", "attention-worker", "--listen", "127.0.0.1:" + port,
                "--kv-cache-memory", "64MiB", "--threads", "1");
    }

    static int freePortOutsideEphemeralRange() throws java.io.IOException {
        return CliProcesses.freePortOutsideEphemeralRange();
    }
}
