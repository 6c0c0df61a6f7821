package dev.tessera.serving;

import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.scheduler.engine.EngineConfig;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Greedy output of a distributed setup against the same prompts served alone by a local engine: 16 requests over four
 * shared openings (so the prefix cache hits), each asking for a different number of tokens.
 */
public final class GreedyParity {
    static final List<String> OPENINGS = List.of("Once upon a time, there was a little girl named Lily. She loved to play outside",
            "One day, a big dog came to the park and saw a ball", "Tom and Sam were best friends who liked to",
            "The sun was shining and the birds were singing in the tall");

    private GreedyParity() {}

    public static String request(String model, int i, boolean stream, int maxTokens) {
        String opening = OPENINGS.get(i % 4);
        return "{\"model\":\"" + model + "\",\"prompt\":\"" + opening + (i >= 4 ? " and " + "then ".repeat(i / 4) : "")
                + "\",\"max_tokens\":" + maxTokens + ",\"temperature\":0" + (stream ? ",\"stream\":true" : "") + "}";
    }

    /** Each request's text served alone by a local engine. */
    public static List<String> alone(Path model, String name) throws Exception {
        List<String> texts = new ArrayList<>();
        try (TestServer local = TestServer.unloaded(new ServingConfig(name, null, ServingConfig.DEFAULT_MAX_BODY_BYTES))) {
            local.context.ready(ServedModel.load(model, name, new CpuBackend(1), EngineConfig.defaults(1, 64, 64)));
            for (int i = 0; i < 16; i++) {
                HttpResponse<String> r = local.post("/v1/completions", request(name, i, false, 12 + i));
                assertEquals(200, r.statusCode(), r.body());
                texts.add(TestServer.json(r).get("choices").get(0).get("text").asText());
            }
        }
        return texts;
    }

    /** The first {@code n} requests at once. */
    public static List<HttpResponse<String>> concurrently(TestServer server, String name, int n) {
        List<CompletableFuture<HttpResponse<String>>> futures = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            futures.add(server.client.sendAsync(HttpRequest.newBuilder(server.uri("/v1/completions")).header("Content-Type", "application/json")
                    .timeout(Duration.ofSeconds(120)).POST(HttpRequest.BodyPublishers.ofString(request(name, i, false, 12 + i))).build(),
                    HttpResponse.BodyHandlers.ofString()));
        }
        return futures.stream().map(CompletableFuture::join).toList();
    }

    public static void assertSameTexts(List<String> alone, List<HttpResponse<String>> got, String what) throws Exception {
        for (int i = 0; i < got.size(); i++) {
            assertEquals(200, got.get(i).statusCode(), got.get(i).body());
            assertEquals(alone.get(i), TestServer.json(got.get(i)).get("choices").get(0).get("text").asText(), what + ", request " + i);
        }
    }
}
