package dev.tessera.models.arch;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;

/**
 * The feed-forward slot of a transformer layer: x[t] += FFN(rmsNorm(x[t])) for the batch's n rows. One instance
 * serves every layer of a model (it owns the step's scratch buffers); the layer's weights come with each call.
 */
public interface FeedForward {

    /** @param xb scratch [n][dim] the caller lends (the normalised input, then the output before the residual add) */
    void forward(int layer, LlamaWeights.Layer w, Activations x, Activations xb, int n);

    /**
     * xb[t] = FFN(rmsNorm(x[t])) without the residual add, for a tensor-parallel rank whose output is a partial sum
     * the group adds up first. Dense blocks only: experts are placed whole, never split by columns.
     */
    default void project(int layer, LlamaWeights.Layer w, Activations x, Activations xb, int n) {
        throw new UnsupportedOperationException("a mixture-of-experts block is not split by columns");
    }

    /** Whether a backend may record a step through this block and replay it (nothing in it runs on the host). */
    default boolean recordable() {
        return true;
    }

    /**
     * Whether {@link #forward} must run even when this device has no rows in a step ({@code n == 0}): an expert-parallel
     * block exchanges rows with other devices in every layer, whether or not it has tokens of its own.
     */
    default boolean takesPartWhenIdle() {
        return false;
    }

    /** The slot for a model: dense SwiGLU over {@code hiddenDim} columns (a rank's share, or all), or a mixture of experts. */
    static FeedForward create(ModelConfig config, int hiddenDim, Backend backend, int maxBatchTokens) {
        return config.isMoe() ? new MoeFeedForward(config, backend, maxBatchTokens) : new DenseFeedForward(config, hiddenDim, backend, maxBatchTokens);
    }
}
