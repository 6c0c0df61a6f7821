package dev.tessera.serving.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.scheduler.engine.EngineRequest;
import dev.tessera.scheduler.engine.RequestHandle;
import dev.tessera.scheduler.engine.TokenEvent;
import dev.tessera.serving.ServingConfig;
import dev.tessera.serving.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** Every client mistake gets its 4xx and the OpenAI error body; the server keeps serving. */
class ErrorResponsesTest {
    static TestServer server;

    @BeforeAll
    static void start() {
        server = TestServer.loaded(new ServingConfig(TestServer.MODEL_NAME, null, 1000), 64);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static JsonNode error(HttpResponse<String> res, int status) throws Exception {
        assertEquals(status, res.statusCode(), res.body());
        assertTrue(res.headers().firstValue("content-type").orElse("").startsWith("application/json"), res.headers().toString());
        JsonNode e = TestServer.json(res).get("error");
        assertNotNull(e, res.body());
        assertTrue(e.get("message").isTextual() && !e.get("message").asText().isEmpty());
        assertTrue(e.get("type").isTextual());
        assertTrue(e.has("param") && e.has("code"));
        return e;
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"model\":\"stories260K\",\"prompt\":\"x\"                           | ",
            "[1,2]                                                                 | ",
            "{\"prompt\":\"x\"}                                                    | model",
            "{\"model\":\"stories260K\"}                                           | prompt",
            "{\"model\":\"stories260K\",\"prompt\":3}                              | prompt",
            "{\"model\":\"stories260K\",\"prompt\":[]}                             | prompt",
            "{\"model\":\"stories260K\",\"prompt\":[1,\"a\"]}                      | prompt",
            "{\"model\":\"stories260K\",\"prompt\":[1,99999]}                      | prompt",
            "{\"model\":\"stories260K\",\"prompt\":[-1]}                           | prompt",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"temperature\":2.5}      | temperature",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"temperature\":\"hot\"}   | temperature",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"top_p\":1.5}            | top_p",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"n\":17}                 | n",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"n\":0}                  | n",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":0}         | max_tokens",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":1.5}       | max_tokens",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":5000}      | max_tokens",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"logprobs\":6}           | logprobs",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]} | stop",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"stop\":5}               | stop",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"logit_bias\":{\"1\":200}} | logit_bias",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"logit_bias\":{\"99999\":1}} | logit_bias",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"presence_penalty\":3}   | presence_penalty",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"stream\":\"yes\"}       | stream",
            "{\"model\":\"stories260K\",\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}} | stream_options",
    })
    void badCompletionRequestsAre400(String json, String param) throws Exception {
        JsonNode e = error(server.post("/v1/completions", json), 400);
        assertEquals("invalid_request_error", e.get("type").asText());
        if (param != null) assertEquals(param, e.get("param").asText(), e.toString());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"model\":\"stories260K\"}                                                           | messages",
            "{\"model\":\"stories260K\",\"messages\":[]}                                           | messages",
            "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}      | messages[0].role",
            "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]} | messages[0].content",
            "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]} | tools",
            "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"auto\"} | tool_choice",
            "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"functions\":[]} | functions",
            "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}} | response_format",
            "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":21,\"logprobs\":true} | top_logprobs",
            "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2} | top_logprobs",
            "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":9999} | max_tokens",
    })
    void badChatRequestsAre400(String json, String param) throws Exception {
        JsonNode e = error(server.post("/v1/chat/completions", json), 400);
        assertEquals(param, e.get("param").asText(), e.toString());
    }

    @Test
    void unsupportedFeaturesSaySo() throws Exception {
        JsonNode e = error(server.post("/v1/chat/completions",
                "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[]}"), 400);
        assertTrue(e.get("message").asText().contains("not supported"), e.toString());
    }

    @Test
    void unknownFieldsAreIgnored() throws Exception {
        HttpResponse<String> res = server.post("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":2,\"whatever\":{\"a\":[1]},\"user\":\"u1\"}");
        assertEquals(200, res.statusCode(), res.body());
    }

    @Test
    void unknownModelIs404() throws Exception {
        JsonNode e = error(server.post("/v1/completions", "{\"model\":\"gpt-4\",\"prompt\":\"x\"}"), 404);
        assertEquals("model_not_found", e.get("code").asText());
        error(server.post("/v1/chat/completions", "{\"model\":\"gpt-4\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), 404);
        error(server.get("/v1/models/gpt-4"), 404);
        assertEquals(200, server.get("/v1/models/stories260K").statusCode());
    }

    @Test
    void unknownRouteIs404AndWrongMethodIs405() throws Exception {
        error(server.get("/v1/nothing-here"), 404);
        error(server.get("/v1/completions"), 405);
        error(server.post("/v1/models", "{}"), 405);
        error(server.client.send(HttpRequest.newBuilder(server.uri("/v1/chat/completions")).DELETE().build(),
                HttpResponse.BodyHandlers.ofString()), 405);
    }

    @Test
    void oversizedBodyIs413() throws Exception {
        String big = "{\"model\":\"stories260K\",\"prompt\":\"" + "a".repeat(2000) + "\"}";
        error(server.post("/v1/completions", big), 413);
        assertEquals(200, server.get("/health").statusCode());
    }

    @Test
    void nonJsonContentTypeIs415() throws Exception {
        HttpResponse<String> res = server.client.send(HttpRequest.newBuilder(server.uri("/v1/completions"))
                .header("Content-Type", "text/plain").POST(HttpRequest.BodyPublishers.ofString("{}")).build(),
                HttpResponse.BodyHandlers.ofString());
        error(res, 415);
    }

    @Test
    void malformedJsonIs400() throws Exception {
        JsonNode e = error(server.post("/v1/completions", "{\"model\": \"stories260K\", \"prompt\": "), 400);
        assertTrue(e.get("message").asText().startsWith("malformed JSON"), e.toString());
        error(server.post("/v1/completions", ""), 400);
        error(server.post("/v1/completions", "{} {}"), 400);
    }

    @Test
    void fullQueueIs429WithRetryAfter() throws Exception {
        // One sequence at a time and one waiting slot, so two requests fill the engine.
        try (TestServer small = TestServer.loaded(new ServingConfig(TestServer.MODEL_NAME, null, 1 << 20), 1, 1)) {
            var engine = small.context.requireModel().engine();
            int[] prompt = small.context.requireModel().tokenizer().encode("Once", true, false);
            // One request running, one waiting: the engine is full.
            RequestHandle running = engine.submit(new EngineRequest("r", prompt, SamplingParams.greedy(), 2000, t -> false, false));
            assertInstanceOf(TokenEvent.Token.class, running.poll(30, TimeUnit.SECONDS));
            RequestHandle waiting = engine.submit(new EngineRequest("w", prompt, SamplingParams.greedy(), 2000, t -> false, false));
            HttpResponse<String> res = small.post("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":2}");
            JsonNode e = error(res, 429);
            assertEquals("1", res.headers().firstValue("retry-after").orElse(null));
            assertEquals("rate_limit_error", e.get("type").asText());
            running.cancel();
            waiting.cancel();
            assertEquals(200, small.post("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":2}").statusCode());
        }
    }

    @Test
    void apiKeyIsRequiredWhenSet() throws Exception {
        try (TestServer keyed = TestServer.loaded(new ServingConfig(TestServer.MODEL_NAME, "sekrit", 1 << 20), 4)) {
            String json = "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":2}";
            error(keyed.post("/v1/completions", json), 401);
            HttpResponse<String> wrong = keyed.client.send(HttpRequest.newBuilder(keyed.uri("/v1/completions"))
                    .header("Content-Type", "application/json").header("Authorization", "Bearer sekriT")
                    .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals("authentication_error", error(wrong, 401).get("type").asText());
            HttpResponse<String> right = keyed.client.send(HttpRequest.newBuilder(keyed.uri("/v1/completions"))
                    .header("Content-Type", "application/json").header("Authorization", "Bearer sekrit")
                    .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, right.statusCode(), right.body());
            error(keyed.get("/v1/models"), 401);
            assertEquals(200, keyed.get("/health").statusCode(), "health stays open");
            assertEquals(200, keyed.get("/metrics").statusCode(), "metrics stay open");
        }
    }

    @Test
    void notReadyIs503UntilLoaded() throws Exception {
        try (TestServer loading = TestServer.unloaded(new ServingConfig(TestServer.MODEL_NAME, null, 1 << 20))) {
            assertEquals(200, loading.get("/health").statusCode());
            error(loading.get("/ready"), 503);
            error(loading.post("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"x\"}"), 503);
            error(loading.get("/v1/models"), 503);
            loading.load(4);
            assertEquals(200, loading.get("/ready").statusCode());
            assertEquals(200, loading.post("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":2}").statusCode());
        }
    }
}
