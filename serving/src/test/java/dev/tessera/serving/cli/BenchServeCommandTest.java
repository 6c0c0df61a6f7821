package dev.tessera.serving.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.serving.TestServer;
import dev.tessera.serving.cli.benchserve.BenchPrompts;
import dev.tessera.serving.cli.benchserve.LoadReport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code tessera bench serve} against a real server with stories260K, over real HTTP. */
class BenchServeCommandTest {
    private static TestServer server;

    record Run(int exitCode, String stdout, String stderr) {}

    @BeforeAll
    static void start() {
        server = TestServer.loaded();
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static Run bench(String... args) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int code = new BenchServeCommand().run(List.of(args), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void closedLoopMeasuresEveryRequest() throws Exception {
        Run r = bench("--url", server.uri("").toString(), "--model", TestServer.MODEL_NAME, "--concurrency", "2", "--requests", "6",
                "--prompt-tokens", "16", "--gen-tokens", "8", "--json");
        assertEquals(0, r.exitCode(), r.stderr() + r.stdout());
        JsonNode j = new ObjectMapper().readTree(r.stdout());
        assertEquals(6, j.get("completed").asInt(), r.stdout());
        assertEquals(0, j.get("failed").asInt(), r.stdout());
        assertEquals(48, j.get("total_output_tokens").asInt(), r.stdout());
        assertTrue(j.get("mean_ttft_ms").asDouble() > 0, r.stdout());
        assertTrue(j.get("p50_ttft_ms").asDouble() > 0, r.stdout());
        assertTrue(j.get("mean_itl_ms").asDouble() > 0, r.stdout());
        assertTrue(j.get("p99_itl_ms").asDouble() >= j.get("p50_itl_ms").asDouble(), r.stdout());
        assertTrue(j.get("p99_e2e_ms").asDouble() >= j.get("p50_ttft_ms").asDouble(), r.stdout());
        assertTrue(j.get("request_throughput").asDouble() > 0, r.stdout());
        assertTrue(j.get("output_throughput").asDouble() > 0, r.stdout());
        // Prompts were sized from the probe's usage: about 16 tokens, as the server counts them.
        double promptTokens = j.get("mean_prompt_tokens").asDouble();
        assertTrue(promptTokens >= 10 && promptTokens <= 24, "mean prompt tokens " + promptTokens);
        assertTrue(j.get("errors").isEmpty(), r.stdout());
    }

    @Test
    void openLoopWithSharedPrefixPrintsATable() throws Exception {
        Run r = bench("--url", server.uri("/v1").toString(), "--model", TestServer.MODEL_NAME, "--concurrency", "4", "--requests", "5",
                "--prompt-tokens", "24", "--gen-tokens", "4", "--shared-prefix", "12", "--request-rate", "50", "--seed", "7");
        assertEquals(0, r.exitCode(), r.stderr() + r.stdout());
        assertTrue(r.stdout().contains("completed / failed"), r.stdout());
        assertTrue(r.stdout().matches("(?s).*completed / failed\\s+5 / 0\\n.*"), r.stdout());
        assertTrue(r.stdout().contains("time to first token"), r.stdout());
        assertTrue(r.stderr().contains("Poisson arrivals at 50.0 req/s"), r.stderr());
    }

    @Test
    void wrongModelCountsFailuresInsteadOfCrashing() throws Exception {
        Run r = bench("--url", server.uri("").toString(), "--model", "no-such-model", "--concurrency", "2", "--requests", "4",
                "--prompt-tokens", "16", "--gen-tokens", "8", "--json");
        assertEquals(1, r.exitCode(), r.stderr());
        JsonNode j = new ObjectMapper().readTree(r.stdout());
        assertEquals(0, j.get("completed").asInt(), r.stdout());
        assertEquals(4, j.get("failed").asInt(), r.stdout());
        assertEquals(0, j.get("total_output_tokens").asInt(), r.stdout());
        assertEquals(1, j.get("errors").size(), r.stdout());
        String message = j.get("errors").fieldNames().next();
        assertTrue(message.startsWith("HTTP 404"), message);
        assertEquals(4, j.get("errors").get(message).asInt());
        assertTrue(r.stderr().contains("assuming 1.3 tokens per word"), r.stderr());
    }

    @Test
    void unreachableServerCountsFailures() throws Exception {
        // A port nobody listens on: connection refused for every request, reported, exit 1.
        int port;
        try (var s = new java.net.ServerSocket(0)) { port = s.getLocalPort(); }
        Run r = bench("--url", "http://127.0.0.1:" + port, "--model", "m", "--requests", "3", "--prompt-tokens", "8",
                "--gen-tokens", "2", "--timeout", "10", "--json");
        assertEquals(1, r.exitCode(), r.stderr());
        JsonNode j = new ObjectMapper().readTree(r.stdout());
        assertEquals(3, j.get("failed").asInt(), r.stdout());
    }

    @Test
    void aServerThatNeverAnswersTimesOutPerRequest() throws Exception {
        // A listener that accepts connections and never writes a byte: each request fails at --timeout, none hangs.
        try (var listener = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            List<java.net.Socket> held = java.util.Collections.synchronizedList(new ArrayList<>());
            Thread acceptor = Thread.ofVirtual().start(() -> {
                try {
                    while (true) held.add(listener.accept());
                } catch (java.io.IOException closed) {
                    // listener closed at the end of the test
                }
            });
            long start = System.nanoTime();
            Run r = bench("--url", "http://127.0.0.1:" + listener.getLocalPort(), "--model", "m", "--concurrency", "2", "--requests", "2",
                    "--prompt-tokens", "8", "--gen-tokens", "2", "--timeout", "1", "--json");
            double seconds = (System.nanoTime() - start) / 1e9;
            assertEquals(1, r.exitCode(), r.stderr());
            JsonNode j = new ObjectMapper().readTree(r.stdout());
            assertEquals(2, j.get("failed").asInt(), r.stdout());
            assertTrue(j.get("errors").fieldNames().next().startsWith("timeout"), r.stdout());
            // The probe and the two requests each wait 1 s; the requests run side by side.
            assertTrue(seconds < 10, "took " + seconds + " s");
            for (java.net.Socket s : held) s.close();
            listener.close();
            acceptor.join();
        }
    }

    @Test
    void badUsageIsAUsageError() {
        assertThrows(CliArgs.UsageException.class, () -> bench("--model", "m"));
        assertThrows(CliArgs.UsageException.class, () -> bench("--url", "http://127.0.0.1:1", "--model", "m", "--concurrency", "0"));
        assertThrows(CliArgs.UsageException.class, () -> bench("--url", "ftp://x", "--model", "m"));
        assertThrows(CliArgs.UsageException.class, () -> bench("--url", "http://127.0.0.1:1", "--model", "m",
                "--prompt-tokens", "16", "--shared-prefix", "16"));
        assertThrows(CliArgs.UsageException.class, () -> bench("--url", "http://127.0.0.1:1", "--model", "m", "--bogus", "1"));
    }

    @Test
    void benchDispatchesServeAndExitsTwoOnBadUsage() {
        // Through the CLI entry point: 'bench serve' with bad usage is exit 2; plain 'bench' still wants --model.
        assertEquals(2, Main.run(new String[]{"bench", "serve", "--model", "m"}));
        assertEquals(2, Main.run(new String[]{"bench", "--prompt-tokens", "4"}));
    }

    @Test
    void endpointAcceptsBaseOrFullUrl() {
        assertEquals("http://h:1/v1/completions", BenchServeCommand.endpoint("http://h:1").toString());
        assertEquals("http://h:1/v1/completions", BenchServeCommand.endpoint("http://h:1/").toString());
        assertEquals("http://h:1/v1/completions", BenchServeCommand.endpoint("http://h:1/v1").toString());
        assertEquals("http://h:1/v1/completions", BenchServeCommand.endpoint("http://h:1/v1/completions").toString());
    }

    @Test
    void promptsShareExactlyThePrefixAndDifferAfterIt() {
        List<String> prompts = BenchPrompts.build(8, 40, 20, 2.0, 3);
        String prefix = String.join(" ", List.of(prompts.get(0).split(" ")).subList(0, 10));
        for (String p : prompts) {
            assertTrue(p.startsWith(prefix + " "), p);
            assertEquals(20, p.split(" ").length, p);
        }
        assertEquals(8, new HashSet<>(prompts).size());
        assertEquals(prompts, BenchPrompts.build(8, 40, 20, 2.0, 3));
        assertNotEquals(prompts, BenchPrompts.build(8, 40, 20, 2.0, 4));
        List<String> suffixes = new ArrayList<>();
        for (String p : prompts) suffixes.add(p.substring(prefix.length()));
        assertEquals(8, new HashSet<>(suffixes).size());
    }

    @Test
    void percentilesInterpolateLikeNumpy() {
        double[] v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        assertEquals(5.5, LoadReport.percentile(v, 50), 1e-9);
        assertEquals(9.1, LoadReport.percentile(v, 90), 1e-9);
        assertEquals(9.91, LoadReport.percentile(v, 99), 1e-9);
        assertEquals(4.0, LoadReport.percentile(new double[]{4}, 99), 1e-9);
        assertTrue(Double.isNaN(LoadReport.percentile(new double[0], 50)));
    }
}
