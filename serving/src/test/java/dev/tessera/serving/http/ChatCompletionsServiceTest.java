package dev.tessera.serving.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.models.gguf.GgufValue;
import dev.tessera.models.gguf.GgufWriter;
import dev.tessera.serving.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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

    @Test
    void chatTemplateKwargsReachTheTemplate(@TempDir Path dir) throws Exception {
        // stories260K with Qwen3's template, which closes an empty think block when enable_thinking is false.
        Path model = withTemplate(dir, "Qwen-Qwen3-0.6B.jinja");
        try (TestServer qwen = TestServer.loaded(model)) {
            String base = "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":1";
            int plain = promptTokens(qwen.post("/v1/chat/completions", base + "}"));
            int thinking = promptTokens(qwen.post("/v1/chat/completions", base + ",\"chat_template_kwargs\":{\"enable_thinking\":true}}"));
            int notThinking = promptTokens(qwen.post("/v1/chat/completions", base + ",\"chat_template_kwargs\":{\"enable_thinking\":false}}"));
            assertEquals(plain, thinking);
            assertTrue(notThinking > plain + 4, "the empty think block adds tokens: " + notThinking + " against " + plain);

            HttpResponse<String> notObject = qwen.post("/v1/chat/completions", base + ",\"chat_template_kwargs\":[1]}");
            assertEquals(400, notObject.statusCode(), notObject.body());
            assertEquals("chat_template_kwargs", TestServer.json(notObject).get("error").get("param").asText());
            HttpResponse<String> reserved = qwen.post("/v1/chat/completions", base + ",\"chat_template_kwargs\":{\"messages\":[]}}");
            assertEquals(400, reserved.statusCode(), reserved.body());
            assertTrue(reserved.body().contains("chat_template_kwargs.messages"), reserved.body());
            HttpResponse<String> after = qwen.post("/v1/chat/completions", base + "}");
            assertEquals(200, after.statusCode(), after.body());
        }
    }

    @Test
    void reasoningFormatDeepseekPutsTheOpenThinkBlockInReasoningContent(@TempDir Path dir) throws Exception {
        // DeepSeek-R1's template ends the prompt inside <think>: stories260K never closes it, so all it says is reasoning.
        try (TestServer r1 = TestServer.loaded(withTemplate(dir, "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja"))) {
            String base = "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],"
                    + "\"max_tokens\":12,\"temperature\":0";
            JsonNode plain = TestServer.json(r1.post("/v1/chat/completions", base + "}")).get("choices").get(0).get("message");
            String text = plain.get("content").asText();
            assertFalse(text.isEmpty());
            assertFalse(plain.has("reasoning_content"), plain.toString());

            HttpResponse<String> res = r1.post("/v1/chat/completions", base + ",\"reasoning_format\":\"deepseek\"}");
            assertEquals(200, res.statusCode(), res.body());
            JsonNode split = TestServer.json(res).get("choices").get(0).get("message");
            assertEquals("", split.get("content").asText());
            assertEquals(text, split.get("reasoning_content").asText());

            HttpResponse<String> stream = r1.post("/v1/chat/completions", base + ",\"reasoning_format\":\"deepseek\",\"stream\":true}");
            assertEquals(200, stream.statusCode(), stream.body());
            StringBuilder thoughts = new StringBuilder(), content = new StringBuilder();
            for (String line : stream.body().split("\n")) {
                if (!line.startsWith("data: {")) continue;
                JsonNode choices = Json.MAPPER.readTree(line.substring(6)).get("choices");
                if (choices.isEmpty()) continue;
                JsonNode delta = choices.get(0).get("delta");
                if (delta.has("reasoning_content")) thoughts.append(delta.get("reasoning_content").asText());
                if (delta.has("content") && !delta.get("content").isNull()) content.append(delta.get("content").asText());
            }
            assertEquals(text, thoughts.toString());
            assertEquals("", content.toString());

            HttpResponse<String> bad = r1.post("/v1/chat/completions", base + ",\"reasoning_format\":\"r1\"}");
            assertEquals(400, bad.statusCode(), bad.body());
            assertEquals("reasoning_format", TestServer.json(bad).get("error").get("param").asText());
        }
    }

    /** A copy of stories260K whose tokenizer.chat_template is one of the shared real templates. */
    private static Path withTemplate(Path dir, String template) throws Exception {
        Path model = dir.resolve("stories-" + template.replace(".jinja", ".gguf"));
        Path templates = TestServer.modelPath().getParent().resolve("chat-templates");
        try (GgufFile src = GgufFile.open(TestServer.modelPath())) {
            Map<String, GgufValue> meta = new LinkedHashMap<>(src.metadata());
            meta.put("tokenizer.chat_template", GgufValue.ofString(Files.readString(templates.resolve(template))));
            GgufWriter w = new GgufWriter().version(src.version()).metadata(meta);
            for (GgufTensorInfo t : src.tensors().values()) w.tensor(t.name(), t.dims(), t.type());
            w.write(model, (info, dst) -> dst.copyFrom(src.data(src.tensor(info.name()))));
        }
        return model;
    }

    private static int promptTokens(HttpResponse<String> res) throws Exception {
        assertEquals(200, res.statusCode(), res.body());
        return TestServer.json(res).get("usage").get("prompt_tokens").asInt();
    }
}
