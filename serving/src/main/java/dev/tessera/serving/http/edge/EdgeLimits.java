package dev.tessera.serving.http.edge;

/**
 * What the edge allows one client: how many connections at once, how long a request head and an idle keep-alive
 * connection may take, and how large a request head and body may be.
 *
 * @param maxConnections       open client connections; one more is answered 503 and closed
 * @param headerTimeoutMillis  from a request's first byte to the end of its head
 * @param idleTimeoutMillis    a kept-alive connection with no request, and the longest a body may take to arrive
 * @param maxRequestLineBytes  the request line (method, target, version); longer gets 414 (4096, as the routes' own limit)
 * @param maxHeaderBytes       all header lines together; more gets 431 (below the routes' 16384, which also count the
 *                             headers the edge adds)
 * @param maxNumHeaders        header lines; more gets 431
 * @param maxBodyBytes         a request body; larger gets 413
 */
public record EdgeLimits(int maxConnections, long headerTimeoutMillis, long idleTimeoutMillis, int maxRequestLineBytes,
                         int maxHeaderBytes, int maxNumHeaders, long maxBodyBytes) {
    public static final int DEFAULT_MAX_REQUEST_LINE_BYTES = 4096;
    public static final int DEFAULT_MAX_HEADER_BYTES = 16000;
    public static final int DEFAULT_MAX_NUM_HEADERS = 100;
    public static final long DEFAULT_HEADER_TIMEOUT_MILLIS = 10_000;
    public static final long DEFAULT_IDLE_TIMEOUT_MILLIS = 60_000;

    public EdgeLimits {
        if (maxConnections < 1) throw new IllegalArgumentException("maxConnections must be >= 1, found " + maxConnections);
        if (headerTimeoutMillis < 1 || idleTimeoutMillis < 1) throw new IllegalArgumentException("timeouts must be >= 1 ms");
        if (maxBodyBytes < 1 || maxBodyBytes > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("maxBodyBytes out of range: " + maxBodyBytes);
    }

    /** Defaults around a connection cap and body limit. */
    public static EdgeLimits of(int maxConnections, long maxBodyBytes) {
        return new EdgeLimits(maxConnections, DEFAULT_HEADER_TIMEOUT_MILLIS, DEFAULT_IDLE_TIMEOUT_MILLIS,
                DEFAULT_MAX_REQUEST_LINE_BYTES, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_NUM_HEADERS, maxBodyBytes);
    }

    public EdgeLimits withTimeouts(long headerTimeoutMillis, long idleTimeoutMillis) {
        return new EdgeLimits(maxConnections, headerTimeoutMillis, idleTimeoutMillis, maxRequestLineBytes, maxHeaderBytes,
                maxNumHeaders, maxBodyBytes);
    }

    /**
     * The default connection cap: each client connection holds three descriptors (the client socket, the edge's
     * socket to the routes and the routes' end of it), and the process needs some for jars, the model and logs.
     */
    public static int defaultMaxConnections() {
        long maxFiles = 4096;
        if (java.lang.management.ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.UnixOperatingSystemMXBean unix) {
            maxFiles = unix.getMaxFileDescriptorCount();
        }
        return (int) Math.max(8, Math.min(1024, (maxFiles - 256) / 3));
    }
}
