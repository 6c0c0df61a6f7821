package dev.tessera.serving.http;

import dev.tessera.serving.ServingContext;
import dev.tessera.serving.metrics.ServingMetrics;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.HttpRules;
import io.helidon.webserver.http.HttpService;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/** {@code /health} (200 while the server can accept connections), {@code /ready} (503 until the model is loaded), {@code /metrics}. */
public final class HealthService implements HttpService {
    private final ServingContext context;

    public HealthService(ServingContext context) {
        this.context = context;
    }

    @Override
    public void routing(HttpRules rules) {
        rules.get("/health", this::health)
                .any("/health", Responses::methodNotAllowed)
                .get("/ready", this::ready)
                .any("/ready", Responses::methodNotAllowed)
                .get("/metrics", this::metrics)
                .any("/metrics", Responses::methodNotAllowed);
    }

    /** 200 while the server can take connections; 503 when its listener cannot accept (e.g. out of descriptors). */
    private void health(ServerRequest req, ServerResponse res) {
        String failure = context.listenerFailure();
        if (failure == null) Responses.json(res, 200, Map.of("status", "ok"));
        else Responses.json(res, 503, Map.of("status", "unhealthy", "reason", failure));
    }

    private void ready(ServerRequest req, ServerResponse res) {
        Responses.guarded(res, () -> {
            context.requireModel();
            Responses.json(res, 200, Map.of("status", "ready"));
        });
    }

    private void metrics(ServerRequest req, ServerResponse res) {
        Responses.guarded(res, () -> {
            res.header(HeaderNames.CONTENT_TYPE, ServingMetrics.CONTENT_TYPE);
            res.send(context.metrics().scrape().getBytes(StandardCharsets.UTF_8));
        });
    }
}
