package dev.tessera.serving.http;

import dev.tessera.serving.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/** A client that goes away mid-stream cancels its request: the engine stops within a step and serves the next. */
class StreamDisconnectTest {
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
    void disconnectStopsGeneration() throws Exception {
        // 2000 tokens take many seconds on stories260K; the client reads five events and hangs up.
        HttpResponse<InputStream> res = server.client.send(HttpRequest.newBuilder(server.uri("/v1/completions"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\","
                        + "\"max_tokens\":2000,\"temperature\":0.9,\"seed\":1,\"stream\":true,\"stop\":[\"zzzz\"]}")).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, res.statusCode());
        double tokensBefore = server.metric("tessera_generation_tokens_total");
        BufferedReader r = new BufferedReader(new InputStreamReader(res.body(), StandardCharsets.UTF_8));
        int numEvents = 0;
        for (String line; numEvents < 5 && (line = r.readLine()) != null; ) {
            if (line.startsWith("data: ")) numEvents++;
        }
        assertEquals(1, server.metric("tessera_num_requests_running"), "still generating while the client reads");
        r.close();

        long deadline = System.nanoTime() + 5_000_000_000L;
        while (server.metric("tessera_num_requests_running") != 0) {
            assertTrue(System.nanoTime() < deadline, "generation did not stop after the disconnect");
            Thread.sleep(20);
        }
        // The aborted request's tokens are counted when it ends: far fewer than 2000.
        double generated = server.metric("tessera_generation_tokens_total") - tokensBefore;
        assertTrue(generated < 1000, "generated " + generated + " tokens after the disconnect");

        HttpResponse<String> next = server.post("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":16,\"temperature\":0}");
        assertEquals(200, next.statusCode(), next.body());
        assertTrue(next.body().contains("there was a little girl named Lily"), next.body());
    }
}
