package dev.tessera.models.synth;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * Named model shapes for {@code tessera synth}, dense and mixture-of-experts, Llama's unless a preset names another
 * architecture; all take their vocabulary from llama.cpp's Llama SPM vocab GGUF.
 */
public enum SynthPreset {
    TINY("tiny", 256, 4, 8, 4, 768),
    LLAMA_1B("llama-1b", 2048, 16, 32, 8, 8192),
    LLAMA_7B("llama-7b", 4096, 32, 32, 32, 11008),
    // Mixture-of-experts shapes, Mixtral-style (llama architecture with ffn_*_exps); ffn is each expert's width.
    MOE_TINY("moe-tiny", 256, 4, 8, 4, 256, 8, 2),
    MOE_16X("moe-16x", 512, 12, 8, 4, 512, 16, 2),
    MOE_8X1B("moe-8x1b", 2048, 16, 32, 8, 2816, 8, 2),
    // Qwen3-30B-A3B's layer (dim 2048, 32/4 heads of 128, 128 experts of width 768, top-8) with 4 of its 48 layers:
    // many small experts per token, where grouping and routing cost more than with Mixtral's few large ones.
    QWEN3MOE_A3B_4L("qwen3moe-a3b-4l", 2048, 4, 32, 4, 768, 128, 8, "qwen3moe", 128);

    /** The vocabulary file of every preset, relative to the shared models folder. */
    public static final String DEFAULT_VOCAB = "llama.cpp-vocab/ggml-vocab-llama-spm.gguf";

    public final String presetName;
    public final int dim;
    public final int numLayers;
    public final int numHeads;
    public final int numKvHeads;
    public final int hiddenDim;
    /** Experts per layer and experts each token uses; 0, 0 for a dense model. */
    public final int numExperts;
    public final int numExpertsUsed;
    /** general.architecture, and each head's width (0: dim / heads). */
    public final String architecture;
    public final int headDim;

    SynthPreset(String presetName, int dim, int numLayers, int numHeads, int numKvHeads, int hiddenDim) {
        this(presetName, dim, numLayers, numHeads, numKvHeads, hiddenDim, 0, 0);
    }

    SynthPreset(String presetName, int dim, int numLayers, int numHeads, int numKvHeads, int hiddenDim, int numExperts, int numExpertsUsed) {
        this(presetName, dim, numLayers, numHeads, numKvHeads, hiddenDim, numExperts, numExpertsUsed, "llama", 0);
    }

    SynthPreset(String presetName, int dim, int numLayers, int numHeads, int numKvHeads, int hiddenDim, int numExperts, int numExpertsUsed,
                String architecture, int headDim) {
        this.architecture = architecture;
        this.headDim = headDim;
        this.numExperts = numExperts;
        this.numExpertsUsed = numExpertsUsed;
        this.presetName = presetName;
        this.dim = dim;
        this.numLayers = numLayers;
        this.numHeads = numHeads;
        this.numKvHeads = numKvHeads;
        this.hiddenDim = hiddenDim;
    }

    /** The preset called {@code name}, or null. */
    public static SynthPreset find(String name) {
        for (SynthPreset p : values()) if (p.presetName.equals(name)) return p;
        return null;
    }

    public static String names() {
        return Arrays.stream(values()).map(p -> p.presetName).collect(Collectors.joining(", "));
    }
}
