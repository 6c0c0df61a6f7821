package dev.tessera.scheduler.engine;

import dev.tessera.kernels.KvBlockStore;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.scheduler.kv.KvBlockPool;
import dev.tessera.scheduler.sched.Scheduler;
import dev.tessera.scheduler.sched.SchedulerOutput;
import dev.tessera.scheduler.sched.SequenceState;
import dev.tessera.scheduler.worker.LocalModelRunner;
import dev.tessera.scheduler.worker.ModelRunner;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Iteration-level (continuous) batching over a paged KV cache, the way vLLM's engine core runs: one thread owns the
 * {@link Scheduler} and loops schedule → execute → update. The scheduler emits each step as plain data
 * ({@link SchedulerOutput}); a {@link ModelRunner} executes it wherever the layers live (this process, tensor-parallel
 * workers, ...); {@link TokenSampling} turns the results into tokens. Every way of running a model is served by this
 * one engine.
 *
 * <p>KV memory is one pool of fixed-size blocks, sized by {@code --kv-cache-memory}; runners hold the K/V behind the
 * block ids the pool assigns, so prefix caching and preemption work the same for every runner.
 */
public final class BatchingEngine implements Engine {
    private final ModelRunner runner;
    private final boolean ownsRunner;
    private final ModelConfig model;
    private final EngineConfig config;
    private final KvBlockPool pool;
    private final Scheduler scheduler;
    private final TokenSampling sampling;
    private final PromptScoring promptScoring;
    private final int maxSequenceTokens;
    private final String sequenceLimitName;
    private final WaitingQueue waiting;
    private final AtomicInteger numRunning = new AtomicInteger();
    // Read by other threads (gauges, tests); written by the engine thread after every change.
    private volatile int preemptedCount;
    private volatile int numFreeBlocks;
    private long preemptionsPublished;
    private final EngineStats stats = new EngineStats();
    private final Thread thread;
    private volatile boolean closed;

    /** The whole model in this process. @param model loaded with {@code maxBatchTokens >= maxBatchedTokens} and {@code maxLogitRows >= maxNumSeqs} */
    public BatchingEngine(LlamaModel model, EngineConfig config) {
        this(new LocalModelRunner(model), config, true);
    }

    /** @param ownsRunner close the runner with the engine */
    public BatchingEngine(ModelRunner runner, EngineConfig config, boolean ownsRunner) {
        if (config.maxBatchedTokens() > runner.maxBatchTokens())
            throw new IllegalArgumentException("--max-num-batched-tokens " + config.maxBatchedTokens() + " exceeds the model's batch limit of " + runner.maxBatchTokens());
        ModelConfig c = runner.config();
        long bytesPerBlock = KvBlockStore.bytesPerBlock(c.numLayers(), c.kvDim(), config.blockSize(), config.kvCacheType());
        long bytes = config.kvCacheMemoryBytes() > 0 ? config.kvCacheMemoryBytes()
                : config.defaultKvCacheMemory(bytesPerBlock / config.blockSize(), c.contextLength(), runner.defaultKvCacheBudget());
        int numBlocks = KvBlockPool.numBlocksFor(bytes, bytesPerBlock);
        if (numBlocks < 1)
            throw new IllegalArgumentException("--kv-cache-memory " + bytes + " holds no KV block: one block of " + config.blockSize()
                    + " positions takes " + bytesPerBlock + " bytes (" + config.kvCacheType() + ")");
        this.runner = runner;
        this.ownsRunner = ownsRunner;
        this.model = c;
        this.config = config;
        this.pool = new KvBlockPool(numBlocks, config.blockSize());
        runner.allocateKv(numBlocks, config.blockSize(), config.kvCacheType());
        long poolTokens = (long) numBlocks * config.blockSize();
        this.maxSequenceTokens = (int) Math.min(c.contextLength(), poolTokens);
        this.sequenceLimitName = poolTokens < c.contextLength()
                ? "the most tokens the KV cache holds (--kv-cache-memory " + bytes + " = " + numBlocks + " blocks of " + config.blockSize() + ")"
                : "this model's maximum context length";
        this.waiting = new WaitingQueue(config.maxWaiting());
        this.scheduler = new Scheduler(config, pool, c.vocabSize(), maxSequenceTokens, waiting::poll, new Scheduler.Endings() {
            @Override public void refuse(SequenceState s, String message) { s.handle.emit(new TokenEvent.Failed(message, false)); }
            @Override public void cancel(SequenceState s) { s.handle.emit(TokenSampling.finished(s, FinishReason.CANCELLED)); }
        });
        this.sampling = new TokenSampling(scheduler, c.vocabSize());
        this.promptScoring = new PromptScoring(c.vocabSize());
        // The gauges start true: requests cancelled while still queued never wake the engine to publish them.
        publishGauges();
        this.thread = Thread.ofPlatform().name("tessera-engine").daemon(true).unstarted(this::loop);
        thread.start();
    }

    @Override
    public RequestHandle submit(EngineRequest request) {
        if (closed || !thread.isAlive()) throw new IllegalStateException("engine is not running");
        return waiting.offer(request, maxSequenceTokens);
    }

    @Override public int numRunning() { return numRunning.get(); }

    @Override public int numWaiting() { return waiting.size() + preemptedCount; }

    @Override public int maxSequenceTokens() { return maxSequenceTokens; }

    @Override public String sequenceLimitName() { return sequenceLimitName; }

    @Override public EngineStats stats() { return stats; }

    @Override public java.util.Map<String, dev.tessera.scheduler.worker.RunnerGauge> runnerGauges() { return runner.gauges(); }

    public ModelRunner runner() { return runner; }

    /** KV blocks in the pool, and how many are free now (tests check that every finish gives its blocks back). */
    public int numKvBlocks() { return pool.numTotal(); }

    public int numFreeKvBlocks() { return numFreeBlocks; }

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
        if (ownsRunner) runner.close();
    }

    private void loop() {
        try {
            while (!closed) {
                if (scheduler.isIdle()) scheduler.admit(waiting.take());
                try {
                    step();
                } catch (RuntimeException | OutOfMemoryError e) {
                    // The batch failed as a whole: every running request gets the message, the engine goes on.
                    boolean unavailable = e instanceof DeviceUnavailableException;
                    System.err.println("tessera engine: step failed: " + e);
                    if (!unavailable) e.printStackTrace(System.err);
                    String message = unavailable ? e.getMessage() : e.getClass().getSimpleName() + ": " + e.getMessage();
                    runner.reset();
                    for (SequenceState s : scheduler.failAll()) s.handle.emit(new TokenEvent.Failed(message, unavailable));
                    publishGauges();
                }
            }
        } catch (InterruptedException e) {
            // closing
        } finally {
            scheduler.cancelAll();
            publishGauges();
        }
    }

    /** One iteration: schedule, execute on the runner, sample and emit. */
    private void step() {
        if (closed) return;
        SchedulerOutput out = scheduler.schedule();
        publishGauges();
        if (out == null) return;
        List<SequenceState> batch = scheduler.scheduled();
        int rows = out.numLogitRows();
        float[] logits = out.argmaxOnly() ? null : new float[rows * model.vocabSize()];
        int[] ids = out.argmaxOnly() ? new int[rows] : null;
        runner.execute(out, logits, ids);
        stats.iteration(out.numTokens());
        scheduler.completed(batch);
        // Each sequence's logit rows are its chunk's last: prompt positions being scored, then the sampled row.
        List<SequenceState> sampled = new ArrayList<>(batch.size());
        int[] sampledRows = new int[batch.size()];
        for (int i = 0, row = 0; i < batch.size(); i++) {
            SequenceState s = batch.get(i);
            SchedulerOutput.ScheduledSequence q = out.sequences().get(i);
            int n = q.logitRows(), end = s.numComputed();
            boolean samples = s.samples();
            int promptRows = Scheduler.promptRows(s, end - q.tokens().length, end);
            if (promptRows > 0) promptScoring.score(s, logits, row, promptRows);
            if (s.handle.request().scoresPrompt() && !s.scoringPrompt() && !s.promptLogprobsSent) {
                s.promptLogprobsSent = true;
                s.handle.emit(new TokenEvent.PromptLogprobs(s.promptChosen, s.promptTop));
            }
            if (s.catchesUp() && s.limit == 0) sampling.finish(s, FinishReason.LENGTH);  // max_tokens 0: the prompt was all
            if (samples) {
                sampledRows[sampled.size()] = row + n - 1;
                sampled.add(s);
            }
            row += n;
        }
        sampling.update(sampled, sampledRows, logits, ids);
        publishGauges();
    }

    private void publishGauges() {
        numRunning.set(scheduler.numRunning());
        preemptedCount = scheduler.numPreempted();
        numFreeBlocks = pool.numFree();
        for (long p = scheduler.numPreemptions(); preemptionsPublished < p; preemptionsPublished++) stats.preempted();
        stats.kvCache(pool.numUsed(), pool.numTotal());
        stats.prefixCache(pool.numQueriedTokens(), pool.numHitTokens());
    }
}
