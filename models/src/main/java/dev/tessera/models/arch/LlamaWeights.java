package dev.tessera.models.arch;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.Weight;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;

/** The weights of a Llama-family model, handed to a backend by llama.cpp tensor name and checked for shape. */
public record LlamaWeights(Weight tokenEmbedding, Weight outputNorm, Weight output, Layer[] layers) {

    /**
     * One transformer block. Biases are null unless the architecture has them. A mixture-of-experts block has
     * {@code moe} and no dense gate/up/down (null); a dense block has no {@code moe}.
     */
    public record Layer(Weight attentionNorm, Weight wq, Weight wk, Weight wv, Weight wo,
                        Weight bq, Weight bk, Weight bv,
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
        Loader l = new Loader(file, backend);
        Weight embd = l.matrix("token_embd.weight", c.vocabSize(), c.dim());
        Weight norm = l.vector("output_norm.weight", c.dim());
        // Tied embeddings: without output.weight the classifier is the embedding table.
        Weight output = file.tensor("output.weight") != null ? l.matrix("output.weight", c.vocabSize(), c.dim()) : embd;
        Layer[] layers = new Layer[c.numLayers()];
        boolean bias = c.architecture().attentionBias();
        int qDim = c.numHeads() * c.headDim();
        for (int i = 0; i < layers.length; i++) {
            String b = "blk." + i + ".";
            int layer = i;
            boolean moe = c.isMoe();
            layers[i] = new Layer(
                    l.vector(b + "attn_norm.weight", c.dim()),
                    l.matrix(b + "attn_q.weight", qDim, c.dim()),
                    l.matrix(b + "attn_k.weight", c.kvDim(), c.dim()),
                    l.matrix(b + "attn_v.weight", c.kvDim(), c.dim()),
                    l.matrix(b + "attn_output.weight", c.dim(), qDim),
                    bias ? l.vector(b + "attn_q.bias", qDim) : null,
                    bias ? l.vector(b + "attn_k.bias", c.kvDim()) : null,
                    bias ? l.vector(b + "attn_v.bias", c.kvDim()) : null,
                    l.vector(b + "ffn_norm.weight", c.dim()),
                    moe ? null : l.matrix(b + "ffn_gate.weight", c.hiddenDim(), c.dim()),
                    moe ? null : l.matrix(b + "ffn_up.weight", c.hiddenDim(), c.dim()),
                    moe ? null : l.matrix(b + "ffn_down.weight", c.dim(), c.hiddenDim()),
                    moe ? MoeWeights.load(file, c, backend, i, e -> owned.holds(layer, e)) : null);
        }
        return new LlamaWeights(embd, norm, output, layers);
    }

    private record Loader(GgufFile file, Backend backend) {
        Weight matrix(String name, int rows, int cols) {
            GgufTensorInfo t = require(name);
            if (t.dims().length != 2 || t.dims()[0] != cols || t.dims()[1] != rows)
                throw file.fail("tensor " + name + " has shape " + java.util.Arrays.toString(t.dims()) + ", expected [" + cols + ", " + rows + "]");
            return make(t, rows, cols);
        }

        Weight vector(String name, int n) {
            GgufTensorInfo t = require(name);
            if (t.numElements() != n) throw file.fail("tensor " + name + " has " + t.numElements() + " elements, expected " + n);
            return make(t, 1, n);
        }

        private GgufTensorInfo require(String name) {
            GgufTensorInfo t = file.tensor(name);
            if (t == null) throw file.fail("missing tensor " + name);
            if (!t.type().computable()) throw file.fail("tensor " + name + " has type " + t.type() + ", which Tessera cannot compute with");
            return t;
        }

        private Weight make(GgufTensorInfo t, int rows, int cols) {
            return backend.weight(t.name(), t.type(), file.data(t), rows, cols);
        }
    }
}
