package dev.tessera.models.arch;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.RopeTable;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.TestModels;
import dev.tessera.models.gguf.GgufException;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.models.gguf.GgufValue;
import dev.tessera.models.gguf.GgufWriter;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The MoE forward on real synthetic GGUFs in Mixtral layout: a one-expert MoE is exactly the dense model made of the
 * same bytes, identical experts under top-2 give the dense result, the routing observer sees every layer, planted
 * affinity shows in the routing, and a backend without expert kernels refuses the file in one line.
 */
class MoeModelTest {
    @TempDir
    Path tmp;

    static final int[] PROMPT = {1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203, 29889, 9038, 2501, 263, 931};

    private static Path vocab() {
        return TestModels.file(SynthPreset.DEFAULT_VOCAB);
    }

    @Test
    void oneExpertTopOneIsExactlyTheDenseModelOfTheSameBytes() {
        Path moe = tmp.resolve("moe1.gguf");
        new SynthModel("moe1", 128, 3, 4, 2, 256, TensorType.Q8_0, 3, 1, 1, 0f).write(vocab(), moe, null);
        Path dense = tmp.resolve("dense.gguf");
        densify(moe, dense, 0);
        float[] a = logits(moe, PROMPT, 2), b = logits(dense, PROMPT, 2);
        assertArrayEquals(b, a, "one expert, weight 1: the MoE block must be the dense block");
    }

    @Test
    void identicalExpertsUnderTopTwoGiveTheDenseResult() {
        Path moe = tmp.resolve("moe4.gguf");
        new SynthModel("moe4", 128, 2, 4, 2, 256, TensorType.Q8_0, 5, 4, 2, 0f).write(vocab(), moe, null);
        Path same = tmp.resolve("same.gguf");
        copyExpertZeroEverywhere(moe, same);
        Path dense = tmp.resolve("dense.gguf");
        densify(same, dense, 0);
        float[] a = logits(same, PROMPT, 1), b = logits(dense, PROMPT, 1);
        // Renormalised weights sum to 1, so w0 * y + w1 * y = y up to rounding.
        for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-4f * (1 + Math.abs(b[i])), "logit " + i);
    }

    @Test
    void observerSeesEveryLayerAndPlantedAffinityShows() {
        Path strong = tmp.resolve("strong.gguf"), none = tmp.resolve("none.gguf");
        SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 9).withAffinity(1f).write(vocab(), strong, null);
        SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 9).write(vocab(), none, null);
        int[] prompt = new int[120];
        for (int i = 0; i < prompt.length; i++) prompt[i] = 100 + (i * 7919) % 30000;
        double withAffinity = concentration(strong, prompt), without = concentration(none, prompt);
        // Top-1 at layer l+1 given top-1 at layer l: near-deterministic with affinity 1, spread out with none.
        assertTrue(withAffinity > 0.8, "affinity 1: top next-layer expert share " + withAffinity);
        assertTrue(without < 0.6, "affinity 0: top next-layer expert share " + without);
    }

    @Test
    void backendWithoutExpertKernelsRefusesInOneLineNamingTheType() {
        Path moe = tmp.resolve("moe.gguf");
        SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 1).write(vocab(), moe, null);
        try (GgufFile file = GgufFile.open(moe); CpuBackend cpu = new CpuBackend(1)) {
            ModelConfig c = ModelConfig.fromGguf(file);
            GgufException e = assertThrows(GgufException.class, () -> LlamaWeights.load(file, c, new NoExpertKernels(cpu)));
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
            assertTrue(e.getMessage().contains("Q8_0") && e.getMessage().contains("blk.0.ffn_gate_exps.weight"), e.getMessage());
        }
    }

    @Test
    void moeStepsAreNeverRecorded() {
        // Routing is read on the host and regroups the tokens every step: a replayed graph would keep the first step's experts.
        Path moe = tmp.resolve("moe.gguf");
        SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 1).write(vocab(), moe, null);
        try (GgufFile file = GgufFile.open(moe); CpuBackend cpu = new CpuBackend(1)) {
            ModelConfig c = ModelConfig.fromGguf(file);
            FeedForward ffn = FeedForward.create(c, c.hiddenDim(), cpu, 4);
            assertTrue(ffn instanceof MoeFeedForward, ffn.getClass().getName());
            assertFalse(ffn.recordable());
        }
    }

    @Test
    void configReadsExpertKeysAndRefusesWhatItCannotRun() {
        Path moe = tmp.resolve("moe.gguf");
        SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 1).write(vocab(), moe, null);
        try (GgufFile file = GgufFile.open(moe)) {
            MoeConfig m = ModelConfig.fromGguf(file).moe();
            assertNotNull(m);
            assertEquals(8, m.numExperts());
            assertEquals(2, m.numExpertsUsed());
            assertEquals(256, m.expertHiddenDim());
            assertTrue(m.normalize());
        }
        Path qwen2 = tmp.resolve("qwen2-with-experts.gguf");
        rewrite(moe, qwen2, "qwen2");
        try (GgufFile file = GgufFile.open(qwen2)) {
            GgufException e = assertThrows(GgufException.class, () -> ModelConfig.fromGguf(file));
            assertTrue(e.getMessage().contains("unsupported: qwen2 with qwen2.expert_count = 8"), e.getMessage());
        }
    }

    @Test
    void expertOwnershipLoadsOnlyTheOwnedExperts() {
        Path moe = tmp.resolve("moe.gguf");
        SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 1).write(vocab(), moe, null);
        try (GgufFile file = GgufFile.open(moe); CpuBackend cpu = new CpuBackend(1)) {
            ModelConfig c = ModelConfig.fromGguf(file);
            LlamaWeights w = LlamaWeights.load(file, c, cpu, (layer, e) -> e % 2 == layer % 2);
            for (int l = 0; l < c.numLayers(); l++)
                for (int e = 0; e < 8; e++) assertEquals(e % 2 == l % 2, w.layers()[l].moe().holds(e), "layer " + l + " expert " + e);
        }
    }

    /** Mean over (layer, expert i) of the largest share of layer-l tokens with top-1 i that pick one same top-1 at l+1. */
    private static double concentration(Path path, int[] prompt) {
        try (GgufFile file = GgufFile.open(path)) {
            ModelConfig c = ModelConfig.fromGguf(file);
            CpuBackend backend = new CpuBackend(2);
            int numExperts = c.moe().numExperts();
            int[][] top = new int[c.numLayers()][prompt.length];
            int[] seen = new int[c.numLayers()];
            try (LlamaModel model = new LlamaModel(c, LlamaWeights.load(file, c, backend), backend, prompt.length, 1)) {
                model.observeRouting((layer, r) -> {
                    seen[layer]++;
                    for (int t = 0; t < r.numTokens(); t++) {
                        top[layer][t] = r.expert(t, 0);
                        assertTrue(r.weight(t, 0) >= r.weight(t, 1));
                    }
                });
                try (KvCache cache = model.newKvCache(prompt.length)) {
                    model.forward(prompt, AttentionBatch.single(cache, 0, prompt.length), new int[] {prompt.length - 1}, new float[c.vocabSize()]);
                }
            }
            for (int l = 0; l < c.numLayers(); l++) assertEquals(1, seen[l], "layer " + l + " observed once");
            double sum = 0;
            int groups = 0;
            for (int l = 0; l + 1 < c.numLayers(); l++) {
                int[][] counts = new int[numExperts][numExperts];
                for (int t = 0; t < prompt.length; t++) counts[top[l][t]][top[l + 1][t]]++;
                for (int i = 0; i < numExperts; i++) {
                    int total = 0, best = 0;
                    for (int j = 0; j < numExperts; j++) { total += counts[i][j]; best = Math.max(best, counts[i][j]); }
                    if (total >= 5) { sum += (double) best / total; groups++; }
                }
            }
            return sum / groups;
        }
    }

    /** Logits after the prompt, run in one prefill. */
    private static float[] logits(Path path, int[] prompt, int threads) {
        try (GgufFile file = GgufFile.open(path)) {
            ModelConfig c = ModelConfig.fromGguf(file);
            CpuBackend backend = new CpuBackend(threads);
            try (LlamaModel model = new LlamaModel(c, LlamaWeights.load(file, c, backend), backend, 64, 1);
                 KvCache cache = model.newKvCache(prompt.length)) {
                float[] out = new float[c.vocabSize()];
                model.forward(prompt, AttentionBatch.single(cache, 0, prompt.length), new int[] {prompt.length - 1}, out);
                return out;
            }
        }
    }

    /** The dense model made of expert {@code e}'s bytes: ffn_*_exps slices become ffn_*.weight, router and keys dropped. */
    private static void densify(Path moe, Path out, int e) {
        try (GgufFile src = GgufFile.open(moe)) {
            GgufWriter w = new GgufWriter();
            src.metadata().forEach((k, v) -> { if (!k.contains("expert_")) w.metadata(k, v); });
            List<String[]> sources = new ArrayList<>();
            for (GgufTensorInfo t : src.tensors().values()) {
                if (t.name().endsWith("ffn_gate_inp.weight")) continue;
                if (t.name().contains("_exps.")) {
                    String name = t.name().replace("_exps.", ".");
                    w.tensor(name, new long[] {t.dims()[0], t.dims()[1]}, t.type());
                    sources.add(new String[] {name, t.name()});
                } else {
                    w.tensor(t.name(), t.dims(), t.type());
                    sources.add(new String[] {t.name(), t.name()});
                }
            }
            w.write(out, (info, dst) -> {
                String from = sources.stream().filter(s -> s[0].equals(info.name())).findFirst().orElseThrow()[1];
                GgufTensorInfo t = src.tensor(from);
                long bytes = info.sizeBytes();
                MemorySegment data = src.data(t);
                dst.copyFrom(t.dims().length == 3 ? data.asSlice(e * bytes, bytes) : data);
            });
        }
    }

    /** A copy whose every expert holds expert 0's bytes. */
    private static void copyExpertZeroEverywhere(Path moe, Path out) {
        try (GgufFile src = GgufFile.open(moe)) {
            GgufWriter w = new GgufWriter().metadata(src.metadata());
            for (GgufTensorInfo t : src.tensors().values()) w.tensor(t.name(), t.dims(), t.type());
            w.write(out, (info, dst) -> {
                MemorySegment data = src.data(src.tensor(info.name()));
                if (info.dims().length != 3) { dst.copyFrom(data); return; }
                long bytes = info.sizeBytes() / info.dims()[2];
                for (long e = 0; e < info.dims()[2]; e++) dst.asSlice(e * bytes, bytes).copyFrom(data.asSlice(0, bytes));
            });
        }
    }

    /** A copy under another general.architecture (keys renamed to its prefix). */
    private static void rewrite(Path in, Path out, String arch) {
        try (GgufFile src = GgufFile.open(in)) {
            GgufWriter w = new GgufWriter();
            src.metadata().forEach((k, v) -> w.metadata(k.startsWith("llama.") ? arch + k.substring(5) : k, k.equals("general.architecture") ? GgufValue.ofString(arch) : v));
            for (GgufTensorInfo t : src.tensors().values()) w.tensor(t.name(), t.dims(), t.type());
            w.write(out, (info, dst) -> dst.copyFrom(src.data(src.tensor(info.name()))));
        }
    }

    /** Stands for a backend without expert kernels for the file's type (CUDA for Q5_K, say): the CPU, minus supportsExperts. */
    private record NoExpertKernels(CpuBackend cpu) implements Backend {
        @Override public String name() { return "no-experts"; }
        @Override public Weight weight(String name, TensorType type, MemorySegment data, int rows, int cols) { return cpu.weight(name, type, data, rows, cols); }
        @Override public Activations allocate(int maxTokens, int width) { return cpu.allocate(maxTokens, width); }
        @Override public KvCache allocateKvCache(int numLayers, int numKvHeads, int headDim, int capacity) { return cpu.allocateKvCache(numLayers, numKvHeads, headDim, capacity); }
        @Override public KvBlockStore allocateKvBlocks(int numLayers, int numKvHeads, int headDim, int blockSize, int numBlocks, KvCacheType type) { return cpu.allocateKvBlocks(numLayers, numKvHeads, headDim, blockSize, numBlocks, type); }
        @Override public void upload(float[] src, Activations dst, int numTokens) { cpu.upload(src, dst, numTokens); }
        @Override public void download(Activations src, float[] dst, int numTokens) { cpu.download(src, dst, numTokens); }
        @Override public void embed(Weight table, int[] tokens, int numTokens, Activations out) { cpu.embed(table, tokens, numTokens, out); }
        @Override public void rmsNorm(Activations x, Weight gamma, float eps, int numTokens, Activations out) { cpu.rmsNorm(x, gamma, eps, numTokens, out); }
        @Override public void rmsNormHeads(Activations x, Weight gamma, float eps, int numTokens, int numHeads) { cpu.rmsNormHeads(x, gamma, eps, numTokens, numHeads); }
        @Override public void matmul(Weight w, Activations x, int numTokens, Activations out) { cpu.matmul(w, x, numTokens, out); }
        @Override public void addBias(Activations x, Weight bias, int numTokens) { cpu.addBias(x, bias, numTokens); }
        @Override public void rope(Activations x, int numTokens, int numHeads, int headDim, int[] positions, RopeTable rope) { cpu.rope(x, numTokens, numHeads, headDim, positions, rope); }
        @Override public void swiglu(Activations gate, Activations up, int numTokens) { cpu.swiglu(gate, up, numTokens); }
        @Override public void add(Activations acc, Activations x, int numTokens) { cpu.add(acc, x, numTokens); }
        @Override public void attention(int layer, Activations q, Activations k, Activations v, AttentionBatch batch, int numHeads, int numKvHeads, int headDim, Activations out) { cpu.attention(layer, q, k, v, batch, numHeads, numKvHeads, headDim, out); }
        @Override public void close() {}
    }
}
