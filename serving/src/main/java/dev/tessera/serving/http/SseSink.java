package dev.tessera.serving.http;

import io.helidon.http.HeaderNames;
import io.helidon.http.Status;
import io.helidon.webserver.http.ServerResponse;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * Server-sent events as OpenAI streams them: {@code data: {json}\n\n} per chunk, {@code data: [DONE]\n\n} at the end.
 * Every event is flushed at once. A failed write means the client is gone: {@link #send} then returns false, and the
 * caller cancels generation.
 */
public final class SseSink implements AutoCloseable {
    private static final byte[] DATA = "data: ".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] END = "\n\n".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);

    private final OutputStream out;
    private boolean broken;

    public SseSink(ServerResponse res) {
        res.status(Status.OK_200);
        res.header(HeaderNames.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        res.header(HeaderNames.CACHE_CONTROL, "no-cache");
        this.out = res.outputStream();
    }

    /** Sends one JSON event; false when the client is gone (then and on every later call). */
    public boolean send(Object event) {
        return write(DATA, Json.bytes(event), END);
    }

    /** Sends {@code data: [DONE]}. */
    public boolean done() {
        return write(DONE);
    }

    public boolean isBroken() {
        return broken;
    }

    private boolean write(byte[]... parts) {
        if (broken) return false;
        try {
            for (byte[] p : parts) out.write(p);
            out.flush();
            return true;
        } catch (IOException | UncheckedIOException e) {
            broken = true;
            return false;
        } catch (RuntimeException e) {
            // Helidon reports a closed connection with its own unchecked exceptions.
            broken = true;
            return false;
        }
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (IOException | RuntimeException e) {
            broken = true;
        }
    }
}
