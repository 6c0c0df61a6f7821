package dev.tessera.serving.http.edge;

import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;

/**
 * A client socket's input, buffered, where every read must finish by a deadline: a client that sends a request head
 * a byte at a time cannot hold its connection longer than the header timeout, however often it sends.
 */
final class DeadlineInput {
    private final Socket socket;
    private final InputStream in;
    private final byte[] buf = new byte[16384];
    private int pos;
    private int limit;
    private long deadlineNanos = Long.MAX_VALUE;
    private boolean eof;

    DeadlineInput(Socket socket) throws IOException {
        this.socket = socket;
        this.in = socket.getInputStream();
    }

    /** Reads after this many milliseconds from now fail with {@link SocketTimeoutException}. */
    void deadlineIn(long millis) {
        deadlineNanos = System.nanoTime() + millis * 1_000_000L;
    }

    /** Whether a byte is buffered already (a pipelined request). */
    boolean hasBuffered() {
        return pos < limit;
    }

    /** The next byte, or -1 at the end of the stream. */
    int read() throws IOException {
        if (pos == limit && !fill()) return -1;
        return buf[pos++] & 0xff;
    }

    /** Up to len bytes, at least one unless the stream ended (then -1). */
    int read(byte[] b, int off, int len) throws IOException {
        if (pos == limit && !fill()) return -1;
        int n = Math.min(len, limit - pos);
        System.arraycopy(buf, pos, b, off, n);
        pos += n;
        return n;
    }

    private boolean fill() throws IOException {
        if (eof) return false;
        long leftMillis = (deadlineNanos - System.nanoTime()) / 1_000_000L;
        if (leftMillis <= 0) throw new SocketTimeoutException("deadline passed");
        socket.setSoTimeout((int) Math.min(Integer.MAX_VALUE, leftMillis));
        int n = in.read(buf, 0, buf.length);
        if (n < 0) {
            eof = true;
            return false;
        }
        pos = 0;
        limit = n;
        return true;
    }

    /**
     * Whether the client has closed its side, checked without waiting and without losing bytes: what arrives
     * meanwhile (a pipelined request) stays buffered for the next read.
     */
    boolean clientClosed() {
        if (pos < limit) return false;
        if (eof) return true;
        try {
            socket.setSoTimeout(1);
            int n = in.read(buf, 0, buf.length);
            if (n < 0) {
                eof = true;
                return true;
            }
            pos = 0;
            limit = n;
            return false;
        } catch (SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true;
        }
    }
}
