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

    /** The slot for a model: dense SwiGLU, or a mixture of experts. */
    static FeedForward create(ModelConfig config, Backend backend, int maxBatchTokens) {
        return config.isMoe() ? new MoeFeedForward(config, backend, maxBatchTokens) : new DenseFeedForward(config, backend, maxBatchTokens);
    }
}
