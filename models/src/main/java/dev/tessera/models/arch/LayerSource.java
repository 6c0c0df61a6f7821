package dev.tessera.models.arch;

/**
 * Where the graph gets each layer's weights: all resident (a loaded model), or streamed in a sliding window from disk
 * (a tensor-parallel edge device, after TPI-LLM), so the graph asks for one half of a layer just before it runs it
 * and hands it back right after.
 */
public interface LayerSource {
    /** The two halves of a layer: each is one weight block a window can hold or drop. */
    enum Half { ATTENTION, FEED_FORWARD }

    /**
     * The weights of one half of layer {@code layer}: in an {@link Half#ATTENTION} half the norm, Q/K/V (and biases)
     * and O; in a {@link Half#FEED_FORWARD} half the norm, gate, up and down. Fields of the other half may be null.
     */
    LlamaWeights.Layer acquire(int layer, Half half);

    /** The graph is done with that half for this step. */
    default void release(int layer, Half half) {}

    /** A step failed part-way: the next one starts again at layer 0 (a streaming source rewinds). */
    default void reset() {}

    /** Whether {@link #acquire} hands out the same weights every step, so a backend may record a step and replay it. */
    default boolean resident() {
        return true;
    }
}
