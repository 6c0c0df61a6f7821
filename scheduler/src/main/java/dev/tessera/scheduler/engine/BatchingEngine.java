package dev.tessera.scheduler.engine;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.PagedKvCache;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.sample.Sampler;
import dev.tessera.models.sample.TokenLogprob;
import dev.tessera.scheduler.kv.BlockTable;
import dev.tessera.scheduler.kv.KvBlockPool;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Iteration-level (continuous) batching over a paged KV cache, the way vLLM schedules.
 *
 * <p>Every step forms one batch from the decode token of each running sequence plus prefill chunks, within
 * {@code maxBatchedTokens}, and runs it through the model together, so each weight matrix is read once per step for
 * all of them. Requests join and leave between steps, first come first served; a long prompt is prefilled in chunks
 * across steps so running sequences keep streaming.
 *
 * <p>KV memory is one {@link KvBlockStore} of fixed-size blocks; each sequence reaches it through a {@link BlockTable}
 * that grows a block at a time. Full blocks are published to the prefix cache, so a prompt that starts like an
 * earlier one adopts those blocks and skips their prefill. When a running sequence needs a block and none is free,
 * the newest running sequence is preempted: its blocks go back to the pool and it is recomputed later, ahead of new
 * requests. A request that fits the pool alone therefore always completes.
 */
public final class BatchingEngine implements Engine {
    private static final TokenLogprob[] NO_LOGPROBS = new TokenLogprob[0];

    private final LlamaModel model;
    private final EngineConfig config;
    private final KvBlockStore store;
    private final KvBlockPool pool;
    private final int maxSequenceTokens;
    private final String sequenceLimitName;
    private final WaitingQueue waiting;
    private final List<Sequence> running = new ArrayList<>();
    /** Preempted sequences, oldest first: they resume before any new request. */
    private final ArrayDeque<Sequence> preempted = new ArrayDeque<>();
    /** A request taken from the queue that did not fit yet; it is first in line next step. */
    private Sequence deferred;
    private final AtomicInteger numRunning = new AtomicInteger();
    // Read by other threads (gauges, tests); written by the engine thread after every change.
    private volatile int preemptedCount;
    private volatile int numFreeBlocks;
    private final EngineStats stats = new EngineStats();
    private final Thread thread;
    private volatile boolean closed;

    /** One request: its tokens so far, how many of them have K/V in its blocks, and its sampler. */
    private static final class Sequence {
        final RequestHandle handle;
        final int promptLength;
        final int limit;
        final int[] history;
        final Sampler sampler;
        final BlockTable table;
        final PagedKvCache cache;
        long queueNanos = -1;
        long startNanos;
        long firstTokenNanos;
        int length;        // tokens known: prompt + generated
        int numComputed;   // tokens whose K/V are in the cache
        int numDelivered;
        int scheduled;     // tokens of this sequence in the step being formed

        Sequence(RequestHandle handle, ModelConfig model, int maxSequenceTokens, KvBlockPool pool, KvBlockStore store) {
            this.handle = handle;
            EngineRequest r = handle.request();
            this.promptLength = r.promptTokens().length;
            this.limit = Math.min(r.maxTokens(), maxSequenceTokens - promptLength);
            this.history = Arrays.copyOf(r.promptTokens(), promptLength + limit);
            this.length = promptLength;
            this.sampler = new Sampler(r.params(), model.vocabSize());
            this.table = new BlockTable(pool);
            this.cache = new PagedKvCache(store);
        }
    }

    /** @param model loaded with {@code maxBatchTokens >= maxBatchedTokens} and {@code maxLogitRows >= maxNumSeqs} */
    public BatchingEngine(LlamaModel model, EngineConfig config) {
        if (config.maxBatchedTokens() > model.maxBatchTokens())
            throw new IllegalArgumentException("--max-num-batched-tokens " + config.maxBatchedTokens() + " exceeds the model's batch limit of " + model.maxBatchTokens());
        ModelConfig c = model.config();
        long bytesPerBlock = KvBlockStore.bytesPerBlock(c.numLayers(), c.kvDim(), config.blockSize(), config.kvCacheType());
        long bytes = config.kvCacheMemoryBytes() > 0 ? config.kvCacheMemoryBytes()
                : config.defaultKvCacheMemory(bytesPerBlock / config.blockSize(), c.contextLength(), model.backend().defaultKvCacheBudget());
        int numBlocks = KvBlockPool.numBlocksFor(bytes, bytesPerBlock);
        if (numBlocks < 1)
            throw new IllegalArgumentException("--kv-cache-memory " + bytes + " holds no KV block: one block of " + config.blockSize()
                    + " positions takes " + bytesPerBlock + " bytes (" + config.kvCacheType() + ")");
        this.model = model;
        this.config = config;
        this.pool = new KvBlockPool(numBlocks, config.blockSize());
        this.store = model.backend().allocateKvBlocks(c.numLayers(), c.numKvHeads(), c.headDim(), config.blockSize(), numBlocks, config.kvCacheType());
        long poolTokens = (long) numBlocks * config.blockSize();
        this.maxSequenceTokens = (int) Math.min(c.contextLength(), poolTokens);
        this.sequenceLimitName = poolTokens < c.contextLength()
                ? "the most tokens the KV cache holds (--kv-cache-memory " + bytes + " = " + numBlocks + " blocks of " + config.blockSize() + ")"
                : "this model's maximum context length";
        this.waiting = new WaitingQueue(config.maxWaiting());
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
        store.close();
    }

    private void loop() {
        try {
            while (!closed) {
                if (running.isEmpty() && preempted.isEmpty() && deferred == null) deferred = newSequence(waiting.take());
                try {
                    step();
                } catch (RuntimeException | OutOfMemoryError e) {
                    // The batch failed as a whole: every running request gets the message, the engine goes on.
                    boolean unavailable = e instanceof DeviceUnavailableException;
                    System.err.println("tessera engine: step failed: " + e);
                    if (!unavailable) e.printStackTrace(System.err);
                    String message = unavailable ? e.getMessage() : e.getClass().getSimpleName() + ": " + e.getMessage();
                    for (Sequence s : running) { release(s); s.handle.emit(new TokenEvent.Failed(message, unavailable)); }
                    running.clear();
                    publishGauges();
                }
            }
        } catch (InterruptedException e) {
            // closing
        } finally {
            for (Sequence s : running) { release(s); s.handle.emit(finished(s, FinishReason.CANCELLED)); }
            for (Sequence s : preempted) s.handle.emit(finished(s, FinishReason.CANCELLED));
            if (deferred != null) deferred.handle.emit(finished(deferred, FinishReason.CANCELLED));
            running.clear();
            preempted.clear();
            deferred = null;
            publishGauges();
        }
    }

    private Sequence newSequence(RequestHandle h) {
        return new Sequence(h, model.config(), maxSequenceTokens, pool, store);
    }

    /** One iteration: schedule (preempting if blocks run out), admit, run the batch, sample and emit. */
    private void step() {
        dropCancelled();
        int budget = config.maxBatchedTokens();
        List<Sequence> batch = new ArrayList<>();
        boolean preemptedNow = false;
        // Running sequences first, oldest first: decode tokens, then the next chunks of prompts being prefilled.
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < running.size() && budget > 0; i++) {
                Sequence s = running.get(i);
                int pending = s.length - s.numComputed;
                if (s.scheduled > 0 || (pass == 0) != (pending == 1)) continue;
                int take = Math.min(budget, pending);
                while (!reserve(s, take)) {
                    Sequence victim = running.getLast();
                    budget += victim.scheduled;
                    batch.remove(victim);
                    preempt(victim);
                    preemptedNow = true;
                    if (victim == s) break;
                }
                if (!running.contains(s)) break;  // s was the newest and is preempted: nothing after it is left
                s.scheduled = take;
                budget -= take;
                batch.add(s);
            }
        }
        // Then waiting ones, preempted before new, while there is room; none after a preemption in this step.
        while (!preemptedNow && running.size() < config.maxNumSeqs() && budget > 0) {
            Sequence s = preempted.peekFirst();
            if (s == null) {
                if (deferred == null) {
                    RequestHandle h = waiting.poll();
                    if (h == null) break;
                    deferred = newSequence(h);
                }
                s = deferred;
                if (s.handle.isCancelled()) { s.handle.emit(finished(s, FinishReason.CANCELLED)); deferred = null; continue; }
                if (waitsForSharedPrefix(s)) break;
            }
            s.numComputed = config.prefixCaching() ? s.table.adoptCachedPrefix(s.history, s.length - 1) : 0;
            int take = Math.min(budget, s.length - s.numComputed);
            if (!reserve(s, take)) { s.table.free(); s.numComputed = 0; break; }
            if (s == deferred) deferred = null; else preempted.removeFirst();
            if (s.queueNanos < 0) { s.startNanos = System.nanoTime(); s.queueNanos = s.startNanos - s.handle.submitNanos(); }
            running.add(s);
            s.scheduled = take;
            budget -= take;
            batch.add(s);
        }
        if (batch.isEmpty() && running.isEmpty()) refuseHeadOfLine();
        publishGauges();
        if (batch.isEmpty()) return;
        run(batch);
    }

    /** Nothing runs and still the next request found no room: it can never fit, so it fails instead of spinning. */
    private void refuseHeadOfLine() {
        Sequence s = preempted.isEmpty() ? deferred : preempted.removeFirst();
        if (s == null) return;
        if (s == deferred) deferred = null;
        s.handle.emit(new TokenEvent.Failed("KV cache of " + pool.numTotal() + " blocks cannot hold " + s.length + " tokens", false));
    }

    /** Builds the token rows (decode tokens first, in batch order), runs the model, samples each finished row. */
    private void run(List<Sequence> batch) {
        int n = 0;
        for (Sequence s : batch) n += s.scheduled;
        int[] tokens = new int[n], positions = new int[n];
        KvCache[] caches = new KvCache[n];
        List<Sequence> withLogits = new ArrayList<>();
        int[] rows = new int[batch.size()];
        int r = 0, row = 0;
        for (Sequence s : batch) {
            for (int i = 0; i < s.scheduled; i++) {
                tokens[row] = s.history[s.numComputed + i];
                positions[row] = s.numComputed + i;
                caches[row] = s.cache;
                row++;
            }
            s.numComputed += s.scheduled;
            s.scheduled = 0;
            if (s.numComputed == s.length) { withLogits.add(s); rows[r++] = row - 1; }
        }
        // When every row is plain greedy, the argmax is taken where the logits are (on a GPU only ids come back).
        boolean argmaxOnly = true;
        for (Sequence s : withLogits) argmaxOnly &= s.sampler.isPlainArgmax() && !s.handle.request().returnLogprobs();
        int vocab = model.config().vocabSize();
        float[] logits = argmaxOnly ? null : new float[r * vocab];
        int[] ids = argmaxOnly ? new int[r] : null;
        try {
            AttentionBatch attention = new AttentionBatch(n, positions, caches);
            if (argmaxOnly) model.forwardArgmax(tokens, attention, Arrays.copyOf(rows, r), ids);
            else model.forward(tokens, attention, Arrays.copyOf(rows, r), logits);
        } catch (RuntimeException | Error e) {
            for (Sequence s : batch) s.numComputed = 0;
            throw e;
        }
        stats.iteration(n);
        if (config.prefixCaching()) for (Sequence s : batch) s.table.cacheFullBlocks(s.history, s.numComputed);
        long now = System.nanoTime();
        float[] own = argmaxOnly ? null : new float[vocab];
        for (int i = 0; i < withLogits.size(); i++) {
            Sequence s = withLogits.get(i);
            int token;
            if (argmaxOnly) {
                token = ids[i];
                if (token < 0) throw s.sampler.noFiniteLogitError();
            } else {
                System.arraycopy(logits, i * vocab, own, 0, vocab);
                token = s.sampler.sample(own, s.history, s.length);
            }
            if (s.numDelivered == 0) s.firstTokenNanos = now;
            EngineRequest req = s.handle.request();
            if (req.isStop().test(token)) { finish(s, FinishReason.STOP); continue; }
            s.history[s.length++] = token;
            s.handle.emit(new TokenEvent.Token(token, req.returnLogprobs() ? s.sampler.chosen() : null,
                    req.returnLogprobs() ? s.sampler.top() : NO_LOGPROBS));
            s.numDelivered++;
            if (s.length - s.promptLength >= s.limit) finish(s, FinishReason.LENGTH);
        }
        publishGauges();
    }

    /** Makes room in s's blocks for {@code take} more computed tokens; false when the pool has too few free blocks. */
    private boolean reserve(Sequence s, int take) {
        int more = s.numComputed + take - s.table.numTokens();
        if (more <= 0) return true;
        if (!s.table.append(more)) return false;
        // A table only grows between releases, and a release empties both, so equal counts mean equal tables.
        if (s.cache.numBlocks() != s.table.numBlocks()) s.cache.setBlocks(s.table.blockIds(), s.table.numBlocks());
        return true;
    }

    /** Recompute preemption: the blocks go back, the tokens stay, and the sequence waits at the head of the line. */
    private void preempt(Sequence s) {
        running.remove(s);
        release(s);
        s.numComputed = 0;
        s.scheduled = 0;
        preempted.addFirst(s);
        stats.preempted();
    }

    /**
     * True while a running sequence is still prefilling full blocks this prompt shares: waiting a step or two lets
     * this one adopt them from the prefix cache instead of computing them again ({@code n > 1} siblings, a common
     * system prompt arriving in a burst).
     */
    private boolean waitsForSharedPrefix(Sequence s) {
        if (!config.prefixCaching()) return false;
        int bs = config.blockSize();
        for (Sequence r : running) {
            if (r.numComputed >= r.promptLength) continue;
            int limit = Math.min(s.length - 1, r.promptLength);
            int shared = Arrays.mismatch(s.history, 0, limit, r.history, 0, limit);
            int sharedBlocks = (shared < 0 ? limit : shared) / bs;
            if (sharedBlocks > 0 && r.numComputed < sharedBlocks * bs) return true;
        }
        return false;
    }

    private void dropCancelled() {
        for (Iterator<Sequence> it = running.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            if (s.handle.isCancelled() || closed) { it.remove(); release(s); s.handle.emit(finished(s, FinishReason.CANCELLED)); }
        }
        for (Iterator<Sequence> it = preempted.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            if (s.handle.isCancelled()) { it.remove(); s.handle.emit(finished(s, FinishReason.CANCELLED)); }
        }
        if (deferred != null && deferred.handle.isCancelled()) { deferred.handle.emit(finished(deferred, FinishReason.CANCELLED)); deferred = null; }
    }

    private void finish(Sequence s, FinishReason reason) {
        running.remove(s);
        release(s);
        s.handle.emit(finished(s, reason));
    }

    private void release(Sequence s) {
        s.table.free();
        s.cache.close();
    }

    private void publishGauges() {
        numRunning.set(running.size());
        preemptedCount = preempted.size() + (deferred == null ? 0 : 1);
        numFreeBlocks = pool.numFree();
        stats.kvCache(pool.numUsed(), pool.numTotal());
        stats.prefixCache(pool.numQueriedTokens(), pool.numHitTokens());
    }

    private static TokenEvent.Finished finished(Sequence s, FinishReason reason) {
        long now = System.nanoTime();
        long start = s.queueNanos < 0 ? now : s.startNanos;
        long first = s.firstTokenNanos > 0 ? s.firstTokenNanos : now;
        long queue = s.queueNanos < 0 ? now - s.handle.submitNanos() : s.queueNanos;
        return new TokenEvent.Finished(reason, s.promptLength, s.numDelivered, queue, first - start, now - first);
    }
}
