package dev.tessera.serving.edge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.serving.ServeProcess;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Hostile-but-realistic clients on raw sockets against {@code tessera serve} (a real process): refused bodies,
 * malformed framing, HTTP/1.0, HEAD, Connection: close, invalid text, limits, timeouts and a client that leaves a
 * whole (non-streamed) completion. After every test the server must still answer a normal request.
 */
class EdgeRequestsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final int MAX_BODY = 65536;
    private static ServeProcess server;

    @BeforeAll
    static void start() throws Exception {
        server = ServeProcess.start(null, "--max-body-bytes", Integer.toString(MAX_BODY), "--max-queue", "4",
                "--header-timeout", "1", "--idle-timeout", "2", "--max-num-seqs", "2");
    }

    @AfterAll
    static void stop() throws Exception {
        if (server != null) server.close();
    }

    /** The server serves a normal request on a fresh connection, and has printed no stack trace. */
    @AfterEach
    void stillServes() throws IOException {
        assertServes(server.port());
        assertFalse(server.log().contains("\tat "), "stack trace in the server log:\n" + server.log());
    }

    static void assertServes(int port) throws IOException {
        try (RawConnection c = new RawConnection(port)) {
            RawConnection.Response r = c.exchange(post("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":3}"));
            assertEquals(200, r.status(), r.text());
            assertEquals("text_completion", JSON.readTree(r.body()).get("object").asText());
        }
    }

    static String post(String path, String json) {
        return "POST " + path + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: "
                + json.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + new String(json.getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1);
    }

    /** An OpenAI error body naming no exception class and echoing none of the given request bytes. */
    static JsonNode assertOpenAiError(RawConnection.Response r, int status, String... notEchoed) throws IOException {
        assertEquals(status, r.status(), r.statusLine() + " " + r.text());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertNotNull(e, r.text());
        assertFalse(e.get("message").asText().isEmpty());
        assertFalse(r.text().matches("(?s).*(Exception|Error:|java\\.|io\\.helidon).*"), r.text());
        for (String s : notEchoed) assertFalse(r.text().contains(s), "echoes " + s + ": " + r.text());
        return e;
    }

    // ---- item 1: a refused body is never parsed as a request

    @Test
    void oversizedBodyInSegmentsIsNotParsedAsRequests() throws Exception {
        String smuggled = "GET /v1/models/x HTTP/1.1\r\nHost: t\r\n\r\n";
        try (RawConnection c = new RawConnection(server.port())) {
            c.send("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n");
            Thread.sleep(100);
            for (int i = 0; i < 20; i++) {
                c.send(smuggled.repeat(20));
                Thread.sleep(10);
            }
            RawConnection.Response r = c.read();
            assertOpenAiError(r, 413);
            assertEquals("close", r.header("Connection"));
            String rest = new String(c.drain(4000), StandardCharsets.ISO_8859_1);
            assertFalse(rest.contains("HTTP/1.1"), "a second response followed the 413: " + rest);
        }
        assertFalse(server.log().contains("/v1/models/x"), "the refused body was parsed as a request:\n" + server.log());
    }

    @Test
    void oversizedBodyAfterTheAnswerIsNotParsedAsRequests() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            c.send("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n");
            RawConnection.Response r = c.read();
            assertOpenAiError(r, 413);
            // The client sends its body anyway, after the answer: a request line in it must not be answered (no 414).
            try {
                c.send(("GET /" + "a".repeat(20000) + " HTTP/1.1\r\nHost: t\r\n\r\n").repeat(20));
            } catch (IOException closed) {
                // the edge may already have closed
            }
            String rest = new String(c.drain(3000), StandardCharsets.ISO_8859_1);
            assertFalse(rest.contains("HTTP/1.1"), rest);
        }
    }

    @Test
    void oversizedChunkedBodyIsRefusedAndClosed() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            c.send("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
            String chunk = "8000\r\n" + "GET /v1/models/x HTTP/1.1\r\nHost: t\r\n\r\n".repeat(1000).substring(0, 0x8000) + "\r\n";
            for (int i = 0; i < 3; i++) c.send(chunk);
            RawConnection.Response r = c.read();
            assertOpenAiError(r, 413);
            assertTrue(c.closedWithin(4000));
        }
        assertFalse(server.log().contains("/v1/models/x"), server.log());
    }

    @Test
    void expectContinueIsAnsweredBeforeTheBody() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            RawConnection.Response r = c.exchange("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    + "Content-Length: 999999\r\nExpect: 100-continue\r\n\r\n");
            assertOpenAiError(r, 413);
        }
        try (RawConnection c = new RawConnection(server.port())) {
            String body = "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":2}";
            c.send("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " + body.length()
                    + "\r\nExpect: 100-continue\r\n\r\n");
            byte[] interim = c.drain(1000);
            assertTrue(new String(interim, StandardCharsets.ISO_8859_1).startsWith("HTTP/1.1 100 Continue\r\n\r\n"));
            c.send(body);
            assertEquals(200, c.read().status());
        }
    }

    // ---- item 4 and 11: malformed framing and headers are 400s with an OpenAI body

    @Test
    void malformedChunkSizesAre400() throws Exception {
        String body = "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":2}";
        for (String chunked : List.of("ZZ\r\n" + body + "\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n",
                "000000000000000010\r\n" + body + "\r\n0\r\n\r\n", "5\r\n" + body + "\r\n0\r\n\r\n",
                "5 ;x\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n")) {
            try (RawConnection c = new RawConnection(server.port())) {
                RawConnection.Response r = c.exchange("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                        + "Transfer-Encoding: chunked\r\n\r\n" + chunked);
                assertOpenAiError(r, 400, "hello", "ZZ");
                assertTrue(c.closedWithin(4000), chunked);
            }
        }
    }

    @Test
    void chunkedBodyWithExtensionsAndTrailersIsServed() throws Exception {
        String body = "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":2}";
        try (RawConnection c = new RawConnection(server.port())) {
            RawConnection.Response r = c.exchange("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n" + "a;name=value\r\n" + body.substring(0, 10) + "\r\n"
                    + Integer.toHexString(body.length() - 10) + "\r\n" + body.substring(10) + "\r\n0\r\nX-Trailer: 1\r\n\r\n");
            assertEquals(200, r.status(), r.text());
        }
    }

    @Test
    void malformedContentTypeIs4xxWithoutEcho() throws Exception {
        String body = "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":2}";
        for (String type : List.of(";;;==", "application/json; charset", "/", "application/json;;;q=\"", "text/plain")) {
            try (RawConnection c = new RawConnection(server.port())) {
                RawConnection.Response r = c.exchange("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: " + type
                        + "\r\nContent-Length: " + body.length() + "\r\n\r\n" + body);
                assertTrue(r.status() == 400 || r.status() == 415 || r.status() == 200, type + " -> " + r.statusLine());
                if (r.status() != 200) assertOpenAiError(r, r.status(), type.length() > 3 ? type : "\u0000");
            }
        }
    }

    @Test
    void ambiguousOrMalformedHeadsAre400WithBody() throws Exception {
        String json = "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":2}";
        String start = "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n";
        List<String> heads = List.of(
                start + "Content-Length: " + json.length() + "\r\nContent-Length: " + json.length() + "\r\n\r\n" + json,
                start + "Content-Length: " + json.length() + "\r\nContent-Length: 3\r\n\r\n" + json,
                start + "Content-Length: -5\r\n\r\n" + json,
                start + "Content-Length: 1e3\r\n\r\n" + json,
                start + "Content-Length: +52\r\n\r\n" + json,
                start + "Content-Length: 99999999999999999999999\r\n\r\n" + json,
                start + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
                start + "Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
                start + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
                start + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                start + "X-No-Colon-Here\r\nContent-Length: " + json.length() + "\r\n\r\n" + json,
                start + "Bad Name: 1\r\n\r\n",
                start + " folded: 1\r\n\r\n",
                start + "X-Bare: a\rb\r\n\r\n",
                "GET /health HTTP/1.1\r\n\r\n",
                "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                "GET  /health HTTP/1.1\r\nHost: t\r\n\r\n",
                "GET /health HTTP/1.1 extra\r\nHost: t\r\n\r\n",
                "G(T /health HTTP/1.1\r\nHost: t\r\n\r\n",
                "GET /health HTTP/x\r\nHost: t\r\n\r\n",
                "GET /health\r\nHost: t\r\n\r\n",
                "\r\n\r\n\r\n\r\n\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n");
        for (String head : heads) {
            try (RawConnection c = new RawConnection(server.port())) {
                RawConnection.Response r = c.exchange(head);
                assertOpenAiError(r, 400);
                assertEquals("close", r.header("Connection"), head);
                assertTrue(c.closedWithin(4000), head);
            }
        }
    }

    @Test
    void oversizedHeadsAre431Or414WithBody() throws Exception {
        String huge = "GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + "a".repeat(1 << 20) + "\r\n\r\n";
        StringBuilder many = new StringBuilder("GET /health HTTP/1.1\r\nHost: t\r\n");
        for (int i = 0; i < 10_000; i++) many.append("X-H").append(i).append(": v\r\n");
        many.append("\r\n");
        String longLine = "GET /" + "a".repeat(100_000) + " HTTP/1.1\r\nHost: t\r\n\r\n";
        for (String[] c : new String[][] {{huge, "431"}, {many.toString(), "431"}, {longLine, "414"}}) {
            try (RawConnection conn = new RawConnection(server.port())) {
                try {
                    conn.send(c[0]);
                } catch (IOException e) {
                    // the edge answered and closed before all was sent; the answer is still readable
                }
                assertOpenAiError(conn.read(), Integer.parseInt(c[1]));
            }
        }
    }

    @Test
    void whatTheRoutesRefuseThemselvesGetsAnErrorBody() throws Exception {
        for (String req : List.of("GET /health?%zz HTTP/1.1\r\nHost: t\r\n\r\n", "GET /health HTTP/1.1\r\nHost: \r\n\r\n",
                "GET /health HTTP/1.1\r\nHost: a b\r\n\r\n", "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
                "TRACE / HTTP/1.1\r\nHost: t\r\n\r\n", "GET /v1/models/" + "y".repeat(4060) + " HTTP/1.1\r\nHost: t\r\n\r\n")) {
            try (RawConnection c = new RawConnection(server.port())) {
                RawConnection.Response r = c.exchange(req);
                assertTrue(r.status() >= 400 && r.status() < 500, req + " -> " + r.statusLine());
                assertOpenAiError(r, r.status());
            }
        }
    }

    @Test
    void slowBodyTimesOutWith408() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            c.send("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\"");
            RawConnection.Response r = c.read();
            assertOpenAiError(r, 408);
            assertTrue(c.closedWithin(3000));
        }
    }

    // ---- item 5: HTTP/1.0

    @Test
    void http10IsServed() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            RawConnection.Response r = c.exchange("GET /health HTTP/1.0\r\n\r\n");
            assertEquals(200, r.status());
            assertEquals("ok", JSON.readTree(r.body()).get("status").asText());
            assertTrue(c.closedWithin(2000));
        }
        String json = "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":3,\"stream\":true}";
        try (RawConnection c = new RawConnection(server.port())) {
            c.send("POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: " + json.length() + "\r\n\r\n" + json);
            RawConnection.Response r = c.read();
            assertEquals(200, r.status(), r.text());
            assertNull(r.header("Transfer-Encoding"), "an HTTP/1.0 client cannot read chunked");
            assertTrue(r.text().trim().endsWith("data: [DONE]"), r.text());
        }
        try (RawConnection c = new RawConnection(server.port())) {
            RawConnection.Response r = c.exchange("GET /health HTTP/2.0\r\nHost: t\r\n\r\n");
            assertOpenAiError(r, 505);
        }
    }

    // ---- items 7 and 8: Connection: close, HEAD

    @Test
    void connectionCloseIsHonoured() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            RawConnection.Response r = c.exchange("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            assertEquals(200, r.status());
            assertEquals("close", r.header("Connection"));
            assertTrue(c.closedWithin(2000));
        }
        try (RawConnection c = new RawConnection(server.port())) {
            RawConnection.Response r = c.exchange(post("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":2}")
                    .replace("Host: t\r\n", "Host: t\r\nConnection: Close\r\n"));
            assertEquals(200, r.status());
            assertTrue(c.closedWithin(2000));
        }
    }

    @Test
    void keepAliveAndPipeliningWork() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            c.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n");
            assertEquals(200, c.read().status());
            RawConnection.Response models = c.read();
            assertEquals(200, models.status());
            assertEquals("list", JSON.readTree(models.body()).get("object").asText());
            assertEquals(404, c.exchange("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n").status());
            assertFalse(c.closedWithin(300));
        }
    }

    @Test
    void headHasNoBody() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            // HEAD then GET on one connection: any body bytes after HEAD would corrupt the second response.
            c.send("HEAD /health HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n");
            RawConnection.Response head = c.read(true);
            assertEquals(200, head.status());
            RawConnection.Response get = c.read();
            assertEquals(200, get.status(), get.statusLine());
            assertEquals("ok", JSON.readTree(get.body()).get("status").asText());
        }
        for (String path : List.of("/v1/models", "/nope", "/metrics")) {
            try (RawConnection c = new RawConnection(server.port())) {
                c.send("HEAD " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                byte[] all = c.drain(3000);
                String text = new String(all, StandardCharsets.ISO_8859_1);
                assertTrue(text.endsWith("\r\n\r\n"), path + ": HEAD answer carries a body: " + text);
            }
        }
    }

    // ---- item 9: invalid text

    @Test
    void invalidTextIs400() throws Exception {
        for (String prompt : List.of("\\ud800", "a\\udc00b", "\\ud800\\ud800", "\\udfff\\ud800")) {
            try (RawConnection c = new RawConnection(server.port())) {
                JsonNode e = assertOpenAiError(c.exchange(post("/v1/completions",
                        "{\"model\":\"stories260K\",\"prompt\":\"" + prompt + "\",\"max_tokens\":2}")), 400);
                assertTrue(e.get("message").asText().contains("invalid text"), e.toString());
            }
        }
        for (byte[] bad : List.of(new byte[] {(byte) 0xc0, (byte) 0xaf}, new byte[] {(byte) 0xe0, (byte) 0x80, (byte) 0xaf},
                new byte[] {(byte) 0xed, (byte) 0xa0, (byte) 0x80}, new byte[] {(byte) 0xf8, (byte) 0x88, (byte) 0x80, (byte) 0x80, (byte) 0x80},
                new byte[] {(byte) 0xff}, new byte[] {(byte) 0xe2, (byte) 0x82})) {
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            body.writeBytes("{\"model\":\"stories260K\",\"prompt\":\"a".getBytes(StandardCharsets.US_ASCII));
            body.writeBytes(bad);
            body.writeBytes("\",\"max_tokens\":2}".getBytes(StandardCharsets.US_ASCII));
            try (RawConnection c = new RawConnection(server.port())) {
                c.send("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " + body.size() + "\r\n\r\n");
                c.send(body.toByteArray());
                JsonNode e = assertOpenAiError(c.read(), 400);
                assertTrue(e.get("message").asText().contains("UTF-8"), e.toString());
            }
        }
        try (RawConnection c = new RawConnection(server.port())) {
            RawConnection.Response ok = c.exchange(post("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"\\ud83d\\ude00 \u00e9\",\"max_tokens\":2}"));
            assertEquals(200, ok.status(), ok.text());
        }
    }

    // ---- items 6 and 12: limits with the right status and message

    @Test
    void moreChoicesThanTheQueueIs400NamingTheLimit() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            RawConnection.Response r = c.exchange(post("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":2,\"n\":5}"));
            JsonNode e = assertOpenAiError(r, 400);
            assertNull(r.header("Retry-After"));
            assertEquals("n", e.get("param").asText());
            assertTrue(e.get("message").asText().contains("--max-queue 4"), e.toString());
        }
        try (RawConnection c = new RawConnection(server.port())) {
            RawConnection.Response r = c.exchange(post("/v1/completions",
                    "{\"model\":\"stories260K\",\"prompt\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"max_tokens\":2}"));
            JsonNode e = assertOpenAiError(r, 400);
            assertEquals("prompt", e.get("param").asText());
        }
        try (RawConnection c = new RawConnection(server.port())) {
            RawConnection.Response r = c.exchange(post("/v1/chat/completions",
                    "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2,\"n\":9}"));
            assertOpenAiError(r, 400);
        }
    }

    @Test
    void outOfRangeNumbersNameTheRange() throws Exception {
        for (String v : List.of("1000000000000", "0", "-1", "1e30", "99999999999999999999999")) {
            try (RawConnection c = new RawConnection(server.port())) {
                JsonNode e = assertOpenAiError(c.exchange(post("/v1/completions",
                        "{\"model\":\"stories260K\",\"prompt\":\"x\",\"max_tokens\":" + v + "}")), 400);
                assertTrue(e.get("message").asText().contains("between 1 and 2147483647"), v + ": " + e);
            }
        }
    }

    @Test
    void promptThatCannotFitIsRefusedBeforeTokenizing() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            JsonNode e = assertOpenAiError(c.exchange(post("/v1/completions",
                    "{\"model\":\"stories260K\",\"prompt\":\"" + "Once upon a time. ".repeat(3500) + "\",\"max_tokens\":2}")), 400);
            assertEquals("prompt", e.get("param").asText());
            assertTrue(e.get("message").asText().contains("the prompt has at least"), e.toString());
        }
    }

    // ---- item 2 (per connection): header and idle timeouts

    @Test
    void slowHeadTimesOutWith408() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            long t0 = System.nanoTime();
            c.send("GET /health HTTP/1.1\r\n");
            for (int i = 0; i < 4; i++) {
                Thread.sleep(300);
                try {
                    c.send("X-Slow-" + i + ": 1\r\n");
                } catch (IOException closed) {
                    break;
                }
            }
            RawConnection.Response r = c.read();
            assertOpenAiError(r, 408);
            assertTrue(c.closedWithin(3000));
            assertTrue((System.nanoTime() - t0) / 1e9 < 4, "408 came late");
        }
    }

    @Test
    void idleKeptAliveConnectionIsClosed() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            assertEquals(200, c.exchange("GET /health HTTP/1.1\r\nHost: t\r\n\r\n").status());
            assertFalse(c.closedWithin(1000), "closed before the idle timeout");
            assertTrue(c.closedWithin(3000), "still open after the idle timeout");
        }
    }

    // ---- item 10: a client that leaves a whole completion cancels it

    @Test
    void leavingAWholeCompletionCancelsIt() throws Exception {
        String cancelled = "client closed the connection; generation cancelled";
        int before = count(server.log(), cancelled);
        // One at a time: each left completion must be cancelled (and its sequences freed) before the next arrives,
        // or a slow machine still holds the previous one's sequences and the next is refused with 429.
        for (int i = 1; i <= 4; i++) {
            long deadline = System.nanoTime() + 10_000_000_000L;
            try (RawConnection c = new RawConnection(server.port())) {
                c.send(post("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"Once upon\",\"max_tokens\":500,\"n\":4}"));
                // Leave as soon as the engine runs it: 2,000 tokens take about 300 ms on a fast machine, so a fixed
                // wait before leaving could outlast the whole completion, which then ends normally.
                awaitRunningEngine(deadline);
            }
            while (count(server.log(), cancelled) < before + i && System.nanoTime() < deadline) Thread.sleep(50);
            assertEquals(before + i, count(server.log(), cancelled), server.log());
            awaitIdleEngine(deadline);
        }
        assertFalse(server.log().contains("\tat "), server.log());
    }

    private static void awaitRunningEngine(long deadline) throws Exception {
        while (gauge(metrics(), "tessera_num_requests_running") == 0) {
            assertTrue(System.nanoTime() < deadline, "the engine never ran the completion");
            Thread.sleep(5);
        }
    }

    private static String metrics() throws Exception {
        try (RawConnection c = new RawConnection(server.port())) {
            return c.exchange("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").text();
        }
    }

    /** Cancelling is noted when the handler ends; the engine lets the sequences go at its next step. */
    private static void awaitIdleEngine(long deadline) throws Exception {
        while (true) {
            String metrics = metrics();
            if (gauge(metrics, "tessera_num_requests_running") == 0 && gauge(metrics, "tessera_num_requests_waiting") == 0) return;
            assertTrue(System.nanoTime() < deadline, "the engine still holds cancelled sequences:\n" + metrics);
            Thread.sleep(20);
        }
    }

    private static double gauge(String metrics, String name) {
        for (String line : metrics.split("\n")) {
            if (line.startsWith(name + " ") || line.startsWith(name + "{")) return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
        }
        return Double.NaN;
    }

    private static int count(String text, String what) {
        int n = 0;
        for (int i = text.indexOf(what); i >= 0; i = text.indexOf(what, i + 1)) n++;
        return n;
    }
}
