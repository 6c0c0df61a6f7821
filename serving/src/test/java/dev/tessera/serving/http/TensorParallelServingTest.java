package dev.tessera.serving.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.scheduler.parallel.TensorParallelRunner;
import dev.tessera.serving.ServedModel;
import dev.tessera.serving.ServingConfig;
import dev.tessera.serving.TestServer;
import dev.tessera.serving.CliProcesses;
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
 * {@code serve} with tensor-parallel workers behind the batching engine: real {@code tessera worker} processes that
 * receive their shards from the master; 16 concurrent requests through a KV pool too small for all of them give each
 * prompt's text alone; a worker killed with streams in flight ends every stream with an error event and [DONE], is
 * answered 503 naming it (fast while it is gone), and is served again once it is back.
 */
class TensorParallelServingTest {
    static final String REQUEST = "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":16,\"temperature\":0}";

    @TempDir
    Path shards;

    static String request(int i, boolean stream) {
        // Four groups of prompts that share a long opening: prefix-cache hits across requests.
        String opening = List.of("Once upon a time, there was a little girl named Lily. She loved to play outside",
                "One day, a big dog came to the park and saw a ball", "Tom and Sam were best friends who liked to",
                "The sun was shining and the birds were singing in the tall").get(i % 4);
        return "{\"model\":\"stories260K\",\"prompt\":\"" + opening + (i >= 4 ? " and " + "then ".repeat(i / 4) : "")
                + "\",\"max_tokens\":" + (12 + i) + ",\"temperature\":0" + (stream ? ",\"stream\":true" : "") + "}";
    }

    static ServedModel tensorParallel(List<Integer> ports, int numKvBlocks) {
        ModelConfig c;
        try (var f = dev.tessera.models.gguf.GgufFile.open(TestServer.modelPath())) {
            c = ModelConfig.fromGguf(f);
        }
        long bytes = numKvBlocks * KvBlockStore.bytesPerBlock(c.numLayers(), c.kvDim(), 16, KvCacheType.F32);
        EngineConfig engine = EngineConfig.defaults(16, 64, 64).withKvCache(bytes, KvCacheType.F32);
        int[] weights = new int[ports.size() + 1];
        java.util.Arrays.fill(weights, 1);
        return ServedModel.load(TestServer.modelPath(), TestServer.MODEL_NAME, engine, file -> {
            ModelConfig config = ModelConfig.fromGguf(file);
            return new TensorParallelRunner(file, config, new CpuBackend(1), ports.stream().map(p -> new InetSocketAddress("127.0.0.1", p)).toList(),
                    TensorParallelRunner.plan(file, config, weights), CollectiveKind.STAR, 0, 64, 16, Duration.ofSeconds(10), null, List.of());
        });
    }

    static List<HttpResponse<String>> concurrently(TestServer server, int n, boolean stream) {
        List<CompletableFuture<HttpResponse<String>>> futures = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            futures.add(server.client.sendAsync(HttpRequest.newBuilder(server.uri("/v1/completions")).header("Content-Type", "application/json")
                    .timeout(Duration.ofSeconds(120)).POST(HttpRequest.BodyPublishers.ofString(request(i, stream))).build(), HttpResponse.BodyHandlers.ofString()));
        }
        return futures.stream().map(CompletableFuture::join).toList();
    }

    @Test
    void sixteenConcurrentRequestsThroughTwoWorkersMatchEachAloneThenSurviveAKilledWorker() throws Exception {
        List<String> alone = new ArrayList<>();
        try (TestServer local = TestServer.loaded(new ServingConfig(TestServer.MODEL_NAME, null, ServingConfig.DEFAULT_MAX_BODY_BYTES), 64, 1)) {
            for (int i = 0; i < 16; i++) {
                HttpResponse<String> r = local.post("/v1/completions", request(i, false));
                assertEquals(200, r.statusCode(), r.body());
                alone.add(TestServer.json(r).get("choices").get(0).get("text").asText());
            }
        }
        List<Integer> ports = List.of(freePortOutsideEphemeralRange(), freePortOutsideEphemeralRange());
        List<Process> workers = new ArrayList<>();
        for (int port : ports) workers.add(startWorker(port));
        String victim = "127.0.0.1:" + ports.get(1);
        try (TestServer server = TestServer.unloaded(new ServingConfig(TestServer.MODEL_NAME, null, ServingConfig.DEFAULT_MAX_BODY_BYTES))) {
            // 24 blocks of 16 positions: not all 16 sequences fit at once, so some are preempted and recomputed.
            server.context.ready(tensorParallel(ports, 24));
            List<HttpResponse<String>> got = concurrently(server, 16, false);
            for (int i = 0; i < 16; i++) {
                assertEquals(200, got.get(i).statusCode(), got.get(i).body());
                assertEquals(alone.get(i), TestServer.json(got.get(i)).get("choices").get(0).get("text").asText(), "request " + i);
            }
            assertTrue(server.metric("tessera_num_preemptions_total") > 0, "no request was preempted");
            assertTrue(server.metric("tessera_prefix_cache_hits_total") > 0, "no prefix-cache hit");

            // Eight long streams in flight when a worker dies: each ends with an error event naming it, then [DONE].
            List<CompletableFuture<HttpResponse<String>>> streams = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                streams.add(server.client.sendAsync(HttpRequest.newBuilder(server.uri("/v1/completions")).header("Content-Type", "application/json")
                        .timeout(Duration.ofSeconds(120)).POST(HttpRequest.BodyPublishers.ofString(request(i, true).replace("\"max_tokens\":" + (12 + i), "\"max_tokens\":300")))
                        .build(), HttpResponse.BodyHandlers.ofString()));
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (server.metric("tessera_generation_tokens_total") < 16 * 12 + 40 && System.nanoTime() < deadline) Thread.sleep(20);
            workers.get(1).destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            for (CompletableFuture<HttpResponse<String>> f : streams) {
                String body = f.get(60, TimeUnit.SECONDS).body();
                assertTrue(body.contains("\"error\"") && body.contains(victim), body.length() > 400 ? body.substring(body.length() - 400) : body);
                assertTrue(body.strip().endsWith("data: [DONE]"), "stream did not end with [DONE]");
            }
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (server.metric("tessera_kv_cache_usage_perc") != 0 && System.nanoTime() < deadline) Thread.sleep(20);
            assertEquals(0, server.metric("tessera_kv_cache_usage_perc"), "KV blocks leaked after the failure");

            HttpResponse<String> lost = server.post("/v1/completions", REQUEST);
            assertEquals(503, lost.statusCode(), lost.body());
            JsonNode error = TestServer.json(lost).get("error");
            assertTrue(error.get("message").asText().contains(victim), error.toString());
            assertEquals("device_unavailable", error.get("code").asText());

            long t0 = System.nanoTime();
            HttpResponse<String> stillGone = server.post("/v1/completions", REQUEST);
            long millis = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(503, stillGone.statusCode(), stillGone.body());
            assertTrue(millis < 3000, "failing while the worker is gone took " + millis + " ms");
            assertEquals(200, server.get("/health").statusCode(), "the server stays up");

            workers.set(1, startWorker(ports.get(1)));
            List<HttpResponse<String>> back = concurrently(server, 4, false);
            for (int i = 0; i < 4; i++) {
                assertEquals(200, back.get(i).statusCode(), back.get(i).body());
                assertEquals(alone.get(i), TestServer.json(back.get(i)).get("choices").get(0).get("text").asText(), "after the worker came back, request " + i);
            }
        } finally {
            for (Process w : workers) w.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** A worker process on the test classpath; returns once it listens. Its shard comes from the master. */
    private Process startWorker(int port) throws Exception {
        return CliProcesses.start("tessera worker: listening on", "worker", "--listen", "127.0.0.1:" + port, "--shard-dir", shards.toString(), "--threads", "1");
    }

    private static int freePortOutsideEphemeralRange() throws java.io.IOException {
        return CliProcesses.freePortOutsideEphemeralRange();
    }
}
