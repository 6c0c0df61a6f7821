package dev.tessera.serving.http.edge;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Fuzzes the edge's request parsing (request line, headers, framing, chunked bodies) over a real loopback socket for
 * a fixed time budget: every input must parse or end in an {@link EdgeError} or an I/O end; any other exception is a
 * failure, reported with the input. Budget {@code -Dtessera.fuzz.seconds} (default 5), seed {@code -Dtessera.fuzz.seed}.
 */
class EdgeParserFuzzTest {
    private static final EdgeLimits LIMITS = new EdgeLimits(8, 2000, 2000, 256, 1024, 16, 4096);
    private static final List<String> SEEDS = List.of(
            "POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"prompt\":1}\n",
            "POST /v1/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
            "GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            "GET /health HTTP/1.0\r\n\r\n",
            "POST /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}");
    private static final List<String> PIECES = List.of("\r\n", "\n", "\r", ":", " ", "\t", "\0", "Content-Length: ", "Transfer-Encoding: chunked\r\n",
            "-1", "ffffffffffffffffff", "0x10", "HTTP/1.1", "HTTP/9.9", "Host: a\r\n", ";", ",", "\u00ff", "99999999999999999999");

    @Test
    void parsingEndsInARequestOrAnEdgeError() throws Exception {
        double seconds = Double.parseDouble(System.getProperty("tessera.fuzz.seconds", "5"));
        long seed = Long.getLong("tessera.fuzz.seed", System.nanoTime());
        SplittableRandom random = new SplittableRandom(seed);
        long runs = 0;
        try (ServerSocket listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            long end = System.nanoTime() + (long) (seconds * 1e9);
            while (System.nanoTime() < end) {
                byte[] input = mutate(SEEDS.get(random.nextInt(SEEDS.size())), random);
                try {
                    parseAll(listener, input);
                } catch (RuntimeException | Error e) {
                    throw new AssertionError("seed " + seed + ", run " + runs + ": " + e + "\ninput: "
                            + new String(input, StandardCharsets.ISO_8859_1).replace("\r", "\\r").replace("\n", "\\n\n"), e);
                }
                runs++;
            }
        }
        System.out.printf("EdgeParserFuzzTest: %d inputs in %.0f s, seed %d%n", runs, seconds, seed);
        assertTrue(runs > 0);
    }

    /** Sends the input on a fresh connection and parses requests from it until it ends or is refused. */
    private static void parseAll(ServerSocket listener, byte[] input) throws IOException {
        try (Socket client = new Socket(listener.getInetAddress(), listener.getLocalPort()); Socket server = listener.accept()) {
            OutputStream out = client.getOutputStream();
            out.write(input);
            client.shutdownOutput();
            DeadlineInput in = new DeadlineInput(server);
            in.deadlineIn(2000);
            for (int i = 0; i < 8; i++) {
                RequestHead head = RequestHead.read(in, LIMITS);
                if (head == RequestHead.NONE) return;
                long length = RequestBody.length(head);
                if (length > LIMITS.maxBodyBytes()) return;
                byte[] body = length == -1 ? RequestBody.readChunked(in, LIMITS) : RequestBody.readFixed(in, length);
                if (body.length > LIMITS.maxBodyBytes()) throw new IllegalStateException("body of " + body.length + " bytes passed the limit");
            }
        } catch (EdgeError | IOException e) {
            // refused with a status, or the input ended: both are answers
        }
    }

    private static byte[] mutate(String base, SplittableRandom r) {
        StringBuilder s = new StringBuilder(base);
        int rounds = 1 + r.nextInt(4);
        for (int i = 0; i < rounds && !s.isEmpty(); i++) {
            int at = r.nextInt(s.length());
            switch (r.nextInt(5)) {
                case 0 -> s.insert(at, PIECES.get(r.nextInt(PIECES.size())));
                case 1 -> s.setCharAt(at, (char) r.nextInt(256));
                case 2 -> s.delete(at, Math.min(s.length(), at + 1 + r.nextInt(8)));
                case 3 -> {
                    int b = Math.min(s.length(), at + r.nextInt(40));
                    s.insert(b, s.substring(at, b));
                }
                default -> s.setLength(at);
            }
        }
        return s.toString().getBytes(StandardCharsets.ISO_8859_1);
    }
}
