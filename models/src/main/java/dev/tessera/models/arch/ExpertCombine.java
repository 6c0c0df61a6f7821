package dev.tessera.models.arch;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.ExpertRouting;

/**
 * The end of a mixture-of-experts block, wherever its experts ran: the slots' outputs weighted by the routing and
 * added to x, and the shared expert where the layer has one: a dense SwiGLU, scaled by sigmoid(ffn_gate_inp_shexp · x)
 * for Qwen2-MoE, added as it is for DeepSeek-MoE.
 */
final class ExpertCombine {
    private final Backend backend;
    private final Activations sharedHb, sharedHb2, sharedGate;  // with a shared expert only: [maxBatchTokens][shared], [..][1]

    ExpertCombine(ModelConfig config, Backend backend, int maxBatchTokens) {
        this.backend = backend;
        boolean shared = config.moe().sharedHiddenDim() > 0;
        sharedHb = shared ? backend.allocate(maxBatchTokens, config.moe().sharedHiddenDim()) : null;
        sharedHb2 = shared ? backend.allocate(maxBatchTokens, config.moe().sharedHiddenDim()) : null;
        sharedGate = shared ? backend.allocate(maxBatchTokens, 1) : null;
    }

    /** x += Σ_s weight(t, s) · slots[t * k + s], plus the shared expert of {@code xb} (the normed input, overwritten). */
    void addTo(Activations x, Activations xb, Activations slots, ExpertRouting routing, MoeWeights e, int n) {
        if (e.sharedGate() == null) {
            backend.combineExperts(slots, routing, x);
            return;
        }
        // Every shared matmul reads xb before the last one reuses it for the shared expert's output.
        if (e.sharedGateInput() != null) backend.matmul(e.sharedGateInput(), xb, n, sharedGate);
        backend.matmul(e.sharedGate(), xb, n, sharedHb);
        backend.matmul(e.sharedUp(), xb, n, sharedHb2);
        backend.swiglu(sharedHb, sharedHb2, n);
        backend.matmul(e.sharedDown(), sharedHb, n, xb);
        backend.combineExperts(slots, routing, x);
        if (e.sharedGateInput() != null) backend.addSigmoidGated(x, xb, sharedGate, n);
        else backend.add(x, xb, n);
    }
}
