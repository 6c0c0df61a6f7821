package dev.tessera.models.arch;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.Weight;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * One layer's mixture-of-experts weights. GGUF stores each projection of all experts as one 3-D tensor
 * ({@code blk.N.ffn_gate_exps.weight}, ggml ne [dim, expertHiddenDim, numExperts]: expert e is a
 * [expertHiddenDim][dim] matrix at byte e * expertHiddenDim * rowBytes); here each expert is its own {@link Weight},
 * a zero-copy slice, indexed by global expert id. An entry is null for an expert this process does not hold, so an
 * expert-parallel worker loads only its own experts ({@link #load} with {@code owned}).
 * <p>
 * Qwen2-MoE adds a shared expert (plain [hidden][dim] matrices) and its gate {@code ffn_gate_inp_shexp} ([dim], one
 * logit per token); DeepSeek-MoE's shared experts have no gate ({@code sharedGateInput} null). They are null for
 * Mixtral-style models.
 */
public record MoeWeights(Weight router, Weight[] gate, Weight[] up, Weight[] down,
                         Weight sharedGateInput, Weight sharedGate, Weight sharedUp, Weight sharedDown) {

    public int numExperts() {
        return gate.length;
    }

    /** Whether this process holds expert e. */
    public boolean holds(int e) {
        return gate[e] != null;
    }

    /** Loads layer {@code layer}'s experts, only those {@code owned} accepts (every one: {@code e -> true}). */
    public static MoeWeights load(GgufFile file, ModelConfig c, Backend backend, int layer, IntPredicate owned) {
        MoeConfig m = c.moe();
        String b = "blk." + layer + ".";
        Weight router = matrix(file, backend, b + "ffn_gate_inp.weight", m.numExperts(), c.dim());
        Weight[] gate = experts(file, backend, b + "ffn_gate_exps.weight", m.numExperts(), m.expertHiddenDim(), c.dim(), owned);
        Weight[] up = experts(file, backend, b + "ffn_up_exps.weight", m.numExperts(), m.expertHiddenDim(), c.dim(), owned);
        Weight[] down = experts(file, backend, b + "ffn_down_exps.weight", m.numExperts(), c.dim(), m.expertHiddenDim(), owned);
        if (m.sharedHiddenDim() == 0) return new MoeWeights(router, gate, up, down, null, null, null, null);
        boolean gated = !c.architecture().experts().deepseek;
        return new MoeWeights(router, gate, up, down,
                gated ? matrix(file, backend, b + "ffn_gate_inp_shexp.weight", 1, c.dim()) : null,
                matrix(file, backend, b + "ffn_gate_shexp.weight", m.sharedHiddenDim(), c.dim()),
                matrix(file, backend, b + "ffn_up_shexp.weight", m.sharedHiddenDim(), c.dim()),
                matrix(file, backend, b + "ffn_down_shexp.weight", c.dim(), m.sharedHiddenDim()));
    }

    /** The experts of a 3-D tensor [numExperts][rows][cols] as one weight each, checked for shape and kernels. */
    private static Weight[] experts(GgufFile file, Backend backend, String name, int numExperts, int rows, int cols, IntPredicate owned) {
        GgufTensorInfo t = require(file, name);
        long[] d = t.dims();
        if (d.length != 3 || d[0] != cols || d[1] != rows || d[2] != numExperts)
            throw file.fail("tensor " + name + " has shape " + Arrays.toString(d) + ", expected [" + cols + ", " + rows + ", " + numExperts + "]");
        if (!backend.supportsExperts(t.type()))
            throw file.fail("tensor " + name + " has type " + t.type() + ", which backend " + backend.name() + " has no expert (mul_mat_id) kernel for");
        long expertBytes = t.type().byteSize(cols) * rows;
        var data = file.data(t);
        Weight[] out = new Weight[numExperts];
        for (int e = 0; e < numExperts; e++)
            if (owned.test(e)) out[e] = backend.weight(name + "[" + e + "]", t.type(), data.asSlice(e * expertBytes, expertBytes), rows, cols);
        return out;
    }

    /** A 2-D weight [rows][cols]; a 1-D tensor of cols elements is accepted as one row (the shared expert's gate). */
    private static Weight matrix(GgufFile file, Backend backend, String name, int rows, int cols) {
        GgufTensorInfo t = require(file, name);
        long[] d = t.dims();
        boolean ok = rows == 1 ? t.numElements() == cols && d[0] == cols : d.length == 2 && d[0] == cols && d[1] == rows;
        if (!ok) throw file.fail("tensor " + name + " has shape " + Arrays.toString(d) + ", expected [" + cols + ", " + rows + "]");
        return backend.weight(name, t.type(), file.data(t), rows, cols);
    }

    private static GgufTensorInfo require(GgufFile file, String name) {
        GgufTensorInfo t = file.tensor(name);
        if (t == null) throw file.fail("missing tensor " + name);
        if (!t.type().computable()) throw file.fail("tensor " + name + " has type " + t.type() + ", which Tessera cannot compute with");
        return t;
    }
}
