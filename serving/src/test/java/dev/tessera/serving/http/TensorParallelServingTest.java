package dev.tessera.serving.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.kernels.collective.AllReduceKind;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.scheduler.parallel.TensorParallelModel;
import dev.tessera.serving.ServedModel;
import dev.tessera.serving.ServingConfig;
import dev.tessera.serving.TestServer;
import dev.tessera.serving.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code serve} with a tensor-parallel worker: a real {@code tessera worker} process that receives its shard from
 * the master, is killed mid-service (503 naming it, fast while it is gone), and comes back (served again).
 */
class TensorParallelServingTest {
    static final String REQUEST = "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":16,\"temperature\":0}";

    @TempDir
    Path shards;

    @Test
    void workerLossIsA503NamingItAndServingResumesWhenItIsBack() throws Exception {
        int port = freePortOutsideEphemeralRange();
        String workerName = "127.0.0.1:" + port;
        Process worker = startWorker(port);
        try (TestServer server = TestServer.unloaded(new ServingConfig(TestServer.MODEL_NAME, null, ServingConfig.DEFAULT_MAX_BODY_BYTES))) {
            server.context.ready(ServedModel.load(TestServer.modelPath(), TestServer.MODEL_NAME, 8, (file, tokenizer) -> {
                ModelConfig config = ModelConfig.fromGguf(file);
                return new TensorParallelModel(file, config, new CpuBackend(1), List.of(new InetSocketAddress("127.0.0.1", port)),
                        TensorParallelModel.plan(file, config, new int[] {1, 1}), AllReduceKind.STAR, 0, 64, Duration.ofSeconds(10));
            }));

            HttpResponse<String> ok = server.post("/v1/completions", REQUEST);
            assertEquals(200, ok.statusCode(), ok.body());
            String text = TestServer.json(ok).get("choices").get(0).get("text").asText();
            assertTrue(text.contains("there was a little girl named Lily"), text);

            worker.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            HttpResponse<String> lost = server.post("/v1/completions", REQUEST);
            assertEquals(503, lost.statusCode(), lost.body());
            JsonNode error = TestServer.json(lost).get("error");
            assertTrue(error.get("message").asText().contains(workerName), error.toString());
            assertEquals("device_unavailable", error.get("code").asText());

            long t0 = System.nanoTime();
            HttpResponse<String> stillGone = server.post("/v1/completions", REQUEST);
            long millis = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(503, stillGone.statusCode(), stillGone.body());
            assertTrue(millis < 3000, "failing while the worker is gone took " + millis + " ms");
            assertEquals(200, server.get("/health").statusCode(), "the server stays up");

            worker = startWorker(port);
            HttpResponse<String> back = server.post("/v1/completions", REQUEST);
            assertEquals(200, back.statusCode(), back.body());
            assertEquals(text, TestServer.json(back).get("choices").get(0).get("text").asText());
        } finally {
            worker.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** A worker process on the test classpath; returns once it listens. Its shard comes from the master. */
    private Process startWorker(int port) throws Exception {
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "worker", "--listen", "127.0.0.1:" + port, "--shard-dir", shards.toString(), "--threads", "1")
                .redirectErrorStream(true).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        for (String line; (line = out.readLine()) != null; ) {
            if (line.contains("tessera worker: listening on")) {
                Thread.ofVirtual().start(() -> out.lines().forEach(l -> { }));  // keep draining its log
                return p;
            }
            if (System.nanoTime() > deadline) break;
        }
        p.destroyForcibly();
        throw new AssertionError("worker on port " + port + " did not start");
    }

    /**
     * A port free now and below Linux's ephemeral range: the worker process binds it a second later, and the test
     * server's own port-0 listener, opened meanwhile, must not take it.
     */
    private static int freePortOutsideEphemeralRange() throws java.io.IOException {
        java.util.SplittableRandom random = new java.util.SplittableRandom();
        for (int attempt = 0; attempt < 100; attempt++) {
            int port = 20_000 + random.nextInt(12_000);
            try (ServerSocket probe = new ServerSocket()) {
                probe.bind(new java.net.InetSocketAddress("127.0.0.1", port));
                return port;
            } catch (java.net.BindException busy) {
                // taken: try another
            }
        }
        throw new java.io.IOException("no free port in 20000-31999");
    }
}
