package dev.tessera.scheduler.engine;

/** The engine's waiting queue is full; the request was not queued. Callers answer "retry later". */
public final class EngineOverloadedException extends RuntimeException {
    public EngineOverloadedException(String message) {
        super(message);
    }
}
