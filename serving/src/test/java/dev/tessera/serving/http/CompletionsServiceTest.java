package dev.tessera.serving.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.serving.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class CompletionsServiceTest {
    static TestServer server;

    @BeforeAll
    static void start() {
        server = TestServer.loaded();
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static String body(String extra) {
        return "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":16,\"temperature\":0" + extra + "}";
    }

    /** The data lines of an SSE response, without the "data: " prefix. */
    static List<String> events(String sse) {
        List<String> out = new ArrayList<>();
        for (String block : sse.split("\n\n")) {
            if (block.isBlank()) continue;
            assertTrue(block.startsWith("data: "), "event block: " + block);
            out.add(block.substring(6));
        }
        return out;
    }

    static HttpResponse<String> stream(String json) throws Exception {
        return server.client.send(HttpRequest.newBuilder(server.uri("/v1/completions")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void greedyCompletionTellsOfLilyAndStreamsTheSameText() throws Exception {
        HttpResponse<String> res = server.post("/v1/completions", body(""));
        assertEquals(200, res.statusCode(), res.body());
        assertTrue(res.headers().firstValue("content-type").orElse("").startsWith("application/json"));
        JsonNode j = TestServer.json(res);
        assertTrue(j.get("id").asText().startsWith("cmpl-"));
        assertEquals("text_completion", j.get("object").asText());
        assertEquals("stories260K", j.get("model").asText());
        assertTrue(j.get("created").asLong() > 1_600_000_000L);
        JsonNode choice = j.get("choices").get(0);
        String text = choice.get("text").asText();
        assertTrue(text.contains("there was a little girl named Lily"), text);
        assertEquals("length", choice.get("finish_reason").asText());
        assertTrue(choice.has("logprobs") && choice.get("logprobs").isNull());
        assertEquals(16, j.get("usage").get("completion_tokens").asInt());
        int prompt = j.get("usage").get("prompt_tokens").asInt();
        assertTrue(prompt > 1, "prompt tokens include BOS and the text");
        assertEquals(prompt + 16, j.get("usage").get("total_tokens").asInt());

        HttpResponse<String> s = stream(body(",\"stream\":true,\"stream_options\":{\"include_usage\":true}"));
        assertEquals(200, s.statusCode());
        assertTrue(s.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"));
        List<String> events = events(s.body());
        assertEquals("[DONE]", events.getLast());
        StringBuilder streamed = new StringBuilder();
        String finish = null;
        for (String e : events.subList(0, events.size() - 2)) {
            JsonNode c = Json.MAPPER.readTree(e);
            assertEquals("text_completion", c.get("object").asText());
            JsonNode ch = c.get("choices").get(0);
            streamed.append(ch.get("text").asText());
            if (!ch.get("finish_reason").isNull()) finish = ch.get("finish_reason").asText();
        }
        assertEquals(text, streamed.toString());
        assertEquals("length", finish);
        JsonNode usage = Json.MAPPER.readTree(events.get(events.size() - 2));
        assertEquals(0, usage.get("choices").size());
        assertEquals(16, usage.get("usage").get("completion_tokens").asInt());
        assertEquals(prompt, usage.get("usage").get("prompt_tokens").asInt());
    }

    @Test
    void twoChoicesWithSeedsAreReproducible() throws Exception {
        String req = "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":12,\"temperature\":1,\"n\":2,\"seed\":7}";
        JsonNode a = TestServer.json(server.post("/v1/completions", req));
        JsonNode b = TestServer.json(server.post("/v1/completions", req));
        assertEquals(2, a.get("choices").size());
        assertEquals(0, a.get("choices").get(0).get("index").asInt());
        assertEquals(1, a.get("choices").get(1).get("index").asInt());
        assertEquals(a.get("choices"), b.get("choices"), "same seed, same choices");
        assertEquals(24, a.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void stopStringCutsTheTextBeforeIt() throws Exception {
        JsonNode j = TestServer.json(server.post("/v1/completions", body(",\"stop\":[\"girl\",\"xyz\"]")));
        JsonNode c = j.get("choices").get(0);
        assertEquals(", there was a little ", c.get("text").asText());
        assertEquals("stop", c.get("finish_reason").asText());
        assertTrue(j.get("usage").get("completion_tokens").asInt() < 16);

        // Streamed: the held-back " li" of "little" must not leak before the stop string "little girl".
        HttpResponse<String> s = stream(body(",\"stop\":\" little girl\",\"stream\":true"));
        StringBuilder streamed = new StringBuilder();
        String finish = null;
        for (String e : events(s.body())) {
            if (e.equals("[DONE]")) continue;
            JsonNode ch = Json.MAPPER.readTree(e).get("choices").get(0);
            streamed.append(ch.get("text").asText());
            if (!ch.get("finish_reason").isNull()) finish = ch.get("finish_reason").asText();
        }
        assertEquals(", there was a", streamed.toString());
        assertEquals("stop", finish);
    }

    @Test
    void legacyLogprobsHaveOneEntryPerToken() throws Exception {
        JsonNode j = TestServer.json(server.post("/v1/completions", body(",\"max_tokens\":5,\"logprobs\":3")));
        JsonNode c = j.get("choices").get(0);
        JsonNode lp = c.get("logprobs");
        assertEquals(5, lp.get("tokens").size());
        assertEquals(5, lp.get("token_logprobs").size());
        assertEquals(5, lp.get("top_logprobs").size());
        assertEquals(5, lp.get("text_offset").size());
        StringBuilder joined = new StringBuilder();
        for (int i = 0; i < 5; i++) {
            String token = lp.get("tokens").get(i).asText();
            assertEquals(joined.length(), lp.get("text_offset").get(i).asInt());
            joined.append(token);
            double logprob = lp.get("token_logprobs").get(i).asDouble();
            assertTrue(logprob <= 0, "log-probability " + logprob);
            JsonNode top = lp.get("top_logprobs").get(i);
            assertEquals(3, top.size());
            // Greedy: the chosen token is the most likely one.
            assertEquals(logprob, top.get(token).asDouble(), 1e-6);
        }
        assertEquals(c.get("text").asText(), joined.toString());
    }

    @Test
    void tokenPromptsAndPromptListsGiveOneChoicePerPrompt() throws Exception {
        JsonNode text = TestServer.json(server.post("/v1/completions", body(",\"max_tokens\":6")));
        // Token prompts are used as given (BOS included here), so they match the text prompt's tokens.
        int[] ids = server.context.requireModel().tokenizer().encode("Once upon a time", true, false);
        String list = java.util.Arrays.toString(ids).replace(" ", "");
        JsonNode tokenized = TestServer.json(server.post("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":[" + list + "," + list + "],\"max_tokens\":6,\"temperature\":0}"));
        assertEquals(2, tokenized.get("choices").size());
        assertEquals(2 * ids.length, tokenized.get("usage").get("prompt_tokens").asInt(), "two prompts");
        assertEquals(text.get("choices").get(0).get("text"), tokenized.get("choices").get(1).get("text"));
        JsonNode flat = TestServer.json(server.post("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":" + list + ",\"max_tokens\":6,\"temperature\":0}"));
        assertEquals(1, flat.get("choices").size());
        JsonNode strings = TestServer.json(server.post("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":[\"Once upon a time\",\"Once upon a time\"],\"max_tokens\":6,\"temperature\":0}"));
        assertEquals(2, strings.get("choices").size());
        assertEquals(text.get("choices").get(0).get("text"), strings.get("choices").get(1).get("text"));
    }

    @Test
    void echoPrependsThePrompt() throws Exception {
        JsonNode j = TestServer.json(server.post("/v1/completions", body(",\"max_tokens\":4,\"echo\":true")));
        assertTrue(j.get("choices").get(0).get("text").asText().startsWith("Once upon a time, there"), j.toString());
    }

    @Test
    void echoWithLogprobsScoresThePromptTokensAsTheGeneratedOnes() throws Exception {
        // The model's log-probability of ", there" read off the prompt must be what it gave them when it generated them.
        JsonNode gen = TestServer.json(server.post("/v1/completions", body(",\"max_tokens\":2,\"logprobs\":1")));
        JsonNode j = TestServer.json(server.post("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time, there\",\"max_tokens\":1,\"temperature\":0,\"echo\":true,\"logprobs\":2}"));
        JsonNode c = j.get("choices").get(0), lp = c.get("logprobs");
        assertTrue(c.get("text").asText().startsWith("Once upon a time, there"), c.toString());
        List<String> tokens = new ArrayList<>();
        lp.get("tokens").forEach(t -> tokens.add(t.asText()));
        assertEquals(List.of("<s>", " Once", " upon", " a", " time", ",", " there"), tokens.subList(0, 7), tokens.toString());
        assertEquals(8, tokens.size(), "seven prompt tokens, one generated");
        assertTrue(lp.get("token_logprobs").get(0).isNull() && lp.get("top_logprobs").get(0).isNull(), lp.toString());
        for (int i = 0; i < 2; i++) {
            double prompt = lp.get("token_logprobs").get(5 + i).asDouble(), generated = gen.get("choices").get(0).get("logprobs").get("token_logprobs").get(i).asDouble();
            assertEquals(generated, prompt, 1e-4, "token " + tokens.get(5 + i));
        }
        for (int i = 1; i < tokens.size(); i++) {
            JsonNode top = lp.get("top_logprobs").get(i);
            assertEquals(2, top.size(), top.toString());
            assertTrue(lp.get("token_logprobs").get(i).asDouble() <= 0);
        }
        // Offsets index the echoed text: " upon" starts at 4 of "Once upon a time, there".
        assertEquals(List.of(0, 0, 4, 9, 11, 16, 17, 23), toInts(lp.get("text_offset")));
        // Streamed: the echo chunk carries the prompt's logprobs, the same as the whole answer's.
        HttpResponse<String> streamed = stream("{\"model\":\"stories260K\",\"prompt\":\"Once upon a time, there\",\"max_tokens\":1,"
                + "\"temperature\":0,\"echo\":true,\"logprobs\":2,\"stream\":true}");
        assertEquals(200, streamed.statusCode(), streamed.body());
        JsonNode echoChunk = Json.MAPPER.readTree(events(streamed.body()).get(0)).get("choices").get(0);
        assertEquals("Once upon a time, there", echoChunk.get("text").asText());
        JsonNode streamedLp = echoChunk.get("logprobs");
        assertEquals(7, streamedLp.get("tokens").size(), streamedLp.toString());
        for (int i = 0; i < 7; i++) assertEquals(lp.get("token_logprobs").get(i), streamedLp.get("token_logprobs").get(i), "token " + i);
    }

    @Test
    void maxTokensZeroWithEchoReturnsThePromptAndItsLogprobsAlone() throws Exception {
        JsonNode j = TestServer.json(server.post("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":0,\"echo\":true,\"logprobs\":1}"));
        JsonNode c = j.get("choices").get(0);
        assertEquals("Once upon a time", c.get("text").asText());
        assertEquals("length", c.get("finish_reason").asText());
        assertEquals(5, c.get("logprobs").get("tokens").size(), c.toString());
        assertTrue(c.get("logprobs").get("token_logprobs").get(0).isNull());
        // The same scores as when the prompt is followed by a generated token.
        JsonNode one = TestServer.json(server.post("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":1,\"echo\":true,\"logprobs\":1}"));
        for (int i = 1; i < 5; i++)
            assertEquals(one.get("choices").get(0).get("logprobs").get("token_logprobs").get(i).asDouble(),
                    c.get("logprobs").get("token_logprobs").get(i).asDouble(), 1e-5, "token " + i);
        assertEquals(0, j.get("usage").get("completion_tokens").asInt());
        assertEquals(5, j.get("usage").get("prompt_tokens").asInt());
        HttpResponse<String> noEcho = server.post("/v1/completions", body(",\"max_tokens\":0"));
        assertEquals(400, noEcho.statusCode());
        assertTrue(noEcho.body().contains("'max_tokens' must be between 1 and 2147483647, found 0"), noEcho.body());
    }

    static List<Integer> toInts(JsonNode array) {
        List<Integer> out = new ArrayList<>();
        array.forEach(v -> out.add(v.asInt()));
        return out;
    }

    @Test
    void chunksAreValidUtf8AndArriveOneByOne() throws Exception {
        // Read the stream as it arrives: the first chunk must come before the whole answer is generated.
        HttpResponse<java.io.InputStream> res = server.client.send(HttpRequest.newBuilder(server.uri("/v1/completions"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body(",\"max_tokens\":40,\"stream\":true"))).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        int numEvents = 0;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(res.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (!line.startsWith("data: ")) continue;
                numEvents++;
                if (line.equals("data: [DONE]")) break;
                assertFalse(line.contains("\uFFFD"), line);
            }
        }
        assertTrue(numEvents > 10, "one event per token or so, got " + numEvents);
    }
}
