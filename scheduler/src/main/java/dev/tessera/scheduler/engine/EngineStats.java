package dev.tessera.scheduler.engine;

import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntConsumer;

/**
 * Live counters of an engine for {@code /metrics}: written by the engine thread, read from any thread.
 * Prefix-cache queries and hits count prompt tokens, as vLLM's do.
 */
public final class EngineStats {
    /** The stats of an engine that keeps none: all zero. */
    static final EngineStats NONE = new EngineStats();

    private volatile double kvCacheUsage;
    private volatile int kvBlocksTotal;
    private volatile long prefixQueryTokens;
    private volatile long prefixHitTokens;
    private final LongAdder preemptions = new LongAdder();
    private final LongAdder iterations = new LongAdder();
    private volatile IntConsumer iterationListener = n -> {};

    /** Fraction of KV blocks held by sequences, 0..1. */
    public double kvCacheUsage() { return kvCacheUsage; }

    public int kvBlocksTotal() { return kvBlocksTotal; }

    public long prefixQueryTokens() { return prefixQueryTokens; }

    public long prefixHitTokens() { return prefixHitTokens; }

    public long preemptions() { return preemptions.sum(); }

    public long iterations() { return iterations.sum(); }

    /** Called with the number of tokens of every step the engine runs (the tokens-per-iteration histogram). */
    public void onIteration(IntConsumer listener) {
        this.iterationListener = listener;
    }

    // Engine side.

    void kvCache(int usedBlocks, int totalBlocks) {
        this.kvBlocksTotal = totalBlocks;
        this.kvCacheUsage = totalBlocks == 0 ? 0 : (double) usedBlocks / totalBlocks;
    }

    /** The pool's running totals of prefix-cache lookups. */
    void prefixCache(long queriedTokens, long hitTokens) {
        this.prefixQueryTokens = queriedTokens;
        this.prefixHitTokens = hitTokens;
    }

    void preempted() {
        preemptions.increment();
    }

    void iteration(int numTokens) {
        iterations.increment();
        iterationListener.accept(numTokens);
    }
}
