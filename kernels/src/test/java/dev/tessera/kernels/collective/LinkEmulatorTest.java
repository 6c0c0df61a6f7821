package dev.tessera.kernels.collective;

import org.junit.jupiter.api.Test;

import java.io.DataInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LinkEmulatorTest {
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    /** A server on its own thread that runs {@code handler} on its first connection. */
    private static ServerSocket serve(SocketHandler handler) throws Exception {
        ServerSocket server = new ServerSocket(0, 8, LOOPBACK);
        Thread.ofPlatform().daemon().start(() -> {
            try (Socket s = server.accept()) {
                handler.handle(s);
            } catch (Exception ignored) {
                // The test's assertions report what went wrong.
            }
        });
        return server;
    }

    interface SocketHandler {
        void handle(Socket s) throws Exception;
    }

    @Test
    void addsTheDelayInEachDirection() {
        assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
            try (ServerSocket echo = serve(s -> {
                     InputStream in = s.getInputStream();
                     OutputStream out = s.getOutputStream();
                     int b;
                     while ((b = in.read()) >= 0) out.write(b);
                 });
                 LinkEmulator link = new LinkEmulator(new InetSocketAddress(LOOPBACK, 0),
                         new InetSocketAddress(LOOPBACK, echo.getLocalPort()), Duration.ofMillis(25), 0);
                 Socket client = new Socket(LOOPBACK, link.address().getPort())) {
                client.setTcpNoDelay(true);
                long best = Long.MAX_VALUE;
                for (int i = 0; i < 3; i++) {
                    long start = System.nanoTime();
                    client.getOutputStream().write(i + 1);
                    assertEquals(i + 1, client.getInputStream().read());
                    best = Math.min(best, System.nanoTime() - start);
                }
                assertTrue(best >= 50_000_000L, "round trip " + best / 1e6 + " ms, expected ≥ 50 ms (2 × 25 ms)");
                assertTrue(best < 500_000_000L, "round trip " + best / 1e6 + " ms, expected about 50 ms");
            }
        });
    }

    @Test
    void capsThroughputAtTheRate() {
        assertTimeoutPreemptively(Duration.ofSeconds(8), () -> {
            int bytes = 400_000;
            // The sink acknowledges with one byte once it has everything.
            try (ServerSocket sink = serve(s -> {
                     new DataInputStream(s.getInputStream()).readFully(new byte[bytes]);
                     s.getOutputStream().write(42);
                 });
                 LinkEmulator link = new LinkEmulator(new InetSocketAddress(LOOPBACK, 0),
                         new InetSocketAddress(LOOPBACK, sink.getLocalPort()), Duration.ZERO, LinkEmulator.parseRate("8mbit"));
                 Socket client = new Socket(LOOPBACK, link.address().getPort())) {
                long start = System.nanoTime();
                client.getOutputStream().write(new byte[bytes]);
                assertEquals(42, client.getInputStream().read());
                double seconds = (System.nanoTime() - start) / 1e9;
                double expected = bytes * 8 / 8e6; // 0.4 s at 8 Mbit/s
                assertTrue(seconds >= 0.9 * expected && seconds <= 3 * expected,
                        "400 kB took " + seconds + " s at 8 Mbit/s, expected about " + expected + " s");
            }
        });
    }

    @Test
    void parsesUnits() {
        assertEquals(Duration.ofMillis(1), LinkEmulator.parseDelay("1ms"));
        assertEquals(Duration.ofNanos(250_000), LinkEmulator.parseDelay("250us"));
        assertEquals(Duration.ofMillis(500), LinkEmulator.parseDelay("0.5s"));
        assertEquals(Duration.ZERO, LinkEmulator.parseDelay("0"));
        assertEquals(300_000_000L, LinkEmulator.parseRate("300mbit"));
        assertEquals(1_000_000_000L, LinkEmulator.parseRate("1gbit"));
        assertEquals(64_000L, LinkEmulator.parseRate("64kbit"));
        assertEquals(0L, LinkEmulator.parseRate("0"));
        assertThrows(IllegalArgumentException.class, () -> LinkEmulator.parseDelay("5"));
        assertThrows(IllegalArgumentException.class, () -> LinkEmulator.parseRate("300mb"));
        assertThrows(IllegalArgumentException.class, () -> LinkEmulator.parseRate("-1mbit"));
    }
}
