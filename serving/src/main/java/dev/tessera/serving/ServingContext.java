package dev.tessera.serving;

import dev.tessera.serving.http.InFlight;
import dev.tessera.serving.metrics.ServingMetrics;
import dev.tessera.serving.openai.ApiException;

import java.util.function.Supplier;

/**
 * What every handler shares: the configuration, the metrics, and the model once it is loaded. The server listens
 * before the model is loaded; until {@link #ready} is called, {@link #requireModel()} answers 503.
 */
public final class ServingContext {
    private final ServingConfig config;
    private final ServingMetrics metrics;
    private volatile ServedModel model;
    private volatile String loadFailure;
    private final InFlight inFlight = new InFlight();
    private volatile boolean draining;
    private volatile int maxQueue = Integer.MAX_VALUE;
    private volatile Supplier<String> listenerFailure = () -> null;

    public ServingContext(ServingConfig config) {
        this.config = config;
        this.metrics = new ServingMetrics(() -> model == null ? null : model.engine());
    }

    public ServingConfig config() { return config; }

    public ServingMetrics metrics() { return metrics; }

    /** The served model, or a 503 while it is loading (or failed to load). */
    public ServedModel requireModel() {
        if (draining) throw ApiException.notReady("server is shutting down; send new requests elsewhere");
        ServedModel m = model;
        if (m != null) return m;
        String failure = loadFailure;
        throw ApiException.notReady(failure != null ? "model " + config.servedModelName() + " failed to load: " + failure
                : "model " + config.servedModelName() + " is still loading");
    }

    public boolean isReady() { return model != null && !draining; }

    /** The generations now running, for a graceful shutdown. */
    public InFlight inFlight() { return inFlight; }

    /** Shutting down: /ready and new requests answer 503, running ones may finish. */
    public void drain() { draining = true; }

    public boolean isDraining() { return draining; }

    /** The engine's waiting-queue size (--max-queue): a request with more choices than this can never be queued. */
    public int maxQueue() { return maxQueue; }

    public void maxQueue(int n) { maxQueue = n; }

    /** Why the server cannot accept connections now, or null when it can; /health reports it. */
    public String listenerFailure() { return listenerFailure.get(); }

    public void listenerFailure(Supplier<String> probe) { listenerFailure = probe; }

    public void ready(ServedModel m) {
        if (!m.name().equals(config.servedModelName())) {
            throw new IllegalStateException("served model is named " + m.name() + ", config says " + config.servedModelName());
        }
        metrics.bind(m.engine());
        this.model = m;
    }

    public void loadFailed(String message) { this.loadFailure = message; }

    /** Returns the model, if any, so the caller can close it; the context is no longer ready. */
    public ServedModel unload() {
        ServedModel m = model;
        model = null;
        return m;
    }
}
