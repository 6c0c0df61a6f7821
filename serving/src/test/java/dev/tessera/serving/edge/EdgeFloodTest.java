package dev.tessera.serving.edge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.serving.ServeProcess;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Connection floods against {@code tessera serve} (a real process): slow partial heads past {@code --max-connections},
 * and a flood that exhausts the process's file descriptors (lowered with {@code prlimit}). The excess is refused
 * with a 503, a client already connected is answered throughout, and the listener serves again once the flood goes.
 */
class EdgeFloodTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_CONNECTIONS = 16;
    private static final int FLOOD = 28;
    private static ServeProcess server;

    /** One server for both floods (each test waits until the other's connections are gone). */
    @BeforeAll
    static void start() throws Exception {
        server = ServeProcess.start(null, "--max-connections", Integer.toString(MAX_CONNECTIONS), "--header-timeout", "60");
    }

    @AfterAll
    static void stop() throws Exception {
        if (server != null) server.close();
    }

    @Test
    void partialHeadsBeyondTheCapAreRefusedAndTheServerRecovers() throws Exception {
        try (RawConnection normal = new RawConnection(server.port())) {
            assertEquals(200, normal.exchange("GET /health HTTP/1.1\r\nHost: t\r\n\r\n").status());
            List<RawConnection> flood = new ArrayList<>();
            int refused = 0;
            try {
                for (int i = 0; i < FLOOD; i++) {
                    RawConnection c = new RawConnection(server.port());
                    flood.add(c);
                    c.send("GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ");
                }
                for (RawConnection c : flood) {
                    c.socket.setSoTimeout(1500);
                    try {
                        RawConnection.Response r = c.read();
                        assertEquals(503, r.status(), r.text());
                        assertTrue(JSON.readTree(r.body()).get("error").get("message").asText().contains("--max-connections"), r.text());
                        assertEquals("close", r.header("Connection"));
                        refused++;
                    } catch (java.net.SocketTimeoutException e) {
                        // held open, waiting for the rest of its head: within the cap
                    }
                }
                // One slot is the normal client's (and one may be the start-up probe's kept-alive connection): the cap
                // holds the rest of the flood open and refuses the excess.
                assertTrue(refused >= FLOOD - (MAX_CONNECTIONS - 1) && refused <= FLOOD - (MAX_CONNECTIONS - 2), "refused " + refused);
                for (int i = 0; i < 3; i++) {
                    assertEquals(200, normal.exchange("GET /health HTTP/1.1\r\nHost: t\r\n\r\n").status());
                    assertEquals(200, normal.exchange(EdgeRequestsTest.post("/v1/completions",
                            "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":3}")).status());
                }
            } finally {
                for (RawConnection c : flood) c.close();
            }
            awaitServes(server.port(), 5000);
        }
    }

    @Test
    void listenerSurvivesRunningOutOfFileDescriptors() throws Exception {
        awaitServes(server.port(), 10_000);
        try (RawConnection normal = new RawConnection(server.port())) {
            assertEquals(200, normal.exchange("GET /health HTTP/1.1\r\nHost: t\r\n\r\n").status());
            String original = prlimit(server.pid(), null);
            // A soft limit below the descriptors already open: every accept now fails with EMFILE.
            prlimit(server.pid(), "10:" + original.split(":")[1]);
            List<RawConnection> waiting = new ArrayList<>();
            try {
                for (int i = 0; i < MAX_CONNECTIONS / 2; i++) {
                    RawConnection c = new RawConnection(server.port());
                    waiting.add(c);
                    c.send("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                }
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                RawConnection.Response health;
                do {
                    health = normal.exchange("GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
                } while (health.status() == 200 && System.nanoTime() < deadline);
                // A PID supervisor sees the process alive; /health, asked on a connection already open, says the truth.
                assertEquals(503, health.status(), health.text());
                assertTrue(health.text().contains("cannot accept"), health.text());
                assertTrue(server.isAlive());
                // Descriptors come back: the same listener accepts the connections that waited, and new ones.
                prlimit(server.pid(), original);
                for (RawConnection c : waiting) assertEquals(200, c.read().status());
            } finally {
                for (RawConnection c : waiting) c.close();
            }
            awaitServes(server.port(), 10_000);
            assertEquals(200, normal.exchange("GET /health HTTP/1.1\r\nHost: t\r\n\r\n").status());
            assertTrue(server.log().contains("cannot accept a connection"), server.log());
        }
    }

    private static void awaitServes(int port, long millis) throws Exception {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        AssertionError last = null;
        while (System.nanoTime() < deadline) {
            try {
                EdgeRequestsTest.assertServes(port);
                return;
            } catch (AssertionError | IOException e) {
                last = e instanceof AssertionError a ? a : new AssertionError(e);
                Thread.sleep(200);
            }
        }
        throw last;
    }

    /** Sets (when limits is not null) and returns the process's open-file limits as "soft:hard". */
    private static String prlimit(long pid, String limits) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("prlimit", "--pid", Long.toString(pid)));
        cmd.add(limits == null ? "--nofile" : "--nofile=" + limits);
        if (limits == null) cmd.addAll(List.of("--raw", "--noheadings", "--output", "SOFT,HARD"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes()).trim();
        assertEquals(0, p.waitFor(), out);
        return limits == null ? out.replaceAll("\\s+", ":") : limits;
    }
}
