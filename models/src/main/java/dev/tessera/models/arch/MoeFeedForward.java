package dev.tessera.models.arch;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.ExpertRouting;

/**
 * A mixture-of-experts block, as llama.cpp's {@code build_moe_ffn}: router logits = ffn_gate_inp · x; each token's
 * top-k experts by softmax probability; per slot down(silu(gate_e · x) * (up_e · x)) with the grouped expert matmul
 * (each expert's rows read once per step for all its tokens); the slots' outputs weighted and summed into x.
 * Qwen2-MoE adds a shared expert, a dense SwiGLU scaled by sigmoid(ffn_gate_inp_shexp · x); DeepSeek-MoE an ungated
 * one, and its leading layers are dense blocks, which this slot hands to a {@link DenseFeedForward}.
 */
final class MoeFeedForward implements FeedForward {
    private final ModelConfig config;
    private final Backend backend;
    private final ExpertRouting routing;
    private final Activations routerLogits;  // [maxBatchTokens][numExperts]
    private final Activations hb, hb2;       // [maxBatchTokens * k][expertHiddenDim]: one row per slot
    private final Activations slots;         // [maxBatchTokens * k][dim]
    private final ExpertCombine combine;
    private final DenseFeedForward dense;   // DeepSeek's leading dense layers; null where every layer is MoE
    private volatile RoutingObserver observer;

    MoeFeedForward(ModelConfig config, Backend backend, int maxBatchTokens) {
        MoeConfig m = config.moe();
        this.config = config;
        this.backend = backend;
        int k = m.numExpertsUsed();
        routing = new ExpertRouting(maxBatchTokens, m.numExperts(), k, m.normalize(), m.weightsScale());
        routerLogits = backend.allocate(maxBatchTokens, m.numExperts());
        hb = backend.allocate(maxBatchTokens * k, m.expertHiddenDim());
        hb2 = backend.allocate(maxBatchTokens * k, m.expertHiddenDim());
        slots = backend.allocate(maxBatchTokens * k, config.dim());
        combine = new ExpertCombine(config, backend, maxBatchTokens);
        dense = m.leadingDenseLayers() > 0 ? new DenseFeedForward(config, config.hiddenDim(), backend, maxBatchTokens) : null;
    }

    /** Sees every layer's routing from now on (null: none). */
    void observe(RoutingObserver observer) {
        this.observer = observer;
    }

    /**
     * Never: the routing is read on the host (the ids group the tokens by expert) and the grouping changes with every
     * step, so a recorded step would replay the first step's experts. A device backend runs MoE steps eagerly.
     */
    @Override
    public boolean recordable() {
        return false;
    }

    @Override
    public void forward(int layer, LlamaWeights.Layer w, Activations x, Activations xb, int n) {
        MoeWeights e = w.moe();
        if (e == null) {
            dense.forward(layer, w, x, xb, n);
            return;
        }
        int slotsUsed = n * routing.numUsed();
        backend.rmsNorm(x, w.ffnNorm(), config.rmsNormEps(), n, xb);
        backend.matmul(e.router(), xb, n, routerLogits);
        backend.routeExperts(routerLogits, n, routing);
        RoutingObserver o = observer;
        if (o != null) o.routed(layer, routing);
        backend.matmulExpertsGateUp(e.gate(), e.up(), xb, routing, hb, hb2);
        backend.swiglu(hb, hb2, slotsUsed);
        backend.matmulExperts(e.down(), hb, true, routing, slots);
        combine.addTo(x, xb, slots, routing, e, n);
    }
}
