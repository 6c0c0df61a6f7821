package dev.tessera.serving.http;

import dev.tessera.serving.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class HealthServiceTest {
    static TestServer server;

    @BeforeAll
    static void start() {
        server = TestServer.loaded();
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    @Test
    void healthAndReadyAre200() throws Exception {
        assertEquals(200, server.get("/health").statusCode());
        assertEquals(200, server.get("/ready").statusCode());
    }

    @Test
    void metricsCountRequestsAndTokens() throws Exception {
        double tokensBefore = server.metric("tessera_generation_tokens_total");
        assertEquals(200, server.post("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":7,\"temperature\":0}").statusCode());
        HttpResponse<String> res = server.get("/metrics");
        assertEquals(200, res.statusCode());
        assertEquals("text/plain; version=0.0.4; charset=utf-8", res.headers().firstValue("content-type").orElse(null));
        String text = res.body();
        for (String name : new String[]{
                "tessera_request_success_total{finished_reason=\"length\"}",
                "tessera_requests_total{status=\"200\"}",
                "tessera_prompt_tokens_total",
                "tessera_generation_tokens_total",
                "tessera_time_to_first_token_seconds_bucket",
                "tessera_time_per_output_token_seconds_bucket",
                "tessera_e2e_request_latency_seconds_bucket",
                "tessera_request_queue_time_seconds_bucket",
                "tessera_num_requests_running",
                "tessera_num_requests_waiting",
                "jvm_memory_used_bytes",
                "jvm_gc_",
                "jvm_threads_live_threads",
                "process_cpu_usage",
                "process_uptime_seconds"}) {
            assertTrue(text.contains(name), name + " missing from /metrics");
        }
        assertEquals(tokensBefore + 7, server.metric("tessera_generation_tokens_total"));
        assertEquals(0, server.metric("tessera_num_requests_running"));
        // One HELP and one TYPE per metric family, as promtool requires.
        Set<String> seen = new HashSet<>();
        for (String line : text.split("\n")) {
            if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) {
                String key = line.substring(0, 7) + line.substring(7).split(" ")[0];
                assertTrue(seen.add(key), "duplicate " + key);
            }
        }
    }
}
