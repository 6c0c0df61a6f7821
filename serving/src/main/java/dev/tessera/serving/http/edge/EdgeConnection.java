package dev.tessera.serving.http.edge;

import java.io.BufferedOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * One client connection: reads each request strictly within the limits, forwards it to the routes over a kept-alive
 * loopback connection, and relays the answer. Anything the edge refuses is answered with an OpenAI error body and
 * the connection is closed, its unread bytes discarded, never parsed as another request.
 */
final class EdgeConnection implements Runnable {
    /** Hop-by-hop headers (RFC 9110 section 7.6.1) and those the edge sets itself. */
    private static final Set<String> NOT_FORWARDED = Set.of("connection", "keep-alive", "proxy-connection", "te", "trailer",
            "transfer-encoding", "upgrade", "content-length", "expect", "host", ClientDisconnects.HEADER.toLowerCase(Locale.ROOT));
    /** How long a refused connection's unread input is drained before it is closed, so the client reads the answer. */
    private static final long LINGER_MILLIS = 2000;

    private final EdgeServer server;
    private final Socket client;
    private final long id;
    private Socket upstream;
    private UpstreamInput upstreamIn;
    private OutputStream upstreamOut;
    private long numRequests;
    private volatile boolean idle = true;

    EdgeConnection(EdgeServer server, Socket client, long id) {
        this.server = server;
        this.client = client;
        this.id = id;
    }

    /** Between requests (waiting for the next one's first byte). */
    boolean isIdle() {
        return idle;
    }

    void closeNow() {
        closeQuietly(client);
    }

    @Override
    public void run() {
        DeadlineInput in = null;
        OutputStream out = null;
        RequestHead head = null;
        try {
            client.setTcpNoDelay(true);
            in = new DeadlineInput(client);
            out = new BufferedOutputStream(client.getOutputStream(), 16384);
            EdgeLimits limits = server.limits();
            while (true) {
                idle = true;
                head = null;
                in.deadlineIn(numRequests == 0 ? limits.headerTimeoutMillis() : limits.idleTimeoutMillis());
                if (!in.hasBuffered() && in.read(new byte[0], 0, 0) < 0) return;
                idle = false;
                in.deadlineIn(limits.headerTimeoutMillis());
                head = RequestHead.read(in, limits);
                if (head == RequestHead.NONE) return;
                numRequests++;
                if (!serve(head, in, out, limits)) return;
            }
        } catch (EdgeError e) {
            refuse(in, out, e, head);
        } catch (SocketTimeoutException e) {
            if (!idle) {
                refuse(in, out, new EdgeError(408, "request_timeout", "request head or body did not arrive within "
                        + (server.limits().headerTimeoutMillis() / 1000.0) + " s"), head);
            }
        } catch (UpstreamUnavailable e) {
            refuse(in, out, new EdgeError(503, "out_of_file_descriptors", "the server is out of file descriptors; retry later"), head);
        } catch (EOFException | UpstreamInput.ClientGone e) {
            // the client left; nothing to answer
        } catch (IOException e) {
            // a reset connection or a failed write: the client is gone
        } finally {
            closeQuietly(upstream);
            closeQuietly(client);
            server.connectionClosed(this);
        }
    }

    /** Serves one request; false when the connection must close after it. */
    private boolean serve(RequestHead head, DeadlineInput in, OutputStream out, EdgeLimits limits) throws IOException, EdgeError {
        List<String> hosts = head.all("Host");
        if (head.minorVersion() == 1 && hosts.size() != 1) throw EdgeError.badRequest("an HTTP/1.1 request needs exactly one Host header, found " + hosts.size());
        long length = RequestBody.length(head);
        List<String> expect = head.tokens("Expect");
        boolean continue100 = expect.equals(List.of("100-continue"));
        if (!expect.isEmpty() && !continue100) throw new EdgeError(417, "expectation_failed", "only 'Expect: 100-continue' is supported");
        if (length > limits.maxBodyBytes()) {
            throw new EdgeError(413, "request_too_large", "request body of " + length + " bytes is over the limit of " + limits.maxBodyBytes() + " bytes");
        }
        if (continue100 && length != 0 && head.minorVersion() == 1) {
            out.write("HTTP/1.1 100 Continue\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
        }
        boolean keepAlive = head.minorVersion() == 1 && !head.tokens("Connection").contains("close") && !server.isDraining();
        boolean isHead = head.method().equals("HEAD");
        String tag = id + "-" + numRequests;
        // Bodies being received share one budget, so many connections uploading at once cannot exhaust the heap;
        // a body's share is returned once it is handed to the routes.
        long reserved = length == -1 ? limits.maxBodyBytes() : length;
        if (reserved > 0 && !server.reserveBody(reserved)) {
            throw new EdgeError(503, "server_busy", "the server is receiving too many request bodies at once; retry later");
        }
        ResponseRelay.Outcome outcome;
        try {
            try {
                in.deadlineIn(limits.idleTimeoutMillis());
                byte[] body = length == -1 ? RequestBody.readChunked(in, limits) : length == 0 ? new byte[0] : RequestBody.readFixed(in, length);
                forward(head, isHead ? "GET" : head.method(), hosts.isEmpty() ? "localhost" : hosts.get(0), body, tag, in);
            } finally {
                if (reserved > 0) server.releaseBody(reserved);
            }
            outcome = ResponseRelay.relay(upstreamIn, out, isHead, head.minorVersion() == 0, keepAlive);
        } catch (IOException e) {
            ClientDisconnects.gone(tag);
            throw e;
        }
        server.upstreamAnswered();
        if (!outcome.upstreamReusable()) {
            closeQuietly(upstream);
            upstream = null;
        }
        return outcome.clientKeepAlive();
    }

    private void forward(RequestHead head, String method, String host, byte[] body, String tag, DeadlineInput in) throws IOException {
        StringBuilder sb = new StringBuilder(method).append(' ').append(originForm(head.target())).append(" HTTP/1.1\r\n");
        Set<String> connectionOptions = Set.copyOf(head.tokens("Connection"));
        for (RequestHead.Header h : head.headers()) {
            String lower = h.name().toLowerCase(Locale.ROOT);
            if (NOT_FORWARDED.contains(lower) || connectionOptions.contains(lower)) continue;
            sb.append(h.name()).append(": ").append(h.value()).append("\r\n");
        }
        sb.append("Host: ").append(host).append("\r\n");
        if (body.length > 0 || !method.equals("GET") && !method.equals("HEAD") && !method.equals("DELETE")) {
            sb.append("Content-Length: ").append(body.length).append("\r\n");
        }
        sb.append(ClientDisconnects.HEADER).append(": ").append(tag).append("\r\n\r\n");
        byte[] bytes = sb.toString().getBytes(StandardCharsets.ISO_8859_1);
        boolean reused = upstream != null;
        if (!reused && !server.hasFileRoom()) throw new UpstreamUnavailable();
        try {
            if (upstream == null) connectUpstream(in);
            upstreamOut.write(bytes);
            upstreamOut.write(body);
            upstreamOut.flush();
        } catch (IOException e) {
            // A kept-alive connection to the routes may have been closed meanwhile: one fresh try.
            if (!reused) throw e;
            closeQuietly(upstream);
            connectUpstream(in);
            upstreamOut.write(bytes);
            upstreamOut.write(body);
            upstreamOut.flush();
        }
    }

    private void connectUpstream(DeadlineInput in) throws IOException {
        Socket s = new Socket();
        try {
            s.setTcpNoDelay(true);
            s.connect(new InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), server.upstreamPort()), 5000);
        } catch (IOException e) {
            closeQuietly(s);
            server.upstreamFailed(e);
            throw e;
        }
        upstream = s;
        upstreamIn = new UpstreamInput(s, in);
        upstreamOut = new BufferedOutputStream(s.getOutputStream(), 16384);
    }

    /** An absolute-form target ({@code http://host/path}) becomes its path, as a server must accept it. */
    private static String originForm(String target) {
        String lower = target.toLowerCase(Locale.ROOT);
        if (lower.startsWith("http://") || lower.startsWith("https://")) {
            int slash = target.indexOf('/', lower.indexOf("//") + 2);
            return slash < 0 ? "/" : target.substring(slash);
        }
        return target;
    }

    private void refuse(DeadlineInput in, OutputStream out, EdgeError e, RequestHead head) {
        server.refused(e, head == null ? null : head.method() + " " + logPath(head.target()));
        if (out == null) return;
        try {
            EdgeReplies.error(out, e.status, e.code, e.getMessage(), head == null || !head.method().equals("HEAD"));
            lingeringClose(in);
        } catch (IOException ignored) {
            // the client is gone already
        }
    }

    /**
     * Half-closes, then reads and drops what the client still sends for a moment: closing a socket with unread
     * input sends a reset, which can destroy the answer before the client reads it.
     */
    private void lingeringClose(DeadlineInput in) {
        try {
            client.shutdownOutput();
            if (in == null) return;
            in.deadlineIn(LINGER_MILLIS);
            byte[] sink = new byte[16384];
            while (in.read(sink, 0, sink.length) >= 0) {
                // discard
            }
        } catch (IOException ignored) {
            // timed out or reset: close now
        }
    }

    private static void closeQuietly(Socket s) {
        if (s == null) return;
        try {
            s.close();
        } catch (IOException ignored) {
            // closing
        }
    }

    /** No descriptor is left for a connection to the routes (the routes' own accept must not starve). */
    private static final class UpstreamUnavailable extends IOException {
        UpstreamUnavailable() {
            super("out of file descriptors", null);
        }
    }

    /** The path of a target for the log, without its query, printable and bounded in length. */
    private static String logPath(String target) {
        int q = target.indexOf('?');
        String path = q < 0 ? target : target.substring(0, q);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < path.length() && sb.length() < 80; i++) {
            char c = path.charAt(i);
            sb.append(c > 0x20 && c < 0x7f ? c : '?');
        }
        return sb.toString();
    }
}
