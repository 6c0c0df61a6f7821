package dev.tessera.kernels;

import java.lang.foreign.MemorySegment;

/**
 * The op vocabulary a model graph is written in. The graph (models/arch) only calls these; where and how each op
 * runs — CPU threads, a CUDA device, a remote attention worker, a shard of the weights — is the backend's business.
 * All activations are F32 rows; {@code numTokens} says how many leading rows of a buffer are live.
 */
public interface Backend extends AutoCloseable {
    String name();

    /** Makes a weight usable by this backend; {@code data} is a GGUF tensor [rows][cols] of {@code type}. */
    Weight weight(String name, TensorType type, MemorySegment data, int rows, int cols);

    Activations allocate(int maxTokens, int width);

    /** A private cache of one sequence, for callers that run one sequence at a time. */
    KvCache allocateKvCache(int numLayers, int numKvHeads, int headDim, int capacity);

    /**
     * Bytes a paged KV store may take when the user does not say ({@code --kv-cache-memory}): on the CPU a quarter of
     * the Java heap, where the store lives; a device backend answers from its free memory.
     */
    default long defaultKvCacheBudget() {
        return Runtime.getRuntime().maxMemory() / 4;
    }

    /**
     * A paged store shared by many sequences ({@link PagedKvCache}s over it); {@code attention} accepts those caches
     * wherever it accepts private ones.
     */
    KvBlockStore allocateKvBlocks(int numLayers, int numKvHeads, int headDim, int blockSize, int numBlocks, KvCacheType type);

    void upload(float[] src, Activations dst, int numTokens);

    void download(Activations src, float[] dst, int numTokens);

    /**
     * out[r] = index of the largest value of row r of logits (ties to the lowest index), or -1 when the row has no
     * finite value. A device backend computes it where the logits are, so only the ids travel to the host.
     */
    default void argmax(Activations logits, int numRows, int[] out) {
        float[] rows = new float[numRows * logits.width()];
        download(logits, rows, numRows);
        argmaxRows(rows, numRows, logits.width(), out);
    }

    /** {@link #argmax} over host rows of {@code width} values: per row, ties to the lowest index, -1 for no finite value. */
    static void argmaxRows(float[] rows, int numRows, int width, int[] out) {
        for (int r = 0; r < numRows; r++) {
            int best = -1;
            float bestValue = Float.NEGATIVE_INFINITY;
            for (int i = 0, base = r * width; i < width; i++) if (rows[base + i] > bestValue) { bestValue = rows[base + i]; best = i; }
            out[r] = best;
        }
    }

    /** out[t] = row tokens[t] of table. */
    void embed(Weight table, int[] tokens, int numTokens, Activations out);

    /** out[t] = x[t] / rms(x[t]) * gamma. */
    void rmsNorm(Activations x, Weight gamma, float eps, int numTokens, Activations out);

    /**
     * Each of x[t]'s {@code numHeads} equal parts (heads) divided by its own rms and multiplied by gamma (one part's
     * width), in place: the q/k norms of Qwen3 (per head) and OLMoE (numHeads 1, the whole row).
     */
    void rmsNormHeads(Activations x, Weight gamma, float eps, int numTokens, int numHeads);

    /** out[t] = W · x[t]: every weight row is read once for all tokens. */
    void matmul(Weight w, Activations x, int numTokens, Activations out);

    /**
     * outs[i] = ws[i] · x[t] for weights that read the same input (a layer's q, k and v; its gate and up): the results
     * of {@link #matmul} on each, in one op where a backend can prepare the input once and hand its threads one
     * range of rows instead of one per weight.
     */
    default void matmuls(Weight[] ws, Activations x, int numTokens, Activations[] outs) {
        for (int i = 0; i < ws.length; i++) matmul(ws[i], x, numTokens, outs[i]);
    }

    /** x[t] += bias. */
    void addBias(Activations x, Weight bias, int numTokens);

    /** Rotates each head of x[t] by position positions[t]. */
    void rope(Activations x, int numTokens, int numHeads, int headDim, int[] positions, RopeTable rope);

    /** gate[t] = silu(gate[t]) * up[t]. */
    void swiglu(Activations gate, Activations up, int numTokens);

    /** acc[t] += x[t]. */
    void add(Activations acc, Activations x, int numTokens);

    /**
     * Stores k[t], v[t] of layer {@code layer} at each token's position in its sequence's cache, then
     * out[t] = softmax(q[t] · Kᵀ / √headDim) · V per query head, with GQA (numHeads / numKvHeads query heads per KV head).
     */
    void attention(int layer, Activations q, Activations k, Activations v, AttentionBatch batch,
                   int numHeads, int numKvHeads, int headDim, Activations out);

    // Mixture-of-experts ops (issue 16). A backend without expert kernels keeps these defaults: supportsExperts
    // answers false, so loading an MoE model fails with one line naming the tensor type, before any op is called.

    /** Whether {@link #matmulExperts} can compute with expert weights of {@code type}. */
    default boolean supportsExperts(TensorType type) {
        return false;
    }

    /**
     * Routes rows [0, numTokens) of {@code routerLogits} ([numTokens][numExperts]) with the model's rule into
     * {@code routing} (see {@link ExpertRouting}). The ids are needed on the host to group tokens by expert, so the
     * default downloads the logits and routes there.
     */
    default void routeExperts(Activations routerLogits, int numTokens, ExpertRouting routing) {
        float[] logits = new float[numTokens * routerLogits.width()];
        download(routerLogits, logits, numTokens);
        routing.route(logits, numTokens);
    }

    /**
     * The grouped expert matmul (ggml's {@code mul_mat_id}): out[t * k + s] = experts[id(t, s)] · x[row], where row is
     * t * k + s when {@code xPerSlot} (the down projection reads each slot's own hidden state) and t otherwise (gate
     * and up read the token's). Tokens are grouped by expert, so each expert's rows are read once per step for all
     * its tokens. {@code experts[e]} may be null for an expert no token of this step routes to (one this device
     * does not hold).
     */
    default void matmulExperts(Weight[] experts, Activations x, boolean xPerSlot, ExpertRouting routing, Activations out) {
        throw new UnsupportedOperationException(name() + " has no expert matmul kernel");
    }

    /**
     * The gate and up projections of the experts together: {@link #matmulExperts} of {@code gate} into {@code gateOut}
     * and of {@code up} into {@code upOut}, both over the tokens' own rows of {@code x}. A backend may run them as one
     * pass; the results are the two calls'.
     */
    default void matmulExpertsGateUp(Weight[] gate, Weight[] up, Activations x, ExpertRouting routing, Activations gateOut, Activations upOut) {
        matmulExperts(gate, x, false, routing, gateOut);
        matmulExperts(up, x, false, routing, upOut);
    }

    /** acc[t] += sum over slots s of weight(t, s) * slots[t * k + s]: the weighted combine of the experts' outputs. */
    default void combineExperts(Activations slots, ExpertRouting routing, Activations acc) {
        throw new UnsupportedOperationException(name() + " has no expert combine kernel");
    }

    /** acc[t] += sigmoid(gate[t][0]) * x[t]: Qwen2-MoE's gated shared expert. {@code gate} is one column wide. */
    default void addSigmoidGated(Activations acc, Activations x, Activations gate, int numTokens) {
        throw new UnsupportedOperationException(name() + " has no sigmoid-gated add kernel");
    }

    /**
     * Marks the start of a forward step whose op sequence is the same whenever {@code shapeKey} is equal, so a backend
     * may record it once and replay it (CUDA graphs); a null key means "do not record". Host-side inputs of the ops
     * (tokens, positions, caches) may change between equal steps. No upload or download until {@link #endStep}.
     * {@code numTokens} is the step's token count, so a recording backend can size its inputs before it records.
     */
    default void beginStep(Object shapeKey, int numTokens) {}

    /** Ends the step: a recording backend runs (or replays) it now. Results are read with {@link #download}. */
    default void endStep() {}

    /** Ends a step that failed part-way, discarding any half-made recording. */
    default void abortStep() {}

    @Override
    void close();
}
