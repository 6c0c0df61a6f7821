package dev.tessera.serving.http;

import io.helidon.webserver.http.ServerRequest;

/**
 * How a request really ended when its status alone does not say it: a stream's 200 went out with the headers, so a
 * client that hung up or a shutdown that cut it off is noted here and printed by {@link RequestLog}.
 */
public final class RequestOutcome {
    private volatile String note;

    /** The request's outcome holder ({@link RequestLog} registers one per request); a fresh one if none. */
    public static RequestOutcome of(ServerRequest req) {
        return req.context().get(RequestOutcome.class).orElseGet(RequestOutcome::new);
    }

    static RequestOutcome register(ServerRequest req) {
        RequestOutcome o = new RequestOutcome();
        req.context().register(o);
        return o;
    }

    /** Sets the note, e.g. "client closed the connection; generation cancelled". */
    public void note(String text) {
        note = text;
    }

    public String note() {
        return note;
    }
}
