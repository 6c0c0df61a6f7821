package dev.tessera.scheduler.engine;

/**
 * Runs generation requests; speaks token ids only. {@link #submit} never blocks on generation: it queues the request
 * and returns a handle whose events arrive as tokens are sampled. Implementations decide how many requests run at
 * once ({@link BatchingEngine}: up to --max-num-seqs), so callers consume each handle on its own.
 */
public interface Engine extends AutoCloseable {
    /**
     * Queues a request.
     *
     * @throws EngineOverloadedException when the waiting queue is full (the request is not queued)
     */
    RequestHandle submit(EngineRequest request);

    /** Requests being computed now. */
    int numRunning();

    /** Requests queued and not yet started. */
    int numWaiting();

    /** The most tokens one sequence (prompt plus generated) can hold. */
    int maxSequenceTokens();

    /** What bounds {@link #maxSequenceTokens}, for error messages: "this model's maximum context length" unless less KV memory does. */
    default String sequenceLimitName() {
        return "this model's maximum context length";
    }

    /** Live counters (KV usage, prefix cache, preemptions, iterations); an engine without a paged cache reports zeros. */
    default EngineStats stats() {
        return EngineStats.NONE;
    }

    /**
     * Gauges of the runner beneath (name in Micrometer's dotted form → live value), e.g. attention offloading's share of
     * step time spent waiting on the network; none for a local runner.
     */
    default java.util.Map<String, dev.tessera.scheduler.worker.RunnerGauge> runnerGauges() {
        return java.util.Map.of();
    }

    /** Stops the engine: queued and running requests finish as {@link FinishReason#CANCELLED}. */
    @Override
    void close();
}
