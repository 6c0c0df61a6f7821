package dev.tessera.scheduler.worker;

import dev.tessera.kernels.KvCacheType;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.scheduler.sched.SchedulerOutput;

/**
 * Executes the steps the scheduler emits. The engine knows nothing of where layers run: in this process
 * ({@link LocalModelRunner}), split over tensor-parallel workers, with attention on memory nodes, or with experts
 * spread over devices — each is a runner. Called from the engine thread only.
 */
public interface ModelRunner extends AutoCloseable {
    ModelConfig config();

    /** Most token rows one step may hold. */
    int maxBatchTokens();

    /** Bytes of KV memory the engine may take when the user does not say ({@code --kv-cache-memory}). */
    long defaultKvCacheBudget();

    /** Sets up paged KV memory for {@code numBlocks} blocks, addressed by the ids of the scheduler's pool. Once. */
    void allocateKv(int numBlocks, int blockSize, KvCacheType type);

    /**
     * Runs one step. When {@code step.argmaxOnly()}, fills {@code ids[i]} with the argmax of the i-th logit row
     * (-1 when no logit is finite); otherwise fills {@code logits} ([numLogitRows][vocabSize]).
     *
     * @throws dev.tessera.scheduler.engine.DeviceUnavailableException when a device it needs is gone; the KV state of
     *         every sequence is then lost (the engine fails them and drops its prefix cache)
     */
    void execute(SchedulerOutput step, float[] logits, int[] ids);

    /** Forgets every sequence's state: the engine released them all after a failed step. */
    void reset();

    /** One line per device for logs (master first); empty when there is nothing to say. */
    default java.util.List<String> stats() {
        return java.util.List.of();
    }

    /** Live gauges for metrics (Micrometer's dotted names), read from other threads; none by default. */
    default java.util.Map<String, RunnerGauge> gauges() {
        return java.util.Map.of();
    }

    @Override
    void close();
}
