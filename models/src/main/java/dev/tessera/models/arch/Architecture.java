package dev.tessera.models.arch;

import java.util.List;

/**
 * The Llama-family architectures Tessera runs, as table rows: what differs between them is data, not code.
 * A new architecture is one row here (and, if it needs a new op, one file).
 * {@code experts} says whether the architecture has mixture-of-experts layers and by which rule (llama.cpp's
 * per-architecture {@code build_moe_ffn} arguments).
 */
public record Architecture(String name, boolean neoxRope, boolean attentionBias, QkNorm qkNorm, ExpertStyle experts) {
    public static final List<Architecture> SUPPORTED = List.of(
            new Architecture("llama", false, false, QkNorm.NONE, ExpertStyle.MIXTRAL),
            new Architecture("qwen2", true, true, QkNorm.NONE, ExpertStyle.NONE),
            new Architecture("qwen2moe", true, true, QkNorm.NONE, ExpertStyle.QWEN2_MOE),
            new Architecture("qwen3", true, false, QkNorm.PER_HEAD, ExpertStyle.NONE),
            new Architecture("qwen3moe", true, false, QkNorm.PER_HEAD, ExpertStyle.QWEN3_MOE),
            new Architecture("olmoe", true, false, QkNorm.WHOLE, ExpertStyle.OLMOE),
            new Architecture("deepseek", false, false, QkNorm.NONE, ExpertStyle.DEEPSEEK));

    public static Architecture find(String name) {
        for (Architecture a : SUPPORTED) if (a.name.equals(name)) return a;
        return null;
    }

    public static String supportedNames() {
        return String.join(", ", SUPPORTED.stream().map(Architecture::name).toList());
    }

    /**
     * RMS norms of q and k after their projections, before rope ({@code attn_q_norm}, {@code attn_k_norm}): Qwen3's
     * weight is one head wide and normalises every head on its own; OLMoE's is the whole projection wide.
     */
    public enum QkNorm {
        NONE, PER_HEAD, WHOLE;

        /** Into how many parts, each normalised on its own, the norm divides a projection of {@code numHeads} heads. */
        public int parts(int numHeads) {
            return this == PER_HEAD ? numHeads : 1;
        }

        /** The width of the norm's weight for a projection of {@code numHeads} heads of {@code headDim}. */
        public int weightWidth(int numHeads, int headDim) {
            return numHeads * headDim / parts(numHeads);
        }
    }

    /**
     * How an architecture's MoE layers route and combine, as llama.cpp builds them (its {@code build_moe_ffn} arguments
     * and tensor shapes): softmax gating over all experts, the top {@code expert_used_count}, renormalised when
     * {@code normalize} (Mixtral's and Qwen3-MoE's {@code norm_w}); Qwen2-MoE adds a shared expert scaled by
     * sigmoid(ffn_gate_inp_shexp · x). An expert's width is {@code feed_forward_length}, or where
     * {@code expertWidthKey}, {@code expert_feed_forward_length} (default {@code feed_forward_length / expert_used_count}).
     * DeepSeek-MoE ({@code deepseek}, llama.cpp's {@code src/models/deepseek.cpp}) keeps its first
     * {@code leading_dense_block_count} layers dense (width {@code feed_forward_length}), adds {@code expert_shared_count}
     * shared experts as one ungated SwiGLU of that many expert widths, and scales the raw top-k probabilities by
     * {@code expert_weights_scale}.
     */
    public enum ExpertStyle {
        /** No MoE layers: a file with {@code expert_count} is refused. */
        NONE(false, false, false, false, false),
        /** Optional: dense when {@code expert_count} is absent or 0 (llama), Mixtral-style MoE otherwise. */
        MIXTRAL(false, true, false, false, false),
        /** Every layer is MoE, with a gated shared expert. */
        QWEN2_MOE(true, false, true, true, false),
        /** Every layer is MoE, renormalised top-k, no shared expert. */
        QWEN3_MOE(true, true, false, true, false),
        /** Every layer is MoE, raw top-k probabilities. */
        OLMOE(true, false, false, false, false),
        /** Leading dense layers, then MoE: raw top-k probabilities times expert_weights_scale, ungated shared experts. */
        DEEPSEEK(true, false, true, true, true);

        public final boolean required;
        public final boolean normalize;
        public final boolean sharedExpert;
        public final boolean expertWidthKey;
        /** DeepSeek-MoE's keys: leading_dense_block_count, expert_shared_count (an ungated shared expert of that many widths), expert_weights_scale. */
        public final boolean deepseek;

        ExpertStyle(boolean required, boolean normalize, boolean sharedExpert, boolean expertWidthKey, boolean deepseek) {
            this.required = required;
            this.normalize = normalize;
            this.sharedExpert = sharedExpert;
            this.expertWidthKey = expertWidthKey;
            this.deepseek = deepseek;
        }
    }

    /** The supported architectures with mixture-of-experts layers, for messages. */
    public static String moeNames() {
        return String.join(", ", SUPPORTED.stream().filter(a -> a.experts != ExpertStyle.NONE).map(Architecture::name).toList());
    }
}
