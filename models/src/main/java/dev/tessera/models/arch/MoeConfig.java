package dev.tessera.models.arch;

import dev.tessera.models.gguf.GgufFile;

/**
 * The mixture-of-experts hyper-parameters of a model, from GGUF keys as llama.cpp reads them:
 * {@code ARCH.expert_count}, {@code ARCH.expert_used_count}, the expert width ({@code feed_forward_length} for llama and
 * olmoe; {@code expert_feed_forward_length}, else {@code feed_forward_length / expert_used_count}, for qwen2moe and
 * qwen3moe) and the shared expert's width ({@code expert_shared_feed_forward_length}, else {@code feed_forward_length}; 0: none).
 */
public record MoeConfig(int numExperts, int numExpertsUsed, int expertHiddenDim, int sharedHiddenDim,
                        boolean normalize, float weightsScale) {

    static final int MAX_EXPERTS = 1024;

    /** The MoE configuration, or null for a dense model; throws GgufException (one line) for what Tessera cannot run. */
    static MoeConfig fromGguf(GgufFile file, Architecture arch, int hiddenDim) {
        String p = arch.name() + ".";
        long numExperts = file.getLong(p + "expert_count", 0);
        if (numExperts == 0) {
            if (arch.experts().required) throw file.fail(p + "expert_count is missing; " + arch.name() + " is a mixture-of-experts architecture");
            return null;
        }
        if (arch.experts() == Architecture.ExpertStyle.NONE)
            throw file.fail("unsupported: " + arch.name() + " with " + p + "expert_count = " + numExperts + " (mixture-of-experts runs for "
                    + Architecture.moeNames() + ")");
        if (numExperts < 0 || numExperts > MAX_EXPERTS) throw file.fail("absurd " + p + "expert_count " + numExperts);
        if (!file.has(p + "expert_used_count")) throw file.fail(p + "expert_used_count is missing for a model with " + numExperts + " experts");
        long used = file.getLong(p + "expert_used_count", 0);
        if (used < 1 || used > numExperts) throw file.fail(p + "expert_used_count = " + used + " must be in 1.." + numExperts);
        for (String key : new String[] {"expert_group_count", "expert_shared_count", "expert_gating_func", "expert_weights_norm"})
            if (file.has(p + key) && !arch.experts().sharedExpert)
                throw file.fail("unsupported mixture-of-experts key " + p + key + " (Tessera runs Mixtral, Qwen2-MoE, Qwen3-MoE and OLMoE routing)");
        long expertHidden = arch.experts().expertWidthKey ? file.getLong(p + "expert_feed_forward_length", hiddenDim / used) : hiddenDim;
        long shared = arch.experts().sharedExpert ? file.getLong(p + "expert_shared_feed_forward_length", hiddenDim) : 0;
        if (expertHidden <= 0 || shared < 0) throw file.fail("absurd expert widths: expert " + expertHidden + ", shared " + shared);
        // llama.cpp reads expert_weights_scale only for architectures that declare it; none of ours does.
        return new MoeConfig((int) numExperts, (int) used, (int) expertHidden, (int) shared, arch.experts().normalize, 0f);
    }
}
