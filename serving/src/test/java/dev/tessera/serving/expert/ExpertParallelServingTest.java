package dev.tessera.serving.expert;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.arch.ExpertParallelFeedForward.Mode;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;
import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.scheduler.expert.ExpertParallelRunner;
import dev.tessera.scheduler.placement.Placement;
import dev.tessera.serving.CliProcesses;
import dev.tessera.serving.GreedyParity;
import dev.tessera.serving.ServedModel;
import dev.tessera.serving.ServingConfig;
import dev.tessera.serving.TestServer;
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
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code serve} of a synthetic 8-expert top-2 Q8_0 model with its experts spread over real {@code tessera expert-worker}
 * processes: 16 concurrent greedy requests, through a KV pool too small for all of them (preemption) and with shared
 * openings (prefix hits), give each prompt's text alone, on 2 and 4 devices, in ExFlow's coherent mode and in the
 * two-all-to-all baseline; a killed worker fails the requests in flight naming it, frees every block, and is served
 * again once it is back.
 */
class ExpertParallelServingTest {
    static final List<Process> WORKERS = new ArrayList<>();
    static final List<Integer> PORTS = new ArrayList<>();

    @TempDir
    static Path tmp;
    static Path model;

    @BeforeAll
    static void startWorkers() throws Exception {
        model = tmp.resolve("moe-tiny-q8_0.gguf");
        SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 5).write(TestServer.modelPath().getParent().resolve(SynthPreset.DEFAULT_VOCAB), model, null);
        for (int i = 0; i < 3; i++) {
            PORTS.add(CliProcesses.freePortOutsideEphemeralRange());
            WORKERS.add(startWorker(PORTS.get(i)));
        }
    }

    @AfterAll
    static void stopWorkers() throws Exception {
        for (Process p : WORKERS) p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }

    static Process startWorker(int port) throws Exception {
        return startWorker(model, port);
    }

    static Process startWorker(Path model, int port) throws Exception {
        return CliProcesses.start("expert-worker: listening on", "expert-worker", "--listen", "127.0.0.1:" + port, "--model", model.toString(), "--threads", "1");
    }

    static ServedModel expertParallel(List<Integer> ports, Placement placement, Mode mode, int numKvBlocks) {
        return expertParallel(model, ports, placement, mode, numKvBlocks);
    }

    /** Device 0 in this process, devices 1.. the workers on {@code ports}, with a pool of {@code numKvBlocks} blocks. */
    static ServedModel expertParallel(Path model, List<Integer> ports, Placement placement, Mode mode, int numKvBlocks) {
        ModelConfig c;
        try (GgufFile f = GgufFile.open(model)) {
            c = ModelConfig.fromGguf(f);
        }
        long bytes = numKvBlocks * KvBlockStore.bytesPerBlock(c.numLayers(), c.kvDim(), 16, KvCacheType.F32);
        EngineConfig engine = EngineConfig.defaults(16, 64, 64).withKvCache(bytes, KvCacheType.F32);
        return ServedModel.load(model, "moe", engine, file -> new ExpertParallelRunner(file, ModelConfig.fromGguf(file), new CpuBackend(1),
                ports.stream().map(p -> new InetSocketAddress("127.0.0.1", p)).toList(), placement.device(), mode, CollectiveKind.STAR,
                64, 16, Duration.ofSeconds(20), null, List.of()));
    }

    @Test
    void twoAndFourDevicesInBothModesMatchOneProcessUnderPreemptionAndPrefixHits() throws Exception {
        List<String> alone = GreedyParity.alone(model, "moe");
        for (Mode mode : Mode.values()) {
            for (int devices : new int[] {2, 4}) {
                Placement placement = devices == 2 ? Placement.contiguous(4, 8, 2, 1) : Placement.roundRobin(4, 8, 4, 1);
                try (TestServer server = TestServer.unloaded(new ServingConfig("moe", null, ServingConfig.DEFAULT_MAX_BODY_BYTES))) {
                    // 24 blocks of 16 positions: not all 16 sequences fit at once, so some are preempted and recomputed.
                    server.context.ready(expertParallel(PORTS.subList(0, devices - 1), placement, mode, 24));
                    String what = mode.flag + " on " + devices + " devices";
                    GreedyParity.assertSameTexts(alone, GreedyParity.concurrently(server, "moe", 16), what);
                    assertTrue(server.metric("tessera_num_preemptions_total") > 0, what + ": no request was preempted");
                    assertTrue(server.metric("tessera_prefix_cache_hits_total") > 0, what + ": no prefix-cache hit");
                    assertEquals(0, server.metric("tessera_kv_cache_usage_perc"), what + ": KV blocks held after every request ended");
                }
            }
        }
    }

    @Test
    void aKilledWorkerFailsItsRequestsFreesEveryBlockAndIsServedAgainOnceBack() throws Exception {
        String victim = "127.0.0.1:" + PORTS.get(1);
        try (TestServer server = TestServer.unloaded(new ServingConfig("moe", null, ServingConfig.DEFAULT_MAX_BODY_BYTES))) {
            server.context.ready(expertParallel(PORTS.subList(0, 3), Placement.contiguous(4, 8, 4, 1), Mode.TWO_ALL_TO_ALL, 64));
            assertEquals(200, server.post("/v1/completions", GreedyParity.request("moe", 0, false, 4)).statusCode());
            List<CompletableFuture<HttpResponse<String>>> streams = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                streams.add(server.client.sendAsync(HttpRequest.newBuilder(server.uri("/v1/completions")).header("Content-Type", "application/json")
                        .timeout(Duration.ofSeconds(120)).POST(HttpRequest.BodyPublishers.ofString(GreedyParity.request("moe", i, true, 600))).build(),
                        HttpResponse.BodyHandlers.ofString()));
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (server.metric("tessera_num_requests_running") < 6 && System.nanoTime() < deadline) Thread.sleep(5);
            Thread.sleep(100);
            WORKERS.get(1).destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            for (CompletableFuture<HttpResponse<String>> f : streams) {
                String body = f.get(60, TimeUnit.SECONDS).body();
                assertTrue(body.contains("\"error\"") && body.contains(victim), body.length() > 400 ? body.substring(body.length() - 400) : body);
                assertTrue(body.strip().endsWith("data: [DONE]"), "stream did not end with [DONE]");
            }
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (server.metric("tessera_kv_cache_usage_perc") != 0 && System.nanoTime() < deadline) Thread.sleep(20);
            assertEquals(0, server.metric("tessera_kv_cache_usage_perc"), "KV blocks leaked after the failure");

            HttpResponse<String> lost = server.post("/v1/completions", GreedyParity.request("moe", 0, false, 8));
            assertEquals(503, lost.statusCode(), lost.body());
            JsonNode error = TestServer.json(lost).get("error");
            assertTrue(error.get("message").asText().contains(victim), error.toString());
            assertEquals("device_unavailable", error.get("code").asText());
            assertEquals(200, server.get("/health").statusCode(), "the server stays up");

            WORKERS.set(1, startWorker(PORTS.get(1)));
            List<String> alone = GreedyParity.alone(model, "moe");
            GreedyParity.assertSameTexts(alone, GreedyParity.concurrently(server, "moe", 4), "after the worker came back");
        }
    }
}
