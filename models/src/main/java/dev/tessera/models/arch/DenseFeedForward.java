package dev.tessera.models.arch;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.Weight;

/** Llama's SwiGLU block: down(silu(gate · x) * (up · x)), every row of the batch through the same three matrices. */
final class DenseFeedForward implements FeedForward {
    private final ModelConfig config;
    private final Backend backend;
    private final Activations hb, hb2;  // [maxBatchTokens][hiddenDim]

    DenseFeedForward(ModelConfig config, int hiddenDim, Backend backend, int maxBatchTokens) {
        this.config = config;
        this.backend = backend;
        hb = backend.allocate(maxBatchTokens, hiddenDim);
        hb2 = backend.allocate(maxBatchTokens, hiddenDim);
    }

    @Override
    public void forward(int layer, LlamaWeights.Layer w, Activations x, Activations xb, int n) {
        project(layer, w, x, xb, n);
        backend.add(x, xb, n);
    }

    @Override
    public void project(int layer, LlamaWeights.Layer w, Activations x, Activations xb, int n) {
        backend.rmsNorm(x, w.ffnNorm(), config.rmsNormEps(), n, xb);
        backend.matmuls(new Weight[]{w.gate(), w.up()}, xb, n, new Activations[]{hb, hb2});
        backend.swiglu(hb, hb2, n);
        backend.matmul(w.down(), hb, n, xb);
    }
}
