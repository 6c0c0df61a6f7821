package dev.tessera.serving.edge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.serving.ServeProcess;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * SIGTERM with 8 streams in flight: /ready turns 503 while draining, every stream ends with {@code [DONE]} (finished,
 * or cut off by the grace period with an error event first), the log tells which, and the process exits 0 within the
 * grace period.
 */
class GracefulShutdownTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int GRACE_SECONDS = 3;

    @Test
    void sigtermDrainsStreamsAndExitsZero() throws Exception {
        ServeProcess server = ServeProcess.start(null, "--shutdown-grace", Integer.toString(GRACE_SECONDS), "--max-num-seqs", "8");
        try {
            // Warm up first (a fresh server's first steps run before the JIT): the short streams must finish in time.
            for (int i = 0; i < 3; i++) {
                EdgeRequestsTest.assertServes(server.port());
                try (RawConnection c = new RawConnection(server.port())) {
                    assertEquals(200, c.exchange(EdgeRequestsTest.post("/v1/chat/completions",
                            "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}")).status());
                }
            }
            List<RawConnection> streams = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                RawConnection c = new RawConnection(server.port());
                // Two short answers that finish within the grace period, six long ones (no end-of-text) that cannot.
                int maxTokens = i < 2 ? 4 : 2000;
                c.send(EdgeRequestsTest.post(i % 2 == 0 ? "/v1/completions" : "/v1/chat/completions", i % 2 == 0
                        ? "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":" + maxTokens + ",\"stream\":true,\"logit_bias\":{\"2\":-100}}"
                        : "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell a story\"}],\"max_tokens\":" + maxTokens + ",\"stream\":true,\"logit_bias\":{\"2\":-100}}"));
                streams.add(c);
            }
            List<CompletableFuture<RawConnection.Response>> answers = new ArrayList<>();
            for (RawConnection c : streams) {
                answers.add(CompletableFuture.supplyAsync(() -> {
                    try {
                        return c.read();
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                }));
            }
            RawConnection probe = new RawConnection(server.port());
            assertEquals(200, probe.exchange("GET /ready HTTP/1.1\r\nHost: t\r\n\r\n").status());
            Thread.sleep(300);

            long t0 = System.nanoTime();
            new ProcessBuilder("kill", "-TERM", Long.toString(server.pid())).start().waitFor();
            // The signal reaches the JVM's handler thread within moments; /ready turns 503 then.
            RawConnection.Response ready;
            long readyDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
            do {
                Thread.sleep(50);
                try (RawConnection c = new RawConnection(server.port())) {
                    ready = c.exchange("GET /ready HTTP/1.1\r\nHost: t\r\n\r\n");
                }
            } while (ready.status() == 200 && System.nanoTime() < readyDeadline);
            assertEquals(503, ready.status(), ready.text());
            assertEquals("close", ready.header("Connection"), "a draining server closes each connection after its answer");
            RawConnection late = new RawConnection(server.port());
            assertEquals(503, late.exchange(EdgeRequestsTest.post("/v1/completions",
                    "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":2}")).status());

            int finished = 0;
            int cut = 0;
            for (CompletableFuture<RawConnection.Response> f : answers) {
                RawConnection.Response r = f.get(GRACE_SECONDS + 15, TimeUnit.SECONDS);
                assertEquals(200, r.status());
                String text = r.text().trim();
                assertTrue(text.endsWith("data: [DONE]"), "stream without [DONE]: ..." + text.substring(Math.max(0, text.length() - 300)));
                List<String> events = new ArrayList<>();
                for (String e : text.split("\n\n")) events.add(e.substring("data: ".length()));
                JsonNode last = JSON.readTree(events.get(events.size() - 2));
                if (last.has("error")) {
                    assertEquals("server_shutting_down", last.get("error").get("code").asText());
                    cut++;
                } else {
                    finished++;
                }
            }
            int code = server.waitForExit(TimeUnit.SECONDS.toMillis(GRACE_SECONDS + 10));
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertEquals(0, code, server.log());
            System.out.printf("GracefulShutdownTest: exit 0 %.2f s after SIGTERM (grace %d s), %d streams finished, %d cut off%n",
                    seconds, GRACE_SECONDS, finished, cut);
            // The grace period, plus the JVM's own exit and this test's polling on a loaded machine.
            assertTrue(seconds < GRACE_SECONDS + 2, "exit took " + seconds + " s");
            assertEquals(8, finished + cut);
            assertTrue(cut > 0, "no stream was cut off; make the answers longer:\n" + server.log());
            assertTrue(finished > 0, "no stream finished:\n" + server.log());
            String log = server.log();
            assertTrue(log.contains("ended by shutdown with an error event"), log);
            assertTrue(log.contains("grace period over: ending"), log);
            assertTrue(!log.contains("\tat "), log);
        } finally {
            server.close();
        }
    }
}
