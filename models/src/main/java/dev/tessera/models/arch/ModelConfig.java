package dev.tessera.models.arch;

import dev.tessera.kernels.RopeTable;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;

/** Hyper-parameters of a Llama-family model, read from GGUF metadata and checked against each other. */
public record ModelConfig(Architecture architecture, int dim, int hiddenDim, int numLayers, int numHeads, int numKvHeads,
                          int headDim, int vocabSize, int contextLength, float rmsNormEps, RopeTable rope, MoeConfig moe) {

    /** A dense model's configuration ({@code moe} null). */
    public ModelConfig(Architecture architecture, int dim, int hiddenDim, int numLayers, int numHeads, int numKvHeads,
                       int headDim, int vocabSize, int contextLength, float rmsNormEps, RopeTable rope) {
        this(architecture, dim, hiddenDim, numLayers, numHeads, numKvHeads, headDim, vocabSize, contextLength, rmsNormEps, rope, null);
    }

    /** Whether the feed-forward blocks are mixtures of experts (all, or all after DeepSeek's leading dense ones). */
    public boolean isMoe() {
        return moe != null;
    }

    /** Whether layer {@code layer}'s feed-forward block is a mixture of experts. */
    public boolean isMoeLayer(int layer) {
        return moe != null && moe.isMoeLayer(layer);
    }

    static final int MAX_DIM = 1 << 16;

    public int kvDim() {
        return numKvHeads * headDim;
    }

    /** Reads and validates the configuration; throws GgufException naming the file and the problem. */
    public static ModelConfig fromGguf(GgufFile file) {
        String archName = file.requireString("general.architecture");
        Architecture arch = Architecture.find(archName);
        if (arch == null) throw file.fail("unsupported architecture '" + archName + "' (supported: " + Architecture.supportedNames() + ")");
        String p = archName + ".";
        int dim = positive(file, p + "embedding_length", file.requireInt(p + "embedding_length"));
        int hiddenDim = positive(file, p + "feed_forward_length", file.requireInt(p + "feed_forward_length"));
        int numLayers = positive(file, p + "block_count", file.requireInt(p + "block_count"));
        int numHeads = positive(file, p + "attention.head_count", file.requireInt(p + "attention.head_count"));
        long kvHeads = file.getLong(p + "attention.head_count_kv", numHeads);
        if (kvHeads <= 0 || kvHeads > numHeads || numHeads % kvHeads != 0)
            throw file.fail(p + "attention.head_count_kv = " + kvHeads + " must divide head_count = " + numHeads);
        int numKvHeads = (int) kvHeads;
        if (dim > MAX_DIM || hiddenDim > 4 * MAX_DIM || numLayers > 4096 || numHeads > dim)
            throw file.fail("absurd model dimensions: dim " + dim + ", ffn " + hiddenDim + ", layers " + numLayers + ", heads " + numHeads);
        long keyLength = file.getLong(p + "attention.key_length", dim / numHeads);
        if (dim % numHeads != 0 && !file.has(p + "attention.key_length"))
            throw file.fail("embedding_length " + dim + " is not a multiple of head_count " + numHeads);
        if (keyLength <= 0 || keyLength > 1024 || keyLength % 2 != 0) throw file.fail("absurd head dimension " + keyLength);
        int headDim = (int) keyLength;
        long valueLength = file.getLong(p + "attention.value_length", keyLength);
        if (valueLength != keyLength)
            throw file.fail("unsupported: attention.value_length " + valueLength + " differs from key_length " + keyLength);
        long contextLength = file.getLong(p + "context_length", 2048);
        if (contextLength <= 0 || contextLength > (1 << 24)) throw file.fail("absurd context_length " + contextLength);
        double eps = file.getDouble(p + "attention.layer_norm_rms_epsilon", 1e-5);
        if (!(eps > 0 && eps < 1)) throw file.fail("absurd layer_norm_rms_epsilon " + eps);

        String[] tokens = file.getStringArray("tokenizer.ggml.tokens");
        GgufTensorInfo embd = file.tensor("token_embd.weight");
        if (embd == null) throw file.fail("missing tensor token_embd.weight");
        int vocabSize = embd.dims().length == 2 ? (int) embd.dims()[1] : -1;
        if (vocabSize <= 0 || (tokens != null && tokens.length != vocabSize))
            throw file.fail("token_embd.weight has " + vocabSize + " rows but the vocabulary has " + (tokens == null ? "no" : tokens.length) + " tokens");

        long ropeDim = file.getLong(p + "rope.dimension_count", headDim);
        if (ropeDim <= 0 || ropeDim > headDim || ropeDim % 2 != 0) throw file.fail("rope.dimension_count " + ropeDim + " must be even and at most the head dimension " + headDim);
        double freqBase = file.getDouble(p + "rope.freq_base", 10000.0);
        if (!(freqBase > 1)) throw file.fail("absurd rope.freq_base " + freqBase);
        double positionScale = 1.0;
        String scaling = file.getString(p + "rope.scaling.type", "none");
        if (scaling.equals("linear")) positionScale = file.getDouble(p + "rope.scaling.factor", 1.0);
        else if (!scaling.equals("none") && !scaling.equals("llama3")) throw file.fail("unsupported rope.scaling.type '" + scaling + "'");
        if (!(positionScale > 0)) throw file.fail("absurd rope.scaling.factor " + positionScale);
        float[] factors = ropeFactors(file, p, (int) ropeDim, freqBase, scaling);
        RopeTable rope = RopeTable.of((int) ropeDim, freqBase, factors, positionScale, arch.neoxRope());
        MoeConfig moe = MoeConfig.fromGguf(file, arch, hiddenDim, numLayers);
        return new ModelConfig(arch, dim, hiddenDim, numLayers, numHeads, numKvHeads, headDim, vocabSize,
                (int) contextLength, (float) eps, rope, moe);
    }

    /** Llama-3.1 frequency factors: the rope_freqs tensor llama.cpp's converter writes, or the scaling keys. */
    private static float[] ropeFactors(GgufFile file, String p, int ropeDim, double freqBase, String scaling) {
        GgufTensorInfo t = file.tensor("rope_freqs.weight");
        if (t != null) {
            if (t.numElements() != ropeDim / 2 || t.type() != dev.tessera.kernels.TensorType.F32)
                throw file.fail("rope_freqs.weight must be F32 with " + ropeDim / 2 + " elements");
            float[] f = new float[ropeDim / 2];
            java.lang.foreign.MemorySegment.copy(file.data(t), java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0, f, 0, f.length);
            return f;
        }
        if (scaling.equals("llama3"))
            return RopeTable.llama3Factors(ropeDim, freqBase, file.getDouble(p + "rope.scaling.factor", 8),
                    file.getDouble(p + "rope.scaling.low_freq_factor", 1), file.getDouble(p + "rope.scaling.high_freq_factor", 4),
                    file.getDouble(p + "rope.scaling.original_context_length", 8192));
        return null;
    }

    private static int positive(GgufFile file, String key, int v) {
        if (v <= 0) throw file.fail(key + " must be positive, got " + v);
        return v;
    }
}
