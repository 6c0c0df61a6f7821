package dev.tessera.serving.http.edge;

/**
 * A request the edge answers itself, before the routes see it: framing, limits, timeouts. The connection is closed
 * after the answer, because after a framing error the edge no longer knows where the next request would start.
 */
final class EdgeError extends Exception {
    final int status;
    final String code;

    EdgeError(int status, String code, String message) {
        super(message, null, false, false);
        this.status = status;
        this.code = code;
    }

    static EdgeError badRequest(String message) {
        return new EdgeError(400, "bad_request", message);
    }
}
