package dev.tessera.scheduler.engine;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * The requests an engine has accepted but not started: bounded (a full queue refuses with
 * {@link EngineOverloadedException}), and a request cancelled while waiting leaves at once with a CANCELLED finish.
 */
final class WaitingQueue {
    private final BlockingQueue<RequestHandle> queue;
    private final int capacity;

    WaitingQueue(int capacity) {
        if (capacity < 1) throw new IllegalArgumentException("maxWaiting must be >= 1, found " + capacity);
        this.capacity = capacity;
        this.queue = new ArrayBlockingQueue<>(capacity);
    }

    /** Checks the prompt against the context, queues the request and returns its handle. */
    RequestHandle offer(EngineRequest request, int contextLength) {
        if (request.promptTokens().length >= contextLength)
            throw new IllegalArgumentException(request.id() + ": prompt of " + request.promptTokens().length
                    + " tokens does not fit the context of " + contextLength);
        RequestHandle handle = new RequestHandle(request);
        if (!queue.offer(handle)) throw new EngineOverloadedException(capacity + " requests are already waiting");
        handle.onCancel(() -> {
            // A request still waiting ends at once; a running one stops at the engine's next step.
            if (queue.remove(handle)) handle.emit(cancelledBeforeStart(handle, 0));
        });
        return handle;
    }

    RequestHandle take() throws InterruptedException {
        return queue.take();
    }

    RequestHandle poll() {
        return queue.poll();
    }

    int size() {
        return queue.size();
    }

    /** Ends every waiting request as CANCELLED (engine shutdown). */
    void cancelAll() {
        RequestHandle h;
        while ((h = queue.poll()) != null) h.emit(cancelledBeforeStart(h, 0));
    }

    /** The finish of a request that never ran. */
    static TokenEvent.Finished cancelledBeforeStart(RequestHandle handle, long queueNanos) {
        return new TokenEvent.Finished(FinishReason.CANCELLED, handle.request().promptTokens().length, 0, queueNanos, 0, 0);
    }
}
