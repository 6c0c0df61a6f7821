package dev.tessera.models.arch;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.Weight;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;

/** The weights of a Llama-family model, handed to a backend by llama.cpp tensor name and checked for shape. */
public record LlamaWeights(Weight tokenEmbedding, Weight outputNorm, Weight output, Layer[] layers) implements LayerSource {

    /** Every weight is resident: both halves of a layer come from the one record. */
    @Override
    public Layer acquire(int layer, Half half) {
        return layers[layer];
    }

    public ModelHead head() {
        return new ModelHead(tokenEmbedding, outputNorm, output);
    }

    /** Embeddings, final norm and classifier; without output.weight the classifier is the embedding table (tied). */
    public static ModelHead loadHead(GgufFile file, ModelConfig c, Backend backend) {
        WeightLookup l = new WeightLookup(file, backend);
        Weight embd = l.matrix("token_embd.weight", c.vocabSize(), c.dim());
        Weight norm = l.vector("output_norm.weight", c.dim());
        Weight output = file.tensor("output.weight") != null ? l.matrix("output.weight", c.vocabSize(), c.dim()) : embd;
        return new ModelHead(embd, norm, output);
    }

    /**
     * One transformer block. Biases and q/k norms are null unless the architecture has them. A mixture-of-experts block
     * has {@code moe} and no dense gate/up/down (null); a dense block (DeepSeek's leading ones too) has no {@code moe}.
     */
    public record Layer(Weight attentionNorm, Weight wq, Weight wk, Weight wv, Weight wo,
                        Weight bq, Weight bk, Weight bv, Weight qNorm, Weight kNorm,
                        Weight ffnNorm, Weight gate, Weight up, Weight down, MoeWeights moe) {}

    /** Which experts of which layer this process holds (expert parallelism loads a subset). */
    @FunctionalInterface
    public interface ExpertOwnership {
        ExpertOwnership ALL = (layer, expert) -> true;

        boolean holds(int layer, int expert);
    }

    public static LlamaWeights load(GgufFile file, ModelConfig c, Backend backend) {
        return load(file, c, backend, ExpertOwnership.ALL);
    }

    public static LlamaWeights load(GgufFile file, ModelConfig c, Backend backend, ExpertOwnership owned) {
        WeightLookup l = new WeightLookup(file, backend);
        ModelHead head = loadHead(file, c, backend);
        Layer[] layers = new Layer[c.numLayers()];
        boolean bias = c.architecture().attentionBias();
        int qDim = c.numHeads() * c.headDim();
        Architecture.QkNorm qkNorm = c.architecture().qkNorm();
        int qNormWidth = qkNorm.weightWidth(c.numHeads(), c.headDim()), kNormWidth = qkNorm.weightWidth(c.numKvHeads(), c.headDim());
        for (int i = 0; i < layers.length; i++) {
            String b = "blk." + i + ".";
            int layer = i;
            boolean moe = c.isMoeLayer(i);
            layers[i] = new Layer(
                    l.vector(b + "attn_norm.weight", c.dim()),
                    l.matrix(b + "attn_q.weight", qDim, c.dim()),
                    l.matrix(b + "attn_k.weight", c.kvDim(), c.dim()),
                    l.matrix(b + "attn_v.weight", c.kvDim(), c.dim()),
                    l.matrix(b + "attn_output.weight", c.dim(), qDim),
                    bias ? l.vector(b + "attn_q.bias", qDim) : null,
                    bias ? l.vector(b + "attn_k.bias", c.kvDim()) : null,
                    bias ? l.vector(b + "attn_v.bias", c.kvDim()) : null,
                    qkNorm != Architecture.QkNorm.NONE ? l.vector(b + "attn_q_norm.weight", qNormWidth) : null,
                    qkNorm != Architecture.QkNorm.NONE ? l.vector(b + "attn_k_norm.weight", kNormWidth) : null,
                    l.vector(b + "ffn_norm.weight", c.dim()),
                    moe ? null : l.matrix(b + "ffn_gate.weight", c.hiddenDim(), c.dim()),
                    moe ? null : l.matrix(b + "ffn_up.weight", c.hiddenDim(), c.dim()),
                    moe ? null : l.matrix(b + "ffn_down.weight", c.dim(), c.hiddenDim()),
                    moe ? MoeWeights.load(file, c, backend, i, e -> owned.holds(layer, e)) : null);
        }
        return new LlamaWeights(head.tokenEmbedding(), head.outputNorm(), head.output(), layers);
    }
}
