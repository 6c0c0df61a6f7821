package dev.tessera.models.arch;

import dev.tessera.models.gguf.GgufFile;

/**
 * The mixture-of-experts hyper-parameters of a model, from GGUF keys as llama.cpp reads them:
 * {@code ARCH.expert_count}, {@code ARCH.expert_used_count}, the expert width ({@code feed_forward_length} for llama and
 * olmoe; {@code expert_feed_forward_length}, else {@code feed_forward_length / expert_used_count}, for qwen2moe and
 * qwen3moe) and the shared expert's width ({@code expert_shared_feed_forward_length}, else {@code feed_forward_length}; 0: none).
 * DeepSeek-MoE reads its own keys instead: the expert width {@code expert_feed_forward_length} (required), the shared
 * width as {@code expert_shared_count} expert widths, {@code expert_weights_scale} (0 or 1: none), and
 * {@code leading_dense_block_count}, the layers before the first MoE one, which are dense ({@code feed_forward_length}).
 */
public record MoeConfig(int numExperts, int numExpertsUsed, int expertHiddenDim, int sharedHiddenDim,
                        boolean normalize, float weightsScale, int leadingDenseLayers) {

    /** Whether layer {@code layer} is a mixture of experts (the others, DeepSeek's leading ones, are dense). */
    public boolean isMoeLayer(int layer) {
        return layer >= leadingDenseLayers;
    }

    static final int MAX_EXPERTS = 1024;

    /** The MoE configuration, or null for a dense model; throws GgufException (one line) for what Tessera cannot run. */
    static MoeConfig fromGguf(GgufFile file, Architecture arch, int hiddenDim, int numLayers) {
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
                throw file.fail("unsupported mixture-of-experts key " + p + key + " (Tessera runs Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE and DeepSeek-MoE routing)");
        if (arch.experts().deepseek) return deepseek(file, p, (int) numExperts, (int) used, numLayers);
        long expertHidden = arch.experts().expertWidthKey ? file.getLong(p + "expert_feed_forward_length", hiddenDim / used) : hiddenDim;
        long shared = arch.experts().sharedExpert ? file.getLong(p + "expert_shared_feed_forward_length", hiddenDim) : 0;
        if (expertHidden <= 0 || shared < 0) throw file.fail("absurd expert widths: expert " + expertHidden + ", shared " + shared);
        // llama.cpp reads expert_weights_scale only for architectures that declare it; none of ours does.
        return new MoeConfig((int) numExperts, (int) used, (int) expertHidden, (int) shared, arch.experts().normalize, 0f, 0);
    }

    /** DeepSeek-MoE's keys, as llama.cpp's deepseek loader reads them (the expert width and shared count are required). */
    private static MoeConfig deepseek(GgufFile file, String p, int numExperts, int used, int numLayers) {
        if (!file.has(p + "expert_feed_forward_length")) throw file.fail(p + "expert_feed_forward_length is missing");
        if (!file.has(p + "expert_shared_count")) throw file.fail(p + "expert_shared_count is missing");
        long expertHidden = file.getLong(p + "expert_feed_forward_length", 0), sharedCount = file.getLong(p + "expert_shared_count", 0);
        long leading = file.getLong(p + "leading_dense_block_count", 0);
        double scale = file.getDouble(p + "expert_weights_scale", 0);
        if (expertHidden <= 0 || expertHidden > 1 << 18) throw file.fail("absurd " + p + "expert_feed_forward_length " + expertHidden);
        if (sharedCount < 0 || sharedCount > 64) throw file.fail("absurd " + p + "expert_shared_count " + sharedCount);
        if (leading < 0 || leading >= numLayers)
            throw file.fail(p + "leading_dense_block_count = " + leading + " must be in 0.." + (numLayers - 1) + " (block_count " + numLayers + ")");
        if (!(scale >= 0 && scale < 1e6)) throw file.fail("absurd " + p + "expert_weights_scale " + scale);
        return new MoeConfig(numExperts, used, (int) expertHidden, (int) (expertHidden * sharedCount), false, (float) scale, (int) leading);
    }
}
