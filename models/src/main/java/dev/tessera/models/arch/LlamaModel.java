package dev.tessera.models.arch;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.PagedKvCache;

/**
 * The Llama-family forward pass as a sequence of backend ops. It knows shapes and order, never where an op runs.
 * A batch is up to {@code maxBatchTokens} token rows from any mix of sequences; logits are produced only for the
 * rows asked for (the last prompt token, or each sequence's decode token).
 */
public final class LlamaModel implements AutoCloseable {
    private final ModelConfig config;
    private final LlamaWeights weights;
    private final Backend backend;
    private final int maxBatchTokens;
    private final int maxLogitRows;
    private final Activations x, xb, q, k, v, att, logitRows, logits;
    private final FeedForward ffn;
    private final int[] rowTokens;

    /** @param maxLogitRows most rows one forward call may ask logits for (1 for a single sequence) */
    public LlamaModel(ModelConfig config, LlamaWeights weights, Backend backend, int maxBatchTokens, int maxLogitRows) {
        if (maxLogitRows < 1 || maxLogitRows > maxBatchTokens) throw new IllegalArgumentException("maxLogitRows " + maxLogitRows + " outside 1.." + maxBatchTokens);
        this.config = config;
        this.maxLogitRows = maxLogitRows;
        this.weights = weights;
        this.backend = backend;
        this.maxBatchTokens = maxBatchTokens;
        int qDim = config.numHeads() * config.headDim();
        x = backend.allocate(maxBatchTokens, config.dim());
        xb = backend.allocate(maxBatchTokens, config.dim());
        q = backend.allocate(maxBatchTokens, qDim);
        k = backend.allocate(maxBatchTokens, config.kvDim());
        v = backend.allocate(maxBatchTokens, config.kvDim());
        att = backend.allocate(maxBatchTokens, qDim);
        ffn = FeedForward.create(config, backend, maxBatchTokens);
        logitRows = backend.allocate(maxLogitRows, config.dim());
        logits = backend.allocate(maxLogitRows, config.vocabSize());
        rowTokens = new int[maxBatchTokens];
    }

    public ModelConfig config() { return config; }
    public Backend backend() { return backend; }
    public int maxBatchTokens() { return maxBatchTokens; }

    /** Sees every MoE layer's routing from now on (routing traces); null stops it. A dense model has none to see. */
    public void observeRouting(RoutingObserver observer) { if (ffn instanceof MoeFeedForward m) m.observe(observer); }

    public KvCache newKvCache(int capacity) {
        return backend.allocateKvCache(config.numLayers(), config.numKvHeads(), config.headDim(), capacity);
    }

    /**
     * Runs tokens[0..batch.numTokens) through the model, storing their K/V, and writes the logits of rows
     * {@code logitRowIndices} into {@code out} ([logitRowIndices.length][vocabSize]).
     */
    public void forward(int[] tokens, AttentionBatch batch, int[] logitRowIndices, float[] out) {
        if (step(tokens, batch, logitRowIndices)) backend.download(logits, out, logitRowIndices.length);
    }

    /**
     * As {@link #forward}, for greedy decoding: ids[i] = the argmax of the logits of row {@code logitRowIndices[i]}
     * (ties to the lowest id; -1 when no logit is finite), taken where the logits are, so a GPU step sends back a
     * few ids instead of rows of vocabSize floats.
     */
    public void forwardArgmax(int[] tokens, AttentionBatch batch, int[] logitRowIndices, int[] ids) {
        if (step(tokens, batch, logitRowIndices)) backend.argmax(logits, logitRowIndices.length, ids);
    }

    /** The step up to the logits, left in {@code logits}; false when no row asked for them. */
    private boolean step(int[] tokens, AttentionBatch batch, int[] logitRowIndices) {
        int n = batch.numTokens();
        if (n < 1 || n > maxBatchTokens) throw new IllegalArgumentException("batch of " + n + " tokens, limit " + maxBatchTokens);
        ModelConfig c = config;
        int m = logitRowIndices.length;
        if (m > maxLogitRows) throw new IllegalArgumentException(m + " logit rows asked, limit " + maxLogitRows);
        // Rows 0..m-1 (a decode step) need no gather: the classifier runs inside the step, on x itself.
        boolean leading = m > 0;
        for (int i = 0; i < m && leading; i++) leading = logitRowIndices[i] == i;
        // A decode step (one token per sequence, all caches of one kind) has the same launches for a given token count
        // whichever sequences it serves (caches, tokens and positions are staged inputs): let the backend record it
        // once per shape and replay it.
        Object kind = n <= MAX_RECORDED_TOKENS ? decodeCacheKind(batch) : null;
        backend.beginStep(kind == null ? null : new StepKey(this, n, kind, leading ? m : 0), n);
        try {
            layers(tokens, batch, n);
            if (leading) classify(x, m);
        } catch (RuntimeException | Error e) {
            backend.abortStep();
            throw e;
        }
        backend.endStep();
        if (m == 0) return false;
        if (!leading) {
            // Gather the rows that need logits so the classifier runs once over just those.
            float[] hidden = new float[n * c.dim()];
            backend.download(x, hidden, n);
            float[] picked = new float[m * c.dim()];
            for (int i = 0; i < m; i++) System.arraycopy(hidden, logitRowIndices[i] * c.dim(), picked, i * c.dim(), c.dim());
            backend.upload(picked, xb, m);
            classify(xb, m);
        }
        return true;
    }

    /** logits[0..m) = output · norm(hidden[0..m)). */
    private void classify(Activations hidden, int m) {
        backend.rmsNorm(hidden, weights.outputNorm(), config.rmsNormEps(), m, logitRows);
        backend.matmul(weights.output(), logitRows, m, logits);
    }

    /** What a recorded step depends on of its cache: the paged store (its element type, its memory), else the class. */
    private static Object cacheKind(KvCache cache) {
        return cache instanceof PagedKvCache p ? p.store() : cache.getClass();
    }

    /** Embedding and every transformer layer, leaving the hidden states of all n rows in x. */
    private void layers(int[] tokens, AttentionBatch batch, int n) {
        ModelConfig c = config;
        backend.embed(weights.tokenEmbedding(), tokens, n, x);
        for (int l = 0; l < c.numLayers(); l++) {
            LlamaWeights.Layer w = weights.layers()[l];
            backend.rmsNorm(x, w.attentionNorm(), c.rmsNormEps(), n, xb);
            backend.matmul(w.wq(), xb, n, q);
            backend.matmul(w.wk(), xb, n, k);
            backend.matmul(w.wv(), xb, n, v);
            if (w.bq() != null) {
                backend.addBias(q, w.bq(), n);
                backend.addBias(k, w.bk(), n);
                backend.addBias(v, w.bv(), n);
            }
            backend.rope(q, n, c.numHeads(), c.headDim(), batch.positions(), c.rope());
            backend.rope(k, n, c.numKvHeads(), c.headDim(), batch.positions(), c.rope());
            backend.attention(l, q, k, v, batch, c.numHeads(), c.numKvHeads(), c.headDim(), att);
            backend.matmul(w.wo(), att, n, xb);
            backend.add(x, xb, n);

            ffn.forward(l, w, x, xb, n);
        }
    }

    /** The most tokens a recorded decode step takes: the matrix-vector kernels' widest tier. */
    private static final int MAX_RECORDED_TOKENS = 16;

    /**
     * Identifies a replayable decode step: same model buffers, token count and kind of cache, and how many logit rows
     * the classifier inside it computes (0: none).
     */
    private record StepKey(LlamaModel model, int numTokens, Object cacheKind, int classifierRows) {}

    /** The cache kind shared by every token of a decode batch (each token its own sequence), else null. */
    private static Object decodeCacheKind(AttentionBatch batch) {
        KvCache[] caches = batch.sequences();
        int n = batch.numTokens();
        Object kind = cacheKind(caches[0]);
        for (int t = 1; t < n; t++) {
            if (!cacheKind(caches[t]).equals(kind)) return null;
            for (int u = 0; u < t; u++) if (caches[u] == caches[t]) return null;  // two tokens of one sequence: a prefill
        }
        return kind;
    }

    @Override
    public void close() {
        backend.close();
    }
}
