package dev.tessera.serving.http.edge;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Copies the routes' response to the client, fitting it to the request: no body for {@code HEAD}, no chunked
 * encoding for an HTTP/1.0 client (the body then ends when the connection closes), and {@code Connection: close}
 * when the connection ends after this response. Chunks are passed on as they come, so streamed tokens keep their
 * timing.
 */
final class ResponseRelay {
    private static final int MAX_LINE = 16384;

    /**
     * @param status         the response status
     * @param clientKeepAlive whether the client connection may carry another request
     * @param upstreamReusable whether the connection to the routes may carry another request
     */
    record Outcome(int status, boolean clientKeepAlive, boolean upstreamReusable) {}

    private ResponseRelay() {}

    static Outcome relay(UpstreamInput up, OutputStream client, boolean head, boolean http10, boolean keepAlive) throws IOException {
        String statusLine = up.readLine(MAX_LINE);
        if (statusLine == null || !statusLine.startsWith("HTTP/1.1 ") || statusLine.length() < 12) {
            throw new IOException("the routes closed the connection or sent no status line");
        }
        int status = Integer.parseInt(statusLine.substring(9, 12));
        List<String[]> headers = new ArrayList<>();
        long contentLength = -1;
        boolean chunked = false;
        boolean upstreamClose = false;
        while (true) {
            String line = up.readLine(MAX_LINE);
            if (line == null) throw new IOException("the routes closed the connection within a response head");
            if (line.isEmpty()) break;
            int colon = line.indexOf(':');
            if (colon <= 0) continue;
            String name = line.substring(0, colon).trim();
            String value = line.substring(colon + 1).trim();
            switch (name.toLowerCase(Locale.ROOT)) {
                case "content-length" -> contentLength = Long.parseLong(value);
                case "transfer-encoding" -> chunked = value.toLowerCase(Locale.ROOT).contains("chunked");
                case "connection" -> upstreamClose |= value.toLowerCase(Locale.ROOT).contains("close");
                case "keep-alive" -> { }
                default -> headers.add(new String[] {name, value});
            }
        }
        byte[] replacement = null;
        if (status >= 400 && contentLength == 0 && !chunked) {
            // Helidon answers what it refuses itself (a malformed query or header value) with an empty body: give
            // the client the OpenAI error body every other error has.
            replacement = EdgeReplies.body(status, "request_rejected", "the request was rejected: "
                    + EdgeReplies.reason(status).toLowerCase(Locale.ROOT) + " (a malformed path, query or header value)");
            headers.removeIf(h -> h[0].equalsIgnoreCase("content-type"));
            headers.add(new String[] {"Content-Type", "application/json"});
            contentLength = replacement.length;
        }
        boolean noBody = head || status == 204 || status == 304 || status < 200;
        boolean closeDelimited = !chunked && contentLength < 0 && !(status == 204 || status == 304 || status < 200);
        boolean clientKeepAlive = keepAlive && !http10 && !(closeDelimited && !head);

        StringBuilder out = new StringBuilder(statusLine).append("\r\n");
        for (String[] h : headers) out.append(h[0]).append(": ").append(h[1]).append("\r\n");
        if (contentLength >= 0) out.append("Content-Length: ").append(contentLength).append("\r\n");
        boolean reChunk = chunked && !http10 && !noBody;
        if (reChunk) out.append("Transfer-Encoding: chunked\r\n");
        out.append(clientKeepAlive ? "" : "Connection: close\r\n").append("\r\n");
        client.write(out.toString().getBytes(StandardCharsets.ISO_8859_1));
        client.flush();

        boolean upstreamReusable = !upstreamClose && !closeDelimited;
        if (replacement != null) {
            if (!noBody) client.write(replacement);
            client.flush();
            return new Outcome(status, clientKeepAlive, upstreamReusable);
        }
        if (noBody) {
            // A HEAD answered from GET still has the body on the wire: the connection to the routes is not reused.
            return new Outcome(status, clientKeepAlive, upstreamReusable && !(head && (chunked || contentLength > 0)));
        }
        byte[] buf = new byte[16384];
        if (chunked) {
            while (true) {
                String sizeLine = up.readLine(1024);
                if (sizeLine == null) throw new IOException("the routes closed the connection within a chunked body");
                int semi = sizeLine.indexOf(';');
                long size = Long.parseLong((semi < 0 ? sizeLine : sizeLine.substring(0, semi)).trim(), 16);
                if (size == 0) {
                    while (true) {
                        String trailer = up.readLine(MAX_LINE);
                        if (trailer == null || trailer.isEmpty()) break;
                    }
                    if (reChunk) client.write("0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                    client.flush();
                    break;
                }
                if (reChunk) client.write((Long.toHexString(size) + "\r\n").getBytes(StandardCharsets.US_ASCII));
                copy(up, client, size, buf);
                up.readLine(2);
                if (reChunk) client.write("\r\n".getBytes(StandardCharsets.US_ASCII));
                client.flush();
            }
        } else if (contentLength >= 0) {
            copy(up, client, contentLength, buf);
            client.flush();
        } else {
            for (int n; (n = up.read(buf, 0, buf.length)) > 0; ) client.write(buf, 0, n);
            client.flush();
        }
        return new Outcome(status, clientKeepAlive, upstreamReusable);
    }

    private static void copy(UpstreamInput up, OutputStream client, long n, byte[] buf) throws IOException {
        while (n > 0) {
            int r = up.read(buf, 0, (int) Math.min(buf.length, n));
            if (r < 0) throw new IOException("the routes closed the connection within a response body");
            client.write(buf, 0, r);
            n -= r;
        }
    }
}
