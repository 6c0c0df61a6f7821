package dev.tessera.serving.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.serving.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ChatCompletionsServiceTest {
    static TestServer server;

    @BeforeAll
    static void start() {
        server = TestServer.loaded();
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static final String MESSAGES = "\"messages\":[{\"role\":\"system\",\"content\":\"Tell a story.\"},"
            + "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Once upon\"},{\"type\":\"text\",\"text\":\"a time\"}]}]";

    @Test
    void chatCompletionHasOpenAiShape() throws Exception {
        HttpResponse<String> res = server.post("/v1/chat/completions",
                "{\"model\":\"stories260K\"," + MESSAGES + ",\"max_tokens\":8,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":2}");
        assertEquals(200, res.statusCode(), res.body());
        JsonNode j = TestServer.json(res);
        assertTrue(j.get("id").asText().startsWith("chatcmpl-"));
        assertEquals("chat.completion", j.get("object").asText());
        JsonNode c = j.get("choices").get(0);
        assertEquals("assistant", c.get("message").get("role").asText());
        assertEquals("length", c.get("finish_reason").asText());
        JsonNode content = c.get("logprobs").get("content");
        assertEquals(8, content.size());
        StringBuilder joined = new StringBuilder();
        for (JsonNode t : content) {
            assertTrue(t.get("logprob").asDouble() <= 0);
            assertTrue(t.get("bytes").isArray());
            assertEquals(2, t.get("top_logprobs").size());
            assertEquals(t.get("token").asText(), t.get("top_logprobs").get(0).get("token").asText(), "greedy picks the top token");
            joined.append(t.get("token").asText());
        }
        assertEquals(c.get("message").get("content").asText(), joined.toString());
        assertEquals(8, j.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void streamedChatMatchesWholeAnswer() throws Exception {
        String req = "{\"model\":\"stories260K\"," + MESSAGES + ",\"max_completion_tokens\":12,\"temperature\":0";
        String whole = TestServer.json(server.post("/v1/chat/completions", req + "}"))
                .get("choices").get(0).get("message").get("content").asText();
        HttpResponse<String> res = server.post("/v1/chat/completions", req + ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
        List<String> events = CompletionsServiceTest.events(res.body());
        assertEquals("[DONE]", events.getLast());
        JsonNode first = Json.MAPPER.readTree(events.getFirst());
        assertEquals("chat.completion.chunk", first.get("object").asText());
        assertEquals("assistant", first.get("choices").get(0).get("delta").get("role").asText());
        StringBuilder streamed = new StringBuilder();
        String finish = null;
        for (String e : events.subList(1, events.size() - 2)) {
            JsonNode ch = Json.MAPPER.readTree(e).get("choices").get(0);
            assertFalse(ch.get("delta").has("role"));
            if (ch.get("delta").has("content")) streamed.append(ch.get("delta").get("content").asText());
            if (!ch.get("finish_reason").isNull()) finish = ch.get("finish_reason").asText();
        }
        assertEquals(whole, streamed.toString());
        assertEquals("length", finish);
        JsonNode usage = Json.MAPPER.readTree(events.get(events.size() - 2));
        assertEquals(0, usage.get("choices").size());
        assertEquals(12, usage.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void nChoicesAndStop() throws Exception {
        JsonNode j = TestServer.json(server.post("/v1/chat/completions",
                "{\"model\":\"stories260K\"," + MESSAGES + ",\"max_tokens\":30,\"temperature\":0.8,\"seed\":3,\"n\":3,\"stop\":[\" \"]}"));
        assertEquals(3, j.get("choices").size());
        for (JsonNode c : j.get("choices")) {
            assertFalse(c.get("message").get("content").asText().contains(" "), c.toString());
        }
    }
}
