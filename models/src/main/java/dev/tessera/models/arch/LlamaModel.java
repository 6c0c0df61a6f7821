package dev.tessera.models.arch;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.PagedKvCache;
import dev.tessera.kernels.collective.Collective;

/**
 * The Llama-family forward pass as a sequence of backend ops, written once for every way a model runs. It knows shapes
 * and order, never where an op runs. A batch is up to {@code maxBatchTokens} token rows from any mix of sequences;
 * logits are produced only for the rows asked for (the last prompt token, or each sequence's decode token).
 *
 * <p>The same graph runs a whole model on one device or one rank of a tensor-parallel group (after TPI-LLM and
 * Megatron): a rank computes its {@link RankShape} of every layer — its heads of attention, its columns of the FFN —
 * and each half of a layer ends with an allreduce that sums the ranks' partial output projections before the residual
 * add. The rank holding the {@link ModelHead} embeds the tokens and broadcasts the rows (the others add zeros); only it
 * computes logits. With one rank there is no collective and no extra op.
 */
public final class LlamaModel implements AutoCloseable {
    private final ModelConfig config;
    private final RankShape shape;
    private final LayerSource layers;
    private final ModelHead head;
    private final Backend backend;
    private final Collective collective;
    private final int maxBatchTokens;
    private final int maxLogitRows;
    private final Activations x, xb, q, k, v, att, logitRows, logits;
    private final FeedForward ffn;
    private final AttentionSlot attention;
    private final float[] zeros;

    /** The whole model on one backend. @param maxLogitRows most rows one forward call may ask logits for */
    public LlamaModel(ModelConfig config, LlamaWeights weights, Backend backend, int maxBatchTokens, int maxLogitRows) {
        this(config, RankShape.whole(config), weights, weights.head(), backend, null, maxBatchTokens, maxLogitRows);
    }

    /**
     * One rank's share of the model.
     *
     * @param head       embeddings and classifier on the rank that speaks token ids; null on the others
     * @param collective the tensor-parallel group; null (or a group of one) for a whole model
     */
    public LlamaModel(ModelConfig config, RankShape shape, LayerSource layers, ModelHead head, Backend backend,
                      Collective collective, int maxBatchTokens, int maxLogitRows) {
        this(config, shape, layers, head, backend, collective, maxBatchTokens, maxLogitRows, AttentionSlot.local(backend));
    }

    /**
     * The whole model with attention in {@code attention}'s hands (Lamina's compute node: the KV cache lives on memory
     * nodes). The weights may be shared with other instances; closing any of them closes the backend.
     */
    public LlamaModel(ModelConfig config, LlamaWeights weights, Backend backend, int maxBatchTokens, int maxLogitRows,
                      AttentionSlot attention) {
        this(config, RankShape.whole(config), weights, weights.head(), backend, null, maxBatchTokens, maxLogitRows, attention);
    }

    /**
     * The whole model with its feed-forward blocks in {@code ffn}'s hands: one device of an expert-parallel group,
     * whose MoE layers exchange token rows with the other devices. With {@link FeedForward#takesPartWhenIdle} a step
     * may have no rows of its own: the device still joins every layer's exchange.
     */
    public LlamaModel(ModelConfig config, LlamaWeights weights, Backend backend, int maxBatchTokens, int maxLogitRows,
                      FeedForward ffn) {
        this(config, RankShape.whole(config), weights, weights.head(), backend, null, maxBatchTokens, maxLogitRows,
                AttentionSlot.local(backend), ffn);
    }

    private LlamaModel(ModelConfig config, RankShape shape, LayerSource layers, ModelHead head, Backend backend,
                       Collective collective, int maxBatchTokens, int maxLogitRows, AttentionSlot attention) {
        this(config, shape, layers, head, backend, collective, maxBatchTokens, maxLogitRows, attention,
                shape.hasFeedForward() ? FeedForward.create(config, shape.hiddenDim(), backend, maxBatchTokens) : null);
    }

    private LlamaModel(ModelConfig config, RankShape shape, LayerSource layers, ModelHead head, Backend backend,
                       Collective collective, int maxBatchTokens, int maxLogitRows, AttentionSlot attention, FeedForward ffn) {
        if (maxLogitRows < 1 || maxLogitRows > maxBatchTokens) throw new IllegalArgumentException("maxLogitRows " + maxLogitRows + " outside 1.." + maxBatchTokens);
        boolean parallel = collective != null && collective.size() > 1;
        if (head == null && !parallel) throw new IllegalArgumentException("a model without embeddings must be a rank of a tensor-parallel group");
        this.config = config;
        this.shape = shape;
        this.layers = layers;
        this.head = head;
        this.backend = backend;
        this.attention = attention;
        this.collective = parallel ? collective : null;
        this.maxLogitRows = maxLogitRows;
        this.maxBatchTokens = maxBatchTokens;
        int qDim = shape.numHeads() * config.headDim(), kvDim = shape.numKvHeads() * config.headDim();
        x = backend.allocate(maxBatchTokens, config.dim());
        xb = backend.allocate(maxBatchTokens, config.dim());
        q = shape.hasAttention() ? backend.allocate(maxBatchTokens, qDim) : null;
        k = shape.hasAttention() ? backend.allocate(maxBatchTokens, kvDim) : null;
        v = shape.hasAttention() ? backend.allocate(maxBatchTokens, kvDim) : null;
        att = shape.hasAttention() ? backend.allocate(maxBatchTokens, qDim) : null;
        if (this.collective != null && config.isMoe())
            throw new IllegalArgumentException("tensor-parallel ranks of mixture-of-experts models are not supported (experts are placed whole; see expert parallelism)");
        this.ffn = ffn;
        logitRows = head != null ? backend.allocate(maxLogitRows, config.dim()) : null;
        logits = head != null ? backend.allocate(maxLogitRows, config.vocabSize()) : null;
        // A rank with no share of a half (or no embeddings) still takes part in that half's allreduce, with zeros.
        zeros = this.collective != null ? new float[maxBatchTokens * config.dim()] : null;
    }

    public ModelConfig config() { return config; }
    public RankShape shape() { return shape; }
    public boolean hasHead() { return head != null; }
    public Backend backend() { return backend; }
    public int maxBatchTokens() { return maxBatchTokens; }

    /** Sees every MoE layer's routing from now on (routing traces); null stops it. A dense model has none to see. */
    public void observeRouting(RoutingObserver observer) { if (ffn instanceof MoeFeedForward m) m.observe(observer); }

    public KvCache newKvCache(int capacity) {
        return backend.allocateKvCache(config.numLayers(), shape.numKvHeads(), config.headDim(), capacity);
    }

    /** A paged KV store for this rank's KV heads: {@code numBlocks} blocks under the ids the scheduler's pool assigns. */
    public dev.tessera.kernels.KvBlockStore newKvBlockStore(int blockSize, int numBlocks, dev.tessera.kernels.KvCacheType type) {
        return backend.allocateKvBlocks(config.numLayers(), Math.max(1, shape.numKvHeads()), config.headDim(), blockSize, numBlocks, type);
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
        boolean idle = n == 0 && ffn != null && ffn.takesPartWhenIdle();
        if ((n < 1 && !idle) || n > maxBatchTokens) throw new IllegalArgumentException("batch of " + n + " tokens, limit " + maxBatchTokens);
        ModelConfig c = config;
        int m = logitRowIndices.length;
        if (m > maxLogitRows) throw new IllegalArgumentException(m + " logit rows asked, limit " + maxLogitRows);
        if (m > 0 && head == null) throw new IllegalStateException("logits asked of a rank without the classifier");
        // Rows 0..m-1 (a decode step) need no gather: the classifier runs inside the step, on x itself.
        boolean leading = m > 0;
        for (int i = 0; i < m && leading; i++) leading = logitRowIndices[i] == i;
        // A decode step (one token per sequence, all caches of one kind) has the same launches for a given token count
        // whichever sequences it serves (caches, tokens and positions are staged inputs): let the backend record it
        // once per shape and replay it.
        // A step is replayable when its weights stay put and nothing in it runs on the host: no TCP collective, and
        // no zero rows uploaded for a half (or embedding) this rank has no share of.
        boolean recordable = layers.resident() && attention.recordable() && (ffn == null || ffn.recordable()) && (collective == null
                || collective.recordable() && head != null && shape.hasAttention() && shape.hasFeedForward());
        Object kind = recordable && n <= MAX_RECORDED_TOKENS ? decodeCacheKind(batch) : null;
        backend.beginStep(kind == null ? null : new StepKey(this, n, kind, leading ? m : 0), n);
        try {
            layers(tokens, batch, n);
            if (leading) classify(x, m);
        } catch (RuntimeException | Error e) {
            backend.abortStep();
            layers.reset();
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
        backend.rmsNorm(hidden, head.outputNorm(), config.rmsNormEps(), m, logitRows);
        backend.matmul(head.output(), logitRows, m, logits);
    }

    /** What a recorded step depends on of its cache: the paged store (its element type, its memory), else the class. */
    private static Object cacheKind(KvCache cache) {
        return cache instanceof PagedKvCache p ? p.store() : cache.getClass();
    }

    /** Embedding and every transformer layer, leaving the hidden states of all n rows in x. */
    private void layers(int[] tokens, AttentionBatch batch, int n) {
        ModelConfig c = config;
        if (n == 0) {
            // A device with no rows this step still joins each MoE layer's exchange: others' tokens may need its experts.
            for (int l = 0; l < c.numLayers(); l++) ffn.forward(l, layers.acquire(l, LayerSource.Half.FEED_FORWARD), x, xb, 0);
            return;
        }
        if (head != null) backend.embed(head.tokenEmbedding(), tokens, n, x);
        else backend.upload(zeros, x, n);
        if (collective != null) collective.allReduce(x, n);
        for (int l = 0; l < c.numLayers(); l++) {
            LlamaWeights.Layer w = layers.acquire(l, LayerSource.Half.ATTENTION);
            if (shape.hasAttention()) {
                backend.rmsNorm(x, w.attentionNorm(), c.rmsNormEps(), n, xb);
                backend.matmuls(new Weight[]{w.wq(), w.wk(), w.wv()}, xb, n, new Activations[]{q, k, v});
                if (w.bq() != null) {
                    backend.addBias(q, w.bq(), n);
                    backend.addBias(k, w.bk(), n);
                    backend.addBias(v, w.bv(), n);
                }
                if (w.qNorm() != null) {
                    Architecture.QkNorm norm = c.architecture().qkNorm();
                    backend.rmsNormHeads(q, w.qNorm(), c.rmsNormEps(), n, norm.parts(shape.numHeads()));
                    backend.rmsNormHeads(k, w.kNorm(), c.rmsNormEps(), n, norm.parts(shape.numKvHeads()));
                }
                backend.rope(q, n, shape.numHeads(), c.headDim(), batch.positions(), c.rope());
                backend.rope(k, n, shape.numKvHeads(), c.headDim(), batch.positions(), c.rope());
                attention.attend(l, q, k, v, batch, shape.numHeads(), shape.numKvHeads(), c.headDim(), att);
                backend.matmul(w.wo(), att, n, xb);
            } else {
                backend.upload(zeros, xb, n);
            }
            layers.release(l, LayerSource.Half.ATTENTION);
            residual(n);

            w = layers.acquire(l, LayerSource.Half.FEED_FORWARD);
            if (collective == null) {
                ffn.forward(l, w, x, xb, n);
            } else {
                // A rank's FFN columns give a partial sum: it is summed over the group before the residual add.
                if (shape.hasFeedForward()) ffn.project(l, w, x, xb, n);
                else backend.upload(zeros, xb, n);
                residual(n);
            }
            layers.release(l, LayerSource.Half.FEED_FORWARD);
        }
    }

    /** x += the sum over ranks of this half's output projection xb (on one rank, xb itself). */
    private void residual(int n) {
        if (collective != null) collective.allReduce(xb, n);
        backend.add(x, xb, n);
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
