package dev.tessera.models.arch;

import dev.tessera.models.gguf.GgufFile;

/** Hyper-parameters of a Llama-family model, read from GGUF metadata. */
public record ModelConfig(String architecture, int dim, int hiddenDim, int numLayers, int numHeads, int numKvHeads,
                          int headDim, int vocabSize, int contextLength, float rmsNormEps) {

    /** Reads and validates the configuration; throws GgufException naming the file and the problem. */
    public static ModelConfig fromGguf(GgufFile file) {
        String arch = file.requireString("general.architecture");
        int dim = file.requireInt(arch + ".embedding_length");
        int hiddenDim = file.requireInt(arch + ".feed_forward_length");
        int numLayers = file.requireInt(arch + ".block_count");
        int numHeads = file.requireInt(arch + ".attention.head_count");
        int numKvHeads = (int) file.getLong(arch + ".attention.head_count_kv", numHeads);
        int contextLength = (int) file.getLong(arch + ".context_length", 2048);
        float eps = (float) file.getDouble(arch + ".attention.layer_norm_rms_epsilon", 1e-5);
        return new ModelConfig(arch, dim, hiddenDim, numLayers, numHeads, numKvHeads, dim / Math.max(1, numHeads), 0, contextLength, eps);
    }
}
