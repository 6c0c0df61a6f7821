package dev.tessera.serving;

import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A server whose KV pool (--kv-cache-memory) is smaller than the model's context: a request that can never fit gets
 * a 400 naming the limit, and a burst of requests that only fit one after another all complete (preemption).
 */
class KvCacheLimitTest {
    // stories260K: 5 layers x 32 KV dims (4 KV heads of 8) x 16 positions x 2 (K, V) x 2 bytes (f16) = 10240 bytes per block.
    private static final String POOL = Integer.toString(6 * 10240);

    @Test
    void oversizedRequestIs400AndABurstBeyondThePoolStillCompletes() throws Exception {
        try (ServeProcess server = ServeProcess.start(null, "--kv-cache-memory", POOL, "--kv-cache-type", "f16", "--max-num-seqs", "8")) {
            HttpClient http = HttpClient.newHttpClient();
            HttpResponse<String> big = post(http, server, "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":200}");
            assertEquals(400, big.statusCode(), big.body());
            assertTrue(big.body().contains("--kv-cache-memory") && big.body().contains("96 tokens"), big.body());

            List<CompletableFuture<HttpResponse<String>>> burst = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                String body = "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time " + i + "\",\"max_tokens\":60,\"temperature\":0}";
                burst.add(http.sendAsync(request(server, body), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8)));
            }
            for (CompletableFuture<HttpResponse<String>> f : burst) {
                HttpResponse<String> r = f.get();
                assertEquals(200, r.statusCode(), r.body());
                assertTrue(r.body().contains("\"completion_tokens\":60"), r.body());
            }
            String metrics = http.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("\ntessera_num_preemptions_total(?:\\{[^}]*\\})? (\\S+)").matcher(metrics);
            assertTrue(m.find(), metrics);
            assertTrue(Double.parseDouble(m.group(1)) > 0, "8 x ~66 tokens in a 96-token pool must preempt: " + m.group());
            assertTrue(metrics.contains("\ntessera_kv_cache_blocks 6.0"), metrics);
        }
    }

    private static HttpRequest request(ServeProcess server, String json) {
        return HttpRequest.newBuilder(URI.create(server.baseUrl() + "/v1/completions")).timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build();
    }

    private static HttpResponse<String> post(HttpClient http, ServeProcess server, String json) throws Exception {
        return http.send(request(server, json), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    }
}
