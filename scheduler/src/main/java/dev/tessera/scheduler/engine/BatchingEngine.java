package dev.tessera.scheduler.engine;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.sample.Sampler;
import dev.tessera.models.sample.TokenLogprob;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Iteration-level (continuous) batching: every step forms one batch from the decode token of each running sequence
 * plus prefill chunks of the others, within {@code maxBatchedTokens}, and runs it through the model together, so each
 * weight matrix is read once per step for all of them. Requests join and leave between steps, first come first
 * served; a long prompt is prefilled in chunks across steps so running sequences keep streaming.
 * Each sequence has its own KV cache for now; the paged pool in {@code scheduler/kv} replaces that next.
 */
public final class BatchingEngine implements Engine {
    private static final TokenLogprob[] NO_LOGPROBS = new TokenLogprob[0];

    private final LlamaModel model;
    private final int maxNumSeqs;
    private final int maxBatchedTokens;
    private final WaitingQueue waiting;
    private final List<Sequence> running = new ArrayList<>();
    private final AtomicInteger numRunning = new AtomicInteger();
    private final Thread thread;
    private volatile boolean closed;

    /** One running request: its tokens so far, how many of them the model has seen, and its sampler and cache. */
    private static final class Sequence {
        final RequestHandle handle;
        final int promptLength;
        final int limit;
        final int[] history;
        final Sampler sampler;
        final KvCache cache;
        final float[] logits;
        final long queueNanos;
        final long startNanos;
        long firstTokenNanos;
        int length;        // tokens known: prompt + generated
        int numComputed;   // tokens whose K/V are in the cache
        int numDelivered;

        Sequence(RequestHandle handle, LlamaModel model, long now) {
            this.handle = handle;
            EngineRequest r = handle.request();
            int context = model.config().contextLength();
            this.promptLength = r.promptTokens().length;
            this.limit = Math.min(r.maxTokens(), context - promptLength);
            this.history = java.util.Arrays.copyOf(r.promptTokens(), promptLength + limit);
            this.length = promptLength;
            this.sampler = new Sampler(r.params(), model.config().vocabSize());
            this.cache = model.newKvCache(promptLength + limit);
            this.logits = new float[model.config().vocabSize()];
            this.queueNanos = now - handle.submitNanos();
            this.startNanos = now;
        }
    }

    /**
     * @param model            loaded with {@code maxBatchTokens >= maxBatchedTokens} and {@code maxLogitRows >= maxNumSeqs}
     * @param maxNumSeqs       sequences running at once
     * @param maxBatchedTokens tokens in one step (decode tokens plus prefill chunks)
     * @param maxWaiting       requests that may wait to start; one more is refused
     */
    public BatchingEngine(LlamaModel model, int maxNumSeqs, int maxBatchedTokens, int maxWaiting) {
        if (maxNumSeqs < 1 || maxBatchedTokens < maxNumSeqs || maxBatchedTokens > model.maxBatchTokens() || maxWaiting < 1)
            throw new IllegalArgumentException("need 1 <= maxNumSeqs (" + maxNumSeqs + ") <= maxBatchedTokens (" + maxBatchedTokens
                    + ") <= the model's batch limit (" + model.maxBatchTokens() + ") and maxWaiting (" + maxWaiting + ") >= 1");
        this.model = model;
        this.maxNumSeqs = maxNumSeqs;
        this.maxBatchedTokens = maxBatchedTokens;
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
        try {
            while (!closed) {
                admit();
                if (running.isEmpty()) continue;
                try {
                    step();
                } catch (RuntimeException | OutOfMemoryError e) {
                    // The batch failed as a whole: every request in it gets the message, the engine goes on.
                    boolean unavailable = e instanceof DeviceUnavailableException;
                    System.err.println("tessera engine: step failed: " + e);
                    if (!unavailable) e.printStackTrace(System.err);
                    String message = unavailable ? e.getMessage() : e.getClass().getSimpleName() + ": " + e.getMessage();
                    for (Sequence s : running) { s.cache.close(); s.handle.emit(new TokenEvent.Failed(message, unavailable)); }
                    running.clear();
                    numRunning.set(0);
                }
            }
        } catch (InterruptedException e) {
            // closing
        } finally {
            for (Sequence s : running) { s.cache.close(); s.handle.emit(finished(s, FinishReason.CANCELLED)); }
            running.clear();
            numRunning.set(0);
        }
    }

    /** Moves waiting requests into the running set while there is room; blocks only when nothing runs. */
    private void admit() throws InterruptedException {
        while (running.size() < maxNumSeqs) {
            RequestHandle h = running.isEmpty() ? waiting.take() : waiting.poll();
            if (h == null) break;
            if (h.isCancelled()) { h.emit(WaitingQueue.cancelledBeforeStart(h, System.nanoTime() - h.submitNanos())); continue; }
            running.add(new Sequence(h, model, System.nanoTime()));
        }
        numRunning.set(running.size());
    }

    /** One iteration: schedule, run the batch, sample and emit for every sequence that produced logits. */
    private void step() {
        for (Iterator<Sequence> it = running.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            if (s.handle.isCancelled() || closed) { it.remove(); s.cache.close(); s.handle.emit(finished(s, FinishReason.CANCELLED)); }
        }
        numRunning.set(running.size());
        if (running.isEmpty()) return;
        int budget = maxBatchedTokens, n = 0;
        int[] tokens = new int[maxBatchedTokens], positions = new int[maxBatchedTokens];
        KvCache[] caches = new KvCache[maxBatchedTokens];
        List<Sequence> withLogits = new ArrayList<>();
        List<Integer> logitRows = new ArrayList<>();
        // Decode tokens first (each running sequence's newest token), then prefill chunks in arrival order.
        for (int pass = 0; pass < 2; pass++) {
            for (Sequence s : running) {
                boolean decoding = s.numComputed >= s.promptLength;  // then exactly one new token waits
                if ((pass == 0) != decoding || budget == 0) continue;
                int take = Math.min(budget, s.length - s.numComputed);
                for (int i = 0; i < take; i++) {
                    tokens[n] = s.history[s.numComputed + i];
                    positions[n] = s.numComputed + i;
                    caches[n] = s.cache;
                    n++;
                }
                s.numComputed += take;
                budget -= take;
                if (s.numComputed == s.length) { withLogits.add(s); logitRows.add(n - 1); }
            }
        }
        int[] rows = logitRows.stream().mapToInt(Integer::intValue).toArray();
        float[] logits = new float[rows.length * model.config().vocabSize()];
        model.forward(java.util.Arrays.copyOf(tokens, n), new AttentionBatch(n, java.util.Arrays.copyOf(positions, n),
                java.util.Arrays.copyOf(caches, n)), rows, logits);
        long now = System.nanoTime();
        int vocab = model.config().vocabSize();
        for (int i = 0; i < withLogits.size(); i++) {
            Sequence s = withLogits.get(i);
            System.arraycopy(logits, i * vocab, s.logits, 0, vocab);
            int token = s.sampler.sample(s.logits, s.history, s.length);
            if (s.numDelivered == 0) s.firstTokenNanos = now;
            EngineRequest r = s.handle.request();
            if (r.isStop().test(token)) { finish(s, FinishReason.STOP); continue; }
            s.history[s.length++] = token;
            s.handle.emit(new TokenEvent.Token(token, r.returnLogprobs() ? s.sampler.chosen() : null,
                    r.returnLogprobs() ? s.sampler.top() : NO_LOGPROBS));
            s.numDelivered++;
            if (s.length - s.promptLength >= s.limit) finish(s, FinishReason.LENGTH);
        }
        numRunning.set(running.size());
    }

    private void finish(Sequence s, FinishReason reason) {
        running.remove(s);
        numRunning.set(running.size());
        s.cache.close();
        s.handle.emit(finished(s, reason));
    }

    private static TokenEvent.Finished finished(Sequence s, FinishReason reason) {
        long now = System.nanoTime();
        long first = s.firstTokenNanos > 0 ? s.firstTokenNanos : now;
        return new TokenEvent.Finished(reason, s.promptLength, s.numDelivered, s.queueNanos, first - s.startNanos, now - first);
    }
}
