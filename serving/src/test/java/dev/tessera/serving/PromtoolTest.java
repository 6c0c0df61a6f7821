package dev.tessera.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code /metrics} after real traffic passes Prometheus' own linter, {@code promtool check metrics}
 * (Debian package {@code prometheus}; .ci/run installs it). Without promtool this test fails.
 */
public class PromtoolTest {

    private static final String SHARED = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";

    @Test
    void metricsAfterTrafficPassPromtool() throws Exception {
        findPromtool();  // fail first, before starting a server, when it is missing
        try (ServeProcess server = ServeProcess.start(null)) {
            HttpClient http = HttpClient.newHttpClient();
            for (String body : List.of(
                    "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":8}",
                    "{\"model\":\"stories260K\",\"prompt\":\"One day\",\"max_tokens\":4,\"n\":2,\"temperature\":1}",
                    // Twice the same long prompt: the second adopts the first's full KV blocks.
                    "{\"model\":\"stories260K\",\"prompt\":\"" + SHARED + "\",\"max_tokens\":2}",
                    "{\"model\":\"stories260K\",\"prompt\":\"" + SHARED + "\",\"max_tokens\":2}")) {
                assertEquals(200, send(http, server, "/v1/completions", body).statusCode());
            }
            assertEquals(200, send(http, server, "/v1/chat/completions",
                    "{\"model\":\"stories260K\",\"stream\":true,\"max_tokens\":6,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}").statusCode());
            assertEquals(400, send(http, server, "/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"x\",\"temperature\":5}").statusCode());

            HttpResponse<String> metrics = http.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
            assertEquals(200, metrics.statusCode());
            assertTrue(metrics.headers().firstValue("content-type").orElse("").startsWith("text/plain"), metrics.headers().toString());
            String text = metrics.body();
            for (String name : List.of("tessera_num_requests_running", "tessera_num_requests_waiting", "tessera_prompt_tokens_total",
                    "tessera_generation_tokens_total", "tessera_time_to_first_token_seconds_bucket", "tessera_e2e_request_latency_seconds_count",
                    "tessera_requests_total", "tessera_kv_cache_usage_perc", "tessera_kv_cache_blocks", "tessera_prefix_cache_queries_total",
                    "tessera_prefix_cache_hits_total", "tessera_num_preemptions_total", "tessera_iteration_tokens_bucket")) {
                assertTrue(text.contains("\n" + name) || text.startsWith(name), "/metrics lacks " + name + ":\n" + text);
            }
            java.util.regex.Matcher hits = java.util.regex.Pattern.compile("\ntessera_prefix_cache_hits_total(?:\\{[^}]*\\})? (\\S+)").matcher(text);
            assertTrue(hits.find(), text);
            assertTrue(Double.parseDouble(hits.group(1)) >= 16, "the repeated prompt must hit the prefix cache: " + hits.group());

            assertLints(text);
        }
    }

    /** Fails unless {@code promtool check metrics} accepts the exposition {@code text}. */
    public static void assertLints(String text) throws IOException, InterruptedException {
        String promtool = findPromtool();
        Path file = Files.createTempFile("tessera-metrics-", ".prom");
        try {
            Files.writeString(file, text, StandardCharsets.UTF_8);
            Process p = new ProcessBuilder(promtool, "check", "metrics").redirectInput(file.toFile()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "promtool did not finish");
            if (p.exitValue() != 0) fail("promtool check metrics failed (exit " + p.exitValue() + "):\n" + out + "\n---- /metrics ----\n" + text);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private static HttpResponse<String> send(HttpClient http, ServeProcess server, String path, String json) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + path)).timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build(),
                HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    }

    private static String findPromtool() {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin").split(java.io.File.pathSeparator)) {
            Path p = Path.of(dir, "promtool");
            if (Files.isExecutable(p)) return p.toString();
        }
        fail("promtool not found on PATH: install Debian's prometheus package (apt-get install -y prometheus), as .ci/run does");
        return null;
    }
}
