package dev.tessera.scheduler.engine;

import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The caller's side of one submitted request: a queue of {@link TokenEvent}s filled by the engine thread, and
 * {@link #cancel()}. The engine checks {@link #isCancelled()} after every token, so a cancelled request stops within
 * one step and frees its KV memory. Events end with exactly one {@link TokenEvent.Finished} or
 * {@link TokenEvent.Failed}.
 */
public final class RequestHandle {
    private final EngineRequest request;
    private final long submitNanos = System.nanoTime();
    private final LinkedBlockingQueue<TokenEvent> events = new LinkedBlockingQueue<>();
    private volatile boolean cancelled;
    private volatile Runnable onCancel = () -> {};

    public RequestHandle(EngineRequest request) {
        this.request = request;
    }

    public EngineRequest request() { return request; }

    /** {@link System#nanoTime()} at submit. */
    public long submitNanos() { return submitNanos; }

    /** Waits for the next event. */
    public TokenEvent take() throws InterruptedException {
        return events.take();
    }

    /** Waits up to the timeout; null when none arrived. */
    public TokenEvent poll(long timeout, TimeUnit unit) throws InterruptedException {
        return events.poll(timeout, unit);
    }

    /** Asks the engine to stop this request; idempotent, safe from any thread. Events may still arrive. */
    public void cancel() {
        if (cancelled) return;
        cancelled = true;
        onCancel.run();
    }

    public boolean isCancelled() { return cancelled; }

    // Engine side.

    /** Called by the engine to deliver an event. */
    public void emit(TokenEvent event) {
        events.add(event);
    }

    /** Engine hook run on cancel (e.g. to drop the request from a waiting queue at once). */
    public void onCancel(Runnable hook) {
        this.onCancel = hook;
        if (cancelled) hook.run();
    }
}
