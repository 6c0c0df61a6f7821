package dev.tessera.kernels.collective;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A user-space TCP proxy that makes loopback look like an edge network link: it accepts on one address, connects each
 * accepted connection to a target, and forwards both directions, each with a one-way delay and a rate limit.
 *
 * <p>Per direction, a reader thread stamps each chunk it reads with a release time ({@code read time + delay}) and
 * queues it; a writer thread sends chunks in order, each piece no earlier than its release time and no earlier than the
 * link has finished "transmitting" the previous piece at {@code rateBitsPerSecond} (a token bucket holding one
 * piece). The schedule is kept in ideal time, so sleep overshoot delays single writes but does not accumulate.
 * A rate of 0 means unlimited. End of stream is forwarded as a half-close after the queued data.
 */
public final class LinkEmulator implements AutoCloseable {
    /** Bytes read per chunk, and the pacing unit of the rate limit. */
    private static final int CHUNK_BYTES = 16 * 1024;
    /** Chunks queued per direction before the reader stops reading (back-pressure onto the sender's TCP). */
    private static final int QUEUE_CHUNKS = 256;

    private final ServerSocket server;
    private final InetSocketAddress target;
    private final long delayNanos;
    private final long rateBitsPerSecond;
    private final Thread acceptor;
    private final AtomicInteger numAccepted = new AtomicInteger();
    private volatile boolean closed;

    private record Chunk(byte[] data, int length, long releaseNanos) {}

    private static final Chunk END = new Chunk(new byte[0], -1, 0);
    private static final Chunk ABORT = new Chunk(new byte[0], -2, 0);

    /** Starts listening on {@code listen} (port 0 picks one; see {@link #address}) and forwarding to {@code target}. */
    public LinkEmulator(InetSocketAddress listen, InetSocketAddress target, Duration delay, long rateBitsPerSecond) {
        if (delay.isNegative()) throw new IllegalArgumentException("delay must be ≥ 0, got " + delay);
        if (rateBitsPerSecond < 0) throw new IllegalArgumentException("rate must be ≥ 0 bit/s, got " + rateBitsPerSecond);
        this.server = CollectiveGroup.listen(listen);
        this.target = target;
        this.delayNanos = delay.toNanos();
        this.rateBitsPerSecond = rateBitsPerSecond;
        this.acceptor = Thread.ofPlatform().daemon().name("linkemu-accept-" + server.getLocalPort()).start(this::acceptLoop);
    }

    /** The address this emulator accepts on. */
    public InetSocketAddress address() {
        return new InetSocketAddress(server.getInetAddress(), server.getLocalPort());
    }

    /** Connections accepted so far (a way to check that a peer really goes through this link). */
    public int numAccepted() {
        return numAccepted.get();
    }

    private void acceptLoop() {
        while (!closed) {
            Socket inbound;
            try {
                inbound = server.accept();
            } catch (IOException e) {
                if (!closed) System.err.println("linkemu: accept on " + address() + " failed: " + e.getMessage());
                return;
            }
            numAccepted.incrementAndGet();
            Thread.ofPlatform().daemon().name("linkemu-connect").start(() -> bridge(inbound));
        }
    }

    private void bridge(Socket inbound) {
        Socket outbound = new Socket();
        try {
            inbound.setTcpNoDelay(true);
            outbound.setTcpNoDelay(true);
            outbound.connect(target, 10_000);
        } catch (IOException e) {
            System.err.println("linkemu: cannot connect to " + target + ": " + e.getMessage());
            closeQuietly(inbound);
            closeQuietly(outbound);
            return;
        }
        String name = inbound.getPort() + "-" + target.getPort();
        AtomicInteger openDirections = new AtomicInteger(2);
        pump(inbound, outbound, "linkemu-" + name + "-fwd", openDirections);
        pump(outbound, inbound, "linkemu-" + name + "-back", openDirections);
    }

    /**
     * Starts the reader and writer threads of one direction. A clean end of stream half-closes {@code to}; the sockets
     * are closed when both directions have ended, or at once on an error (so the far side sees the reset too).
     */
    private void pump(Socket from, Socket to, String name, AtomicInteger openDirections) {
        BlockingQueue<Chunk> queue = new ArrayBlockingQueue<>(QUEUE_CHUNKS);
        Thread.ofPlatform().daemon().name(name + "-read").start(() -> {
            Chunk last = END;
            try {
                InputStream in = from.getInputStream();
                while (true) {
                    byte[] buf = new byte[CHUNK_BYTES];
                    int n = in.read(buf);
                    if (n < 0) break;
                    Chunk chunk = new Chunk(buf, n, System.nanoTime() + delayNanos);
                    // Bounded wait: if the writer died and closed the sockets, stop instead of blocking forever.
                    while (!queue.offer(chunk, 100, TimeUnit.MILLISECONDS)) if (from.isClosed()) return;
                }
            } catch (IOException | InterruptedException e) {
                last = ABORT; // a reset: the writer passes it on by closing both sockets
            }
            try {
                queue.put(last);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        });
        Thread.ofPlatform().daemon().name(name + "-write").start(() -> {
            long linkFreeNanos = Long.MIN_VALUE;
            try {
                OutputStream out = to.getOutputStream();
                while (true) {
                    Chunk c = queue.take();
                    if (c == ABORT) break;
                    if (c.length < 0) {
                        to.shutdownOutput();
                        if (openDirections.decrementAndGet() == 0) {
                            closeQuietly(from);
                            closeQuietly(to);
                        }
                        return;
                    }
                    if (rateBitsPerSecond == 0) {
                        sleepUntil(c.releaseNanos);
                        out.write(c.data, 0, c.length);
                        continue;
                    }
                    linkFreeNanos = Math.max(linkFreeNanos, c.releaseNanos);
                    linkFreeNanos += c.length * 8L * 1_000_000_000L / rateBitsPerSecond;
                    sleepUntil(linkFreeNanos);
                    out.write(c.data, 0, c.length);
                }
            } catch (IOException | InterruptedException e) {
                // The far side is gone: close both below, so the near side learns it too.
            }
            closeQuietly(from);
            closeQuietly(to);
        });
    }

    private static void sleepUntil(long nanos) {
        long left;
        while ((left = nanos - System.nanoTime()) > 0) LockSupport.parkNanos(left);
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // Already broken; nothing left to release.
        }
    }

    /** Stops accepting; connections already bridged keep running until either side closes. */
    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // Closing a listener only fails if it is already closed.
        }
        acceptor.interrupt();
    }

    /** Parses a delay such as {@code 1ms}, {@code 250us}, {@code 0.5s} or {@code 0}. */
    public static Duration parseDelay(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        double scaleNanos;
        String number;
        if (t.endsWith("ms")) { scaleNanos = 1e6; number = t.substring(0, t.length() - 2); }
        else if (t.endsWith("us")) { scaleNanos = 1e3; number = t.substring(0, t.length() - 2); }
        else if (t.endsWith("ns")) { scaleNanos = 1; number = t.substring(0, t.length() - 2); }
        else if (t.endsWith("s")) { scaleNanos = 1e9; number = t.substring(0, t.length() - 1); }
        else if (t.equals("0")) { return Duration.ZERO; }
        else throw new IllegalArgumentException("delay '" + text + "' needs a unit: ns, us, ms or s (e.g. 1ms)");
        double value = parseNumber(number, text, "delay");
        return Duration.ofNanos(Math.round(value * scaleNanos));
    }

    /** Parses a rate in bits per second such as {@code 300mbit}, {@code 1gbit}, {@code 64kbit}, {@code 0} (unlimited); decimal units as tc uses. */
    public static long parseRate(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        double scale;
        String number;
        if (t.endsWith("gbit")) { scale = 1e9; number = t.substring(0, t.length() - 4); }
        else if (t.endsWith("mbit")) { scale = 1e6; number = t.substring(0, t.length() - 4); }
        else if (t.endsWith("kbit")) { scale = 1e3; number = t.substring(0, t.length() - 4); }
        else if (t.endsWith("bit")) { scale = 1; number = t.substring(0, t.length() - 3); }
        else if (t.equals("0")) { return 0; }
        else throw new IllegalArgumentException("rate '" + text + "' needs a unit: bit, kbit, mbit or gbit (e.g. 300mbit)");
        return Math.round(parseNumber(number, text, "rate") * scale);
    }

    private static double parseNumber(String number, String text, String what) {
        try {
            double v = Double.parseDouble(number);
            if (!(v >= 0) || Double.isInfinite(v)) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(what + " '" + text + "' is not a non-negative number with a unit");
        }
    }
}
