package dev.tessera.scheduler.engine;

import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.sample.Sampler;
import dev.tessera.models.sample.TokenLogprob;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The first {@link Engine}: one request at a time on its own engine thread, through {@link SequenceGenerator}, with a
 * bounded FIFO of waiting requests. The continuous-batching engine replaces it behind the same interface.
 */
public final class SerialEngine implements Engine {
    private static final TokenLogprob[] NO_LOGPROBS = new TokenLogprob[0];

    private final SequenceModel model;
    private final SequenceGenerator generator;
    private final WaitingQueue waiting;
    private final AtomicInteger numRunning = new AtomicInteger();
    private final Thread thread;
    private volatile boolean closed;

    /** @param maxWaiting requests that may wait while one runs; one more is refused */
    public SerialEngine(LlamaModel model, int maxWaiting) {
        this(new LocalSequenceModel(model), maxWaiting);
    }

    /** @param maxWaiting requests that may wait while one runs; one more is refused */
    public SerialEngine(SequenceModel model, int maxWaiting) {
        this.model = model;
        this.generator = new SequenceGenerator(model);
        this.waiting = new WaitingQueue(maxWaiting);
        this.thread = Thread.ofPlatform().name("tessera-engine").daemon(true).unstarted(this::loop);
        thread.start();
    }

    @Override
    public RequestHandle submit(EngineRequest request) {
        if (closed || !thread.isAlive()) throw new IllegalStateException("engine is not running");
        return waiting.offer(request, model.config().contextLength());
    }

    @Override public int numRunning() { return numRunning.get(); }

    @Override public int numWaiting() { return waiting.size(); }

    @Override public int maxSequenceTokens() { return model.config().contextLength(); }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        waiting.cancelAll();
    }

    private void loop() {
        while (!closed) {
            RequestHandle handle;
            try {
                handle = waiting.take();
            } catch (InterruptedException e) {
                return;
            }
            numRunning.incrementAndGet();
            try {
                run(handle);
            } catch (RuntimeException | OutOfMemoryError e) {
                // One request's failure must not take the engine down: it gets the message, the next one runs.
                // The KV cache is closed by SequenceGenerator's try-with-resources on the way out.
                boolean unavailable = e instanceof DeviceUnavailableException;
                System.err.println("tessera engine: request " + handle.request().id() + " failed: " + e);
                if (!unavailable) e.printStackTrace(System.err);
                handle.emit(new TokenEvent.Failed(unavailable ? e.getMessage() : e.getClass().getSimpleName() + ": " + e.getMessage(), unavailable));
            } finally {
                numRunning.decrementAndGet();
            }
        }
    }

    private void run(RequestHandle handle) {
        EngineRequest r = handle.request();
        long queueNanos = System.nanoTime() - handle.submitNanos();
        if (handle.isCancelled()) {
            handle.emit(WaitingQueue.cancelledBeforeStart(handle, queueNanos));
            return;
        }
        Sampler sampler = new Sampler(r.params(), model.config().vocabSize());
        boolean logprobs = r.returnLogprobs();
        int[] delivered = new int[1];
        SequenceGenerator.Result result = generator.generate(r.promptTokens(), sampler, r.maxTokens(), r.isStop(), token -> {
            if (closed || handle.isCancelled()) return false;
            handle.emit(new TokenEvent.Token(token, logprobs ? sampler.chosen() : null,
                    logprobs ? sampler.top() : NO_LOGPROBS));
            delivered[0]++;
            return true;
        });
        FinishReason reason;
        if (handle.isCancelled() || closed) reason = FinishReason.CANCELLED;
        else reason = result.finishReason().equals("stop") ? FinishReason.STOP : FinishReason.LENGTH;
        // Counted here, not from the result: a token the sink refused is in the result but was never delivered.
        handle.emit(new TokenEvent.Finished(reason, result.numPromptTokens(), delivered[0], queueNanos,
                result.prefillNanos(), result.decodeNanos()));
    }
}
