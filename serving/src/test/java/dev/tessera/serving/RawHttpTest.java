package dev.tessera.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The HTTP edges of {@code tessera serve} (a real process) that a client library smooths over: bad bodies,
 * content types, size limits, unknown fields, UTF-8 in JSON and SSE, and a client that hangs up mid-stream.
 */
class RawHttpTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String KEY = "sk-raw-http";
    private static final int MAX_BODY_BYTES = 64 * 1024;
    private static ServeProcess server;
    private static HttpClient http;

    @BeforeAll
    static void start() throws Exception {
        server = ServeProcess.start(KEY, "--max-body-bytes", Integer.toString(MAX_BODY_BYTES));
        http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    }

    @AfterAll
    static void stop() throws Exception {
        if (server != null) server.close();
    }

    private static HttpResponse<byte[]> post(String path, String contentType, byte[] body) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.baseUrl() + path))
                .timeout(Duration.ofSeconds(60))
                .header("Authorization", "Bearer " + KEY)
                .POST(HttpRequest.BodyPublishers.ofByteArray(body));
        if (contentType != null) b.header("Content-Type", contentType);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    private static HttpResponse<byte[]> postJson(String path, String json) throws IOException, InterruptedException {
        return post(path, "application/json", json.getBytes(StandardCharsets.UTF_8));
    }

    private static String get(String path) throws IOException, InterruptedException {
        HttpResponse<byte[]> r = http.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + path))
                .header("Authorization", "Bearer " + KEY).timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofByteArray());
        assertEquals(200, r.statusCode(), path + ": " + new String(r.body(), StandardCharsets.UTF_8));
        return strictUtf8(r.body());
    }

    /** Decodes UTF-8, failing on any malformed or truncated sequence (no silent U+FFFD from the decoder). */
    static String strictUtf8(byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new AssertionError("not valid UTF-8 (" + e + "): " + new String(bytes, StandardCharsets.ISO_8859_1), e);
        }
    }

    /** An OpenAI error body: {"error": {"message", "type", "param", "code"}}. */
    private static JsonNode assertErrorBody(HttpResponse<byte[]> r, int status, String type) throws IOException {
        String body = strictUtf8(r.body());
        assertEquals(status, r.statusCode(), body);
        assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("application/json"), r.headers().toString());
        JsonNode error = JSON.readTree(body).get("error");
        assertTrue(error != null && error.isObject(), body);
        assertTrue(error.get("message").isTextual() && !error.get("message").asText().isBlank(), body);
        assertEquals(type, error.get("type").asText(), body);
        assertTrue(error.has("param") && error.has("code"), "param and code are present (null allowed): " + body);
        assertFalse(error.get("message").asText().contains("\n"), "one-line message: " + body);
        return error;
    }

    @Test
    void malformedJsonIs400WithAnErrorBody() throws Exception {
        for (String path : List.of("/v1/completions", "/v1/chat/completions")) {
            JsonNode e = assertErrorBody(postJson(path, "{\"model\": \"stories260K\", \"prompt\": "), 400, "invalid_request_error");
            assertTrue(e.get("message").asText().toLowerCase().contains("json"), e.toString());
            assertErrorBody(postJson(path, "[1, 2]"), 400, "invalid_request_error");
            assertErrorBody(postJson(path, ""), 400, "invalid_request_error");
        }
    }

    @Test
    void wrongContentTypeIs415() throws Exception {
        byte[] body = "{\"model\":\"stories260K\",\"prompt\":\"Hi\",\"max_tokens\":2}".getBytes(StandardCharsets.UTF_8);
        assertErrorBody(post("/v1/completions", "text/plain", body), 415, "invalid_request_error");
        assertErrorBody(post("/v1/chat/completions", "application/x-www-form-urlencoded", body), 415, "invalid_request_error");
        // The same body as JSON is fine, with or without a charset parameter.
        assertEquals(200, post("/v1/completions", "application/json; charset=utf-8", body).statusCode());
    }

    @Test
    void oversizedBodyIs413() throws Exception {
        String padding = "a".repeat(MAX_BODY_BYTES + 1);
        String json = "{\"model\":\"stories260K\",\"max_tokens\":1,\"prompt\":\"" + padding + "\"}";
        HttpResponse<byte[]> r;
        try {
            r = postJson("/v1/completions", json);
        } catch (IOException e) {
            // A server may answer before reading the whole body and close; read the answer off a raw socket then.
            r = null;
            String raw = rawExchange("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY
                    + "\r\nContent-Type: application/json\r\nContent-Length: " + json.length() + "\r\nConnection: close\r\n\r\n" + json);
            assertTrue(raw.startsWith("HTTP/1.1 413"), raw);
        }
        if (r != null) assertErrorBody(r, 413, "invalid_request_error");
        // Just under the limit is accepted (it fails later only if the prompt is too long for the context).
        assertTrue(postJson("/v1/completions", "{\"model\":\"stories260K\",\"max_tokens\":1,\"prompt\":\"Hi\"}").statusCode() == 200);
    }

    @Test
    void unknownFieldsAreIgnored() throws Exception {
        HttpResponse<byte[]> r = postJson("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":2,\"no_such_field\":{\"x\":[1,2]},\"user\":\"u1\"}");
        assertEquals(200, r.statusCode(), strictUtf8(r.body()));
        assertEquals("text_completion", JSON.readTree(r.body()).get("object").asText());
        HttpResponse<byte[]> c = postJson("/v1/chat/completions",
                "{\"model\":\"stories260K\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\",\"name\":\"bob\"}],\"metadata\":{\"k\":\"v\"}}");
        assertEquals(200, c.statusCode(), strictUtf8(c.body()));
        assertEquals("chat.completion", JSON.readTree(c.body()).get("object").asText());
    }

    /**
     * Logit bias towards the byte tokens of "日本" (E6 97 A5 E6 9C AC; the stories260K vocabulary has byte
     * tokens {@code <0x00>}..{@code <0xFF>} at ids 3..258), so the model emits raw bytes in an order that need
     * not form UTF-8: whatever it emits, the response must be valid UTF-8.
     */
    private static final String CJK_BYTE_BIAS = "{\"233\":60,\"154\":60,\"168\":60,\"159\":60,\"175\":60}";

    @Test
    void emojiAndCjkPromptsGiveValidUtf8Json() throws Exception {
        String prompt = "Lily saw 日本語 and 🙂🐉 café";
        HttpResponse<byte[]> r = postJson("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":" + JSON.writeValueAsString(prompt)
                + ",\"max_tokens\":12,\"temperature\":0,\"logit_bias\":" + CJK_BYTE_BIAS + ",\"echo\":false}");
        String body = strictUtf8(r.body());
        assertEquals(200, r.statusCode(), body);
        JsonNode j = JSON.readTree(body);
        assertTrue(j.get("usage").get("prompt_tokens").asInt() > 10, body);
        HttpResponse<byte[]> chat = postJson("/v1/chat/completions", "{\"model\":\"stories260K\",\"max_tokens\":12,\"temperature\":0,"
                + "\"logit_bias\":" + CJK_BYTE_BIAS + ",\"messages\":[{\"role\":\"user\",\"content\":" + JSON.writeValueAsString(prompt) + "}]}");
        String chatBody = strictUtf8(chat.body());
        assertEquals(200, chat.statusCode(), chatBody);
        String content = JSON.readTree(chatBody).get("choices").get(0).get("message").get("content").asText();
        assertFalse(content.isEmpty(), chatBody);
    }

    @Test
    void sseChunksAreEachValidUtf8AndEndWithDone() throws Exception {
        String prompt = "東京 🙂";
        HttpRequest req = HttpRequest.newBuilder(URI.create(server.baseUrl() + "/v1/chat/completions"))
                .header("Authorization", "Bearer " + KEY).header("Content-Type", "application/json").timeout(Duration.ofSeconds(60))
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"stories260K\",\"stream\":true,\"max_tokens\":24,\"temperature\":0,"
                        + "\"logit_bias\":" + CJK_BYTE_BIAS + ",\"stream_options\":{\"include_usage\":true},"
                        + "\"messages\":[{\"role\":\"user\",\"content\":" + JSON.writeValueAsString(prompt) + "}]}", StandardCharsets.UTF_8))
                .build();
        HttpResponse<InputStream> r = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"), r.headers().toString());
        List<byte[]> events;
        try (InputStream in = r.body()) {
            events = splitEvents(in.readAllBytes());
        }
        assertTrue(events.size() >= 3, events.size() + " events");
        StringBuilder text = new StringBuilder();
        int usageChunks = 0;
        for (int i = 0; i < events.size(); i++) {
            String event = strictUtf8(events.get(i)); // each event on its own: no UTF-8 sequence split across events
            assertTrue(event.startsWith("data: "), event);
            String data = event.substring("data: ".length());
            if (i == events.size() - 1) {
                assertEquals("[DONE]", data);
                break;
            }
            JsonNode chunk = JSON.readTree(data);
            assertEquals("chat.completion.chunk", chunk.get("object").asText());
            if (chunk.hasNonNull("usage")) usageChunks++;
            for (JsonNode choice : chunk.get("choices")) {
                JsonNode content = choice.get("delta").get("content");
                if (content != null && !content.isNull()) text.append(content.asText());
            }
        }
        assertEquals(1, usageChunks);
        assertFalse(text.isEmpty());
    }

    /** SSE events are separated by a blank line. */
    private static List<byte[]> splitEvents(byte[] stream) {
        List<byte[]> events = new ArrayList<>();
        int start = 0;
        for (int i = 0; i + 1 < stream.length; i++) {
            if (stream[i] == '\n' && stream[i + 1] == '\n') {
                if (i > start) events.add(java.util.Arrays.copyOfRange(stream, start, i));
                start = i + 2;
                i++;
            }
        }
        if (start < stream.length && new String(stream, start, stream.length - start, StandardCharsets.UTF_8).strip().length() > 0) {
            events.add(java.util.Arrays.copyOfRange(stream, start, stream.length));
        }
        return events;
    }

    private static String rawExchange(String request) throws IOException {
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            s.setSoTimeout(30_000);
            OutputStream out = s.getOutputStream();
            try {
                out.write(request.getBytes(StandardCharsets.UTF_8));
                out.flush();
            } catch (IOException e) {
                // the server may have answered and closed already
            }
            return new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static final Pattern RUNNING = Pattern.compile("(?m)^tessera_num_requests_running(?:\\{[^}]*\\})? (\\S+)$");

    private static double running() throws Exception {
        String metrics = get("/metrics");
        Matcher m = RUNNING.matcher(metrics);
        if (!m.find()) fail("/metrics has no tessera_num_requests_running:\n" + metrics);
        double v = Double.parseDouble(m.group(1));
        if (Double.isNaN(v)) fail("tessera_num_requests_running is NaN (a gauge whose state object was collected?):\n" + metrics);
        return v;
    }

    @Test
    void clientDisconnectMidStreamFreesTheRequest() throws Exception {
        String body = "{\"model\":\"stories260K\",\"stream\":true,\"max_tokens\":1500,\"temperature\":1,\"seed\":1,"
                + "\"messages\":[{\"role\":\"user\",\"content\":\"Tell a long story.\"}]}";
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            s.setSoTimeout(30_000);
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY
                    + "\r\nContent-Type: application/json\r\nContent-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(bytes);
            out.flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream seen = new ByteArrayOutputStream();
            int events = 0;
            byte[] buf = new byte[256];
            while (events < 3) {
                int n = in.read(buf);
                if (n < 0) fail("stream ended before 3 events:\n" + seen);
                seen.write(buf, 0, n);
                events = seen.toString(StandardCharsets.UTF_8).split("\ndata: ", -1).length - 1;
            }
            assertTrue(seen.toString(StandardCharsets.UTF_8).startsWith("HTTP/1.1 200"), seen.toString(StandardCharsets.UTF_8));
        } // closed mid-stream
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        double running = running();
        while (running != 0 && System.nanoTime() < deadline) {
            Thread.sleep(100);
            running = running();
        }
        assertEquals(0.0, running, "tessera_num_requests_running after the client left");
        // The server still answers.
        assertTrue(get("/health").length() >= 0);
        HttpResponse<byte[]> r = postJson("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":3}");
        assertEquals(200, r.statusCode(), strictUtf8(r.body()));
        assertTrue(server.isAlive(), server.log());
    }
}
