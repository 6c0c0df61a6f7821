package dev.tessera.serving.http;

import dev.tessera.serving.openai.ApiException;
import io.helidon.http.HeaderNames;
import io.helidon.http.Status;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

/** Writing JSON bodies and OpenAI error bodies; the one place exceptions become responses. */
public final class Responses {
    private Responses() {}

    public static void json(ServerResponse res, int status, Object body) {
        res.status(Status.create(status));
        res.header(HeaderNames.CONTENT_TYPE, "application/json");
        res.send(Json.bytes(body));
    }

    public static void error(ServerResponse res, ApiException e) {
        if (res.isSent()) {
            if (e.status() < 500) return;
            System.err.println("tessera serve: error after the response was sent: " + e.getMessage());
            return;
        }
        if (e.retryAfterSeconds() != null) res.header(HeaderNames.RETRY_AFTER, e.retryAfterSeconds().toString());
        json(res, e.status(), e.body());
    }

    /**
     * Runs a handler body, turning an {@link ApiException} into its response and anything else into a 500 with an
     * error body: no input takes the server down, and client mistakes are ApiExceptions (4xx), never 500s.
     */
    public static void guarded(ServerResponse res, Body body) {
        try {
            body.run();
        } catch (ApiException e) {
            error(res, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            error(res, ApiException.serverError("request interrupted"));
        } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
            if (isConnectionLost(e)) {
                // The client hung up while the answer was written: theirs, not a fault of ours, and no stack trace.
                System.err.println("tessera serve: client closed the connection before the response was written");
                return;
            }
            System.err.println("tessera serve: unexpected failure: " + e);
            e.printStackTrace(System.err);
            // The body names no exception class and echoes no request bytes; the log has the details.
            error(res, ApiException.serverError("internal error; the server log has the details"));
        }
    }

    /** A handler body that may throw. */
    @FunctionalInterface
    public interface Body {
        void run() throws InterruptedException;
    }

    /** The last route: no endpoint has this path. */
    public static void notFound(ServerRequest req, ServerResponse res) {
        error(res, ApiException.notFound("no route for " + req.prologue().method().text() + " " + req.path().path(), null, "unknown_url"));
    }

    /** After an endpoint's own methods: the path exists, the method does not. */
    public static void methodNotAllowed(ServerRequest req, ServerResponse res) {
        error(res, ApiException.methodNotAllowed("method " + req.prologue().method().text() + " is not allowed on " + req.path().absolute().path()));
    }

    /** Routing's error handler: whatever escaped a handler. */
    public static void unexpected(ServerRequest req, ServerResponse res, Throwable t) {
        if (t instanceof ApiException e) {
            error(res, e);
            return;
        }
        if (isConnectionLost(t)) {
            System.err.println("tessera serve: client closed the connection on " + req.path().path());
            return;
        }
        System.err.println("tessera serve: unexpected failure on " + req.path().path() + ": " + t);
        t.printStackTrace(System.err);
        error(res, ApiException.serverError("internal error; the server log has the details"));
    }

    /** Whether a failure is a lost connection (an I/O error somewhere in its causes, or Helidon's own). */
    static boolean isConnectionLost(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof java.io.IOException || c instanceof java.io.UncheckedIOException
                    || c.getClass().getName().equals("io.helidon.webserver.ServerConnectionException")) return true;
        }
        return false;
    }

    static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
