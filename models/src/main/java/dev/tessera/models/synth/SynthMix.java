package dev.tessera.models.synth;

import dev.tessera.kernels.TensorType;

/**
 * Which type each 2-D tensor of a synthetic model gets. PURE gives every one the model's type. Q4_K_M gives each the type
 * llama-quantize's Q4_K_M preset picks for a llama model. Those are the files users download, and benchmarks should run
 * on them where llama.cpp's tools are not at hand (the GPU host).
 */
public enum SynthMix {
    PURE,
    /**
     * Q4_K, except Q6_K for output.weight, and for attn_v and ffn_down in the layers where llama.cpp's
     * {@code use_more_bits} holds (the first and last eighth, and every third between). With 8 experts, attn_output is
     * Q5_K. token_embd stays Q4_K.
     */
    Q4_K_M;

    /** The name {@code tessera synth --type} takes for this mix over {@code base}, as llama-quantize names the preset. */
    public String typeName(TensorType base) {
        return this == PURE ? base.ggmlName() : "q4_k_m";
    }

    /**
     * The type of {@code tensor} ("output.weight", "blk.3.attn_v.weight", ...) in layer {@code layer} of
     * {@code numLayers}, in a model of {@code numExperts} experts (0: dense) whose base type is {@code base}.
     */
    public TensorType typeOf(TensorType base, String tensor, int layer, int numLayers, int numExperts) {
        if (this == PURE) return base;
        if (tensor.equals("output.weight")) return TensorType.Q6_K;
        if (tensor.endsWith(".attn_v.weight") || tensor.endsWith(".ffn_down.weight") || tensor.endsWith(".ffn_down_exps.weight"))
            return useMoreBits(layer, numLayers) ? TensorType.Q6_K : TensorType.Q4_K;
        if (tensor.endsWith(".attn_output.weight") && numExperts == 8) return TensorType.Q5_K;
        return TensorType.Q4_K;
    }

    /** llama.cpp's choice of layers that get more bits: the first and last eighth, and every third layer between. */
    static boolean useMoreBits(int layer, int numLayers) {
        return layer < numLayers / 8 || layer >= 7 * numLayers / 8 || (layer - numLayers / 8) % 3 == 2;
    }
}
