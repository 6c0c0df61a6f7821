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
        int width = logits.width();
        float[] rows = new float[numRows * width];
        download(logits, rows, numRows);
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

    /** out[t] = W · x[t]: every weight row is read once for all tokens. */
    void matmul(Weight w, Activations x, int numTokens, Activations out);

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
