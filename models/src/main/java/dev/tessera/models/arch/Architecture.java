package dev.tessera.models.arch;

import java.util.List;

/**
 * The Llama-family architectures Tessera runs, as table rows: what differs between them is data, not code.
 * A new architecture is one row here (and, if it needs a new op, one file).
 * {@code experts} says whether the architecture has mixture-of-experts layers and by which rule (llama.cpp's
 * per-architecture {@code build_moe_ffn} arguments).
 */
public record Architecture(String name, boolean neoxRope, boolean attentionBias, ExpertStyle experts) {
    public static final List<Architecture> SUPPORTED = List.of(
            new Architecture("llama", false, false, ExpertStyle.MIXTRAL),
            new Architecture("qwen2", true, true, ExpertStyle.NONE),
            new Architecture("qwen2moe", true, true, ExpertStyle.QWEN2_MOE));

    /** The rows of the table before MoE: the architectures' dense shape, no experts allowed. */
    public Architecture(String name, boolean neoxRope, boolean attentionBias) {
        this(name, neoxRope, attentionBias, ExpertStyle.NONE);
    }

    public static Architecture find(String name) {
        for (Architecture a : SUPPORTED) if (a.name.equals(name)) return a;
        return null;
    }

    public static String supportedNames() {
        return String.join(", ", SUPPORTED.stream().map(Architecture::name).toList());
    }

    /**
     * How an architecture's MoE layers route and combine, as llama.cpp builds them: softmax gating over all experts,
     * the top {@code expert_used_count}, renormalised when {@code normalize} (Mixtral's {@code norm_w}); Qwen2-MoE
     * keeps the raw probabilities and adds a shared expert scaled by sigmoid(ffn_gate_inp_shexp · x).
     */
    public enum ExpertStyle {
        /** No MoE layers: a file with {@code expert_count} is refused. */
        NONE(false, false, false),
        /** Optional: dense when {@code expert_count} is absent or 0 (llama), Mixtral-style MoE otherwise. */
        MIXTRAL(false, true, false),
        /** Every layer is MoE, with a gated shared expert. */
        QWEN2_MOE(true, false, true);

        public final boolean required;
        public final boolean normalize;
        public final boolean sharedExpert;

        ExpertStyle(boolean required, boolean normalize, boolean sharedExpert) {
            this.required = required;
            this.normalize = normalize;
            this.sharedExpert = sharedExpert;
        }
    }
}
