package dev.tessera.serving.http.edge;

import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;

/**
 * The routes' response as the edge reads it: buffered, and while it waits (a non-streaming completion sends
 * nothing until it ends) it looks every {@link #POLL_MILLIS} ms whether the client is still there.
 */
final class UpstreamInput {
    static final int POLL_MILLIS = 200;

    /** Thrown when the client hung up while the edge waited for the routes. */
    static final class ClientGone extends IOException {
        ClientGone() {
            super("client closed the connection", null);
        }
    }

    private final InputStream in;
    private final DeadlineInput client;
    private final byte[] buf = new byte[16384];
    private int pos;
    private int limit;

    UpstreamInput(Socket socket, DeadlineInput client) throws IOException {
        socket.setSoTimeout(POLL_MILLIS);
        this.in = socket.getInputStream();
        this.client = client;
    }

    int read() throws IOException {
        if (pos == limit && !fill()) return -1;
        return buf[pos++] & 0xff;
    }

    int read(byte[] b, int off, int len) throws IOException {
        if (pos == limit && !fill()) return -1;
        int n = Math.min(len, limit - pos);
        System.arraycopy(buf, pos, b, off, n);
        pos += n;
        return n;
    }

    /** A line ending in CRLF or LF, without the ending, as ISO-8859-1; null at end of stream. */
    String readLine(int max) throws IOException {
        StringBuilder sb = new StringBuilder();
        while (true) {
            int b = read();
            if (b < 0) return sb.isEmpty() ? null : sb.toString();
            if (b == '\n') break;
            if (sb.length() >= max) throw new IOException("response line from the routes is longer than " + max + " bytes");
            sb.append((char) b);
        }
        int n = sb.length();
        if (n > 0 && sb.charAt(n - 1) == '\r') sb.setLength(n - 1);
        return sb.toString();
    }

    private boolean fill() throws IOException {
        while (true) {
            try {
                int n = in.read(buf, 0, buf.length);
                if (n < 0) return false;
                pos = 0;
                limit = n;
                return true;
            } catch (SocketTimeoutException e) {
                if (client.clientClosed()) throw new ClientGone();
            }
        }
    }
}
