package dev.tessera.serving.http.edge;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The link from the edge to the handler serving a request in the same process: the edge tags each request it
 * forwards with {@link #HEADER}, and when that client hangs up while the handler is still working (a non-streaming
 * completion has nothing to write until it ends, so only the edge sees the client go), the edge runs what the
 * handler registered under the tag, e.g. cancelling its engine requests.
 */
public final class ClientDisconnects {
    /** The request header carrying the edge's tag; a client's own header of this name is dropped. */
    public static final String HEADER = "X-Tessera-Edge-Request";

    private static final Map<String, Runnable> WATCHERS = new ConcurrentHashMap<>();

    private ClientDisconnects() {}

    /** Runs onGone if the client of the tagged request disconnects before the returned registration is closed. */
    public static Registration watch(String tag, Runnable onGone) {
        if (tag == null || tag.isEmpty()) return () -> {};
        WATCHERS.put(tag, onGone);
        return () -> WATCHERS.remove(tag, onGone);
    }

    /** Called by the edge when the client of a tagged request is gone. */
    static void gone(String tag) {
        Runnable r = WATCHERS.remove(tag);
        if (r != null) r.run();
    }

    /** Ends a {@link #watch}. */
    @FunctionalInterface
    public interface Registration extends AutoCloseable {
        @Override
        void close();
    }
}
