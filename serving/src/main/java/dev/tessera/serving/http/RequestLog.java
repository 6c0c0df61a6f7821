package dev.tessera.serving.http;

import dev.tessera.serving.metrics.ServingMetrics;
import io.helidon.webserver.http.Filter;
import io.helidon.webserver.http.FilterChain;
import io.helidon.webserver.http.RoutingRequest;
import io.helidon.webserver.http.RoutingResponse;

import java.io.PrintStream;

/** One stderr line per request (method, path, status, latency) and the requests-by-status counter. */
public final class RequestLog implements Filter {
    private final ServingMetrics metrics;
    private final PrintStream log;

    public RequestLog(ServingMetrics metrics, PrintStream log) {
        this.metrics = metrics;
        this.log = log;
    }

    @Override
    public void filter(FilterChain chain, RoutingRequest req, RoutingResponse res) {
        long t0 = System.nanoTime();
        RequestOutcome outcome = RequestOutcome.register(req);
        try {
            chain.proceed();
        } finally {
            int status = res.status().code();
            // A streamed response is logged when its stream ends, so the latency covers the whole generation.
            String note = outcome.note();
            log.printf("tessera serve: %s %s %d %.1f ms%s%n", req.prologue().method().text(), req.path().absolute().path(), status,
                    (System.nanoTime() - t0) / 1e6, note == null ? "" : " (" + note + ")");
            metrics.httpResponse(status);
        }
    }
}
