package dev.tessera.serving.http.edge;

import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntConsumer;

/**
 * The public listener of {@code tessera serve}: a thin HTTP/1.x front of our own before the Helidon routes, which
 * listen on a loopback port. It owns what the routes' server does not: a cap on open connections with a 503 beyond
 * it, header and idle timeouts, strict framing (a refused body is never parsed as a request), HTTP/1.0, HEAD, and
 * an accept loop that survives running out of file descriptors (it backs off and keeps accepting).
 */
public final class EdgeServer implements AutoCloseable {
    /** File descriptors kept free for the routes' own accept and for the model, logs and jars. */
    private static final long FILE_RESERVE = 16;
    /** Refusals answered at once; beyond this many in flight an excess connection is closed without an answer. */
    private static final int MAX_REFUSALS_IN_FLIGHT = 64;

    private final ServerSocket socket;
    private final EdgeLimits limits;
    private final int upstreamPort;
    private final PrintStream log;
    private final IntConsumer statusCounter;
    private final Thread acceptor;
    private final Set<EdgeConnection> connections = ConcurrentHashMap.newKeySet();
    private final AtomicInteger numOpen = new AtomicInteger();
    private final AtomicInteger numRefusing = new AtomicInteger();
    private final AtomicLong nextId = new AtomicLong();
    private final AtomicLong numRefused = new AtomicLong();
    /** Request-body bytes all connections may hold at once: the bound on the edge's request memory. */
    private final java.util.concurrent.Semaphore bodyBytes;
    private volatile boolean closed;
    private volatile boolean draining;
    private volatile String acceptFailure;
    private volatile String upstreamFailure;
    private long lastFailureLogNanos;
    private volatile long lastNoRoomNanos;

    private EdgeServer(ServerSocket socket, EdgeLimits limits, int upstreamPort, PrintStream log, IntConsumer statusCounter) {
        this.socket = socket;
        this.limits = limits;
        this.upstreamPort = upstreamPort;
        this.log = log;
        this.statusCounter = statusCounter;
        long budget = Math.max(limits.maxBodyBytes(), Math.min(Math.max(4 * limits.maxBodyBytes(), 64L << 20),
                Math.min(Runtime.getRuntime().maxMemory() / 4, 1L << 30)));
        this.bodyBytes = new java.util.concurrent.Semaphore((int) Math.min(Integer.MAX_VALUE, budget));
        this.acceptor = Thread.ofPlatform().name("tessera-edge-accept").daemon(true).unstarted(this::acceptLoop);
    }

    /**
     * Binds host:port (0 = any free port) and starts accepting.
     *
     * @param upstreamPort   the loopback port of the routes
     * @param statusCounter  told the status of every response the edge writes itself (for the metrics)
     */
    public static EdgeServer start(String host, int port, EdgeLimits limits, int upstreamPort, PrintStream log, IntConsumer statusCounter) {
        try {
            ServerSocket s = new ServerSocket();
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(InetAddress.getByName(host), port), 1024);
            // Accept wakes at least once a second, so a listener that failed learns it works again without a client.
            s.setSoTimeout(1000);
            EdgeServer edge = new EdgeServer(s, limits, upstreamPort, log, statusCounter);
            edge.acceptor.start();
            return edge;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    public int port() {
        return socket.getLocalPort();
    }

    public EdgeLimits limits() {
        return limits;
    }

    int upstreamPort() {
        return upstreamPort;
    }

    public int numOpenConnections() {
        return numOpen.get();
    }

    /** Connections answered 503 because the cap was reached. */
    public long numRefused() {
        return numRefused.get();
    }

    /** Why the server cannot take connections now (for /health), or null when it can. */
    public String failure() {
        if (closed) return "the listener is closed";
        if (!acceptor.isAlive()) return "the listener thread ended";
        String f = acceptFailure;
        if (f != null) return "the listener cannot accept connections: " + f;
        if (lastNoRoomNanos != 0 && System.nanoTime() - lastNoRoomNanos < 2_000_000_000L) return "the listener refuses connections: the process is out of file descriptors";
        f = upstreamFailure;
        return f == null ? null : "the routes cannot be reached: " + f;
    }

    /** From now on every response closes its connection (shutdown: clients go elsewhere). */
    public void drain() {
        draining = true;
    }

    boolean isDraining() {
        return draining;
    }

    private void acceptLoop() {
        long backoffMillis = 10;
        while (!closed) {
            Socket s;
            try {
                s = socket.accept();
            } catch (SocketTimeoutException e) {
                acceptFailure = null;
                continue;
            } catch (IOException e) {
                if (closed) return;
                // EMFILE, ENFILE, ENOBUFS: the listener itself is fine; wait for descriptors to come back.
                acceptFailure = String.valueOf(e.getMessage());
                long now = System.nanoTime();
                if (now - lastFailureLogNanos > 10_000_000_000L) {
                    lastFailureLogNanos = now;
                    log.println("tessera serve: cannot accept a connection (" + e.getMessage() + "); retrying");
                }
                sleep(backoffMillis);
                backoffMillis = Math.min(1000, backoffMillis * 2);
                continue;
            }
            backoffMillis = 10;
            acceptFailure = null;
            if (!hasFileRoom()) {
                // Out of descriptors: answer at once from this thread (a fresh socket's send buffer takes it without
                // blocking) and close, so the descriptor comes back now rather than after a linger.
                numRefused.incrementAndGet();
                statusCounter.accept(503);
                lastNoRoomNanos = System.nanoTime();
                try {
                    EdgeReplies.error(s.getOutputStream(), 503, "out_of_file_descriptors",
                            "the server is out of file descriptors; retry later", true);
                } catch (IOException ignored) {
                    // the client left
                }
                closeQuietly(s);
                continue;
            }
            if (numOpen.get() >= limits.maxConnections()) {
                refuse(s);
                continue;
            }
            numOpen.incrementAndGet();
            EdgeConnection c = new EdgeConnection(this, s, nextId.incrementAndGet());
            connections.add(c);
            try {
                Thread.ofVirtual().name("tessera-edge-" + nextId.get()).start(c);
            } catch (RuntimeException | OutOfMemoryError e) {
                connectionClosed(c);
                closeQuietly(s);
            }
        }
    }

    /** Answers a connection over the cap with a 503 (from a virtual thread; the acceptor never blocks on a client). */
    private void refuse(Socket s) {
        numRefused.incrementAndGet();
        statusCounter.accept(503);
        if (numRefusing.incrementAndGet() > MAX_REFUSALS_IN_FLIGHT) {
            numRefusing.decrementAndGet();
            closeQuietly(s);
            return;
        }
        Thread.ofVirtual().start(() -> {
            try {
                s.setSoTimeout(1000);
                EdgeReplies.error(s.getOutputStream(), 503, "too_many_connections",
                        "the server has " + limits.maxConnections() + " connections open, its limit (--max-connections); retry later", true);
                s.shutdownOutput();
                byte[] sink = new byte[4096];
                long end = System.nanoTime() + 1_000_000_000L;
                while (System.nanoTime() < end && s.getInputStream().read(sink) >= 0) {
                    // drain briefly so the answer is not lost to a reset
                }
            } catch (IOException ignored) {
                // the client left
            } finally {
                closeQuietly(s);
                numRefusing.decrementAndGet();
            }
        });
    }

    /** Whether the process has file descriptors to spare for one more connection (and the routes' end of it). */
    boolean hasFileRoom() {
        if (java.lang.management.ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.UnixOperatingSystemMXBean unix) {
            return unix.getOpenFileDescriptorCount() + FILE_RESERVE < unix.getMaxFileDescriptorCount();
        }
        return true;
    }

    /** Reserves room for a body of n bytes; false when bodies in flight already take the budget. */
    boolean reserveBody(long n) {
        return n <= Integer.MAX_VALUE && bodyBytes.tryAcquire((int) n);
    }

    void releaseBody(long n) {
        bodyBytes.release((int) n);
    }

    void connectionClosed(EdgeConnection c) {
        if (connections.remove(c)) numOpen.decrementAndGet();
    }

    void upstreamFailed(IOException e) {
        upstreamFailure = e.getMessage();
    }

    /** The routes answered: any earlier failure to reach them is over. */
    void upstreamAnswered() {
        upstreamFailure = null;
    }

    void refused(EdgeError e, String request) {
        statusCounter.accept(e.status);
        log.println("tessera serve: " + (request == null ? "-" : request) + " " + e.status + " refused by the edge: " + e.getMessage());
    }

    /** Waits until no connection is in the middle of a request, or the time is up; true when none is. */
    public boolean awaitQuiet(long millis) throws InterruptedException {
        long end = System.nanoTime() + millis * 1_000_000L;
        while (System.nanoTime() < end) {
            boolean quiet = true;
            for (EdgeConnection c : connections) quiet &= c.isIdle();
            if (quiet) return true;
            Thread.sleep(20);
        }
        return false;
    }

    /** Stops accepting and closes every connection. */
    @Override
    public void close() {
        closed = true;
        closeQuietly(socket);
        for (EdgeConnection c : connections) c.closeNow();
        try {
            acceptor.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void closeQuietly(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // closing
        }
    }
}
