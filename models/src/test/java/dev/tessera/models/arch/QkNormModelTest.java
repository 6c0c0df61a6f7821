package dev.tessera.models.arch;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.TestModels;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.models.gguf.GgufWriter;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The q/k norms of Qwen3 (per head) and OLMoE (over the whole projection), checked by what they promise: an RMS norm
 * forgets the scale of its input, so scaling a head's rows of attn_q and attn_k leaves a per-head-normed model's logits
 * as they were, while the same change moves a Llama's; a whole-projection norm forgets one scale for all heads, not one
 * per head. Plus the expert rules of qwen3moe and olmoe as their config reads them.
 */
class QkNormModelTest {
    @TempDir
    Path tmp;

    static final int[] PROMPT = {1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203, 29889};
    static final float[] HEAD_SCALES = {8f, 2f, 16f, 1f};

    private static Path vocab() {
        return TestModels.file(SynthPreset.DEFAULT_VOCAB);
    }

    @Test
    void perHeadNormsMakeEveryHeadsScaleIrrelevant() {
        SynthModel dense = new SynthModel("qk", 128, 2, 4, 2, 256, TensorType.F32, 11);
        Path qwen3 = tmp.resolve("qwen3.gguf"), llama = tmp.resolve("llama.gguf");
        dense.withArchitecture("qwen3").write(vocab(), qwen3, null);
        dense.write(vocab(), llama, null);
        Path qwen3Scaled = tmp.resolve("qwen3-scaled.gguf"), llamaScaled = tmp.resolve("llama-scaled.gguf");
        scaleHeads(qwen3, qwen3Scaled, HEAD_SCALES, 32);
        scaleHeads(llama, llamaScaled, HEAD_SCALES, 32);
        float[] qwen3Base = logits(qwen3);
        double qwen3Moved = maxDifference(qwen3Base, logits(qwen3Scaled)), llamaMoved = maxDifference(logits(llama), logits(llamaScaled));
        assertClose(qwen3Base, logits(qwen3Scaled), "qwen3, heads scaled");
        // Random weights keep a Llama's attention near uniform, so the move is small, but far above rounding.
        assertTrue(llamaMoved > 1e-3 && llamaMoved > 100 * qwen3Moved,
                "llama has no q/k norm: scaling heads must move its logits (moved " + llamaMoved + ", qwen3 " + qwen3Moved + ")");
    }

    @Test
    void aWholeProjectionNormForgetsOneScaleNotOnePerHead() {
        SynthModel moe = new SynthModel("olmoe", 128, 2, 4, 4, 128, TensorType.F32, 12, 4, 2, 0f).withArchitecture("olmoe");
        Path olmoe = tmp.resolve("olmoe.gguf");
        moe.write(vocab(), olmoe, null);
        Path uniform = tmp.resolve("uniform.gguf"), perHead = tmp.resolve("per-head.gguf");
        scaleHeads(olmoe, uniform, new float[] {16f, 16f, 16f, 16f}, 32);
        scaleHeads(olmoe, perHead, HEAD_SCALES, 32);
        float[] base = logits(olmoe);
        double uniformMoved = maxDifference(base, logits(uniform)), perHeadMoved = maxDifference(base, logits(perHead));
        assertClose(base, logits(uniform), "olmoe, every head scaled by 16");
        // Measured: 0.024 against 6e-6.
        assertTrue(perHeadMoved > 1e-3 && perHeadMoved > 100 * uniformMoved,
                "olmoe's norm spans all heads: unequal head scales must move its logits (moved " + perHeadMoved + ", uniform " + uniformMoved + ")");
    }

    @Test
    void qwen3moeRenormalisesAndReadsTheExpertWidthWhileOlmoeDoesNeither() {
        Path qwen3moe = tmp.resolve("qwen3moe.gguf"), olmoe = tmp.resolve("olmoe.gguf");
        SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 3).withArchitecture("qwen3moe").write(vocab(), qwen3moe, null);
        new SynthModel("olmoe", 256, 2, 8, 8, 256, TensorType.Q8_0, 3, 8, 2, 0f).withArchitecture("olmoe").write(vocab(), olmoe, null);
        try (GgufFile a = GgufFile.open(qwen3moe); GgufFile b = GgufFile.open(olmoe)) {
            ModelConfig qc = ModelConfig.fromGguf(a), oc = ModelConfig.fromGguf(b);
            assertNotNull(qc.moe());
            assertTrue(qc.moe().normalize());
            assertEquals(256, qc.moe().expertHiddenDim());
            assertEquals(0, qc.moe().sharedHiddenDim());
            assertFalse(oc.moe().normalize());
            assertEquals(256, oc.moe().expertHiddenDim());
            assertEquals(Architecture.QkNorm.PER_HEAD, qc.architecture().qkNorm());
            assertEquals(Architecture.QkNorm.WHOLE, oc.architecture().qkNorm());
        }
    }

    @Test
    void synthRefusesShapesTheArchitectureCannotHave() {
        SynthModel dense = new SynthModel("d", 128, 2, 4, 2, 256, TensorType.Q8_0, 1);
        assertThrows(IllegalArgumentException.class, () -> dense.withArchitecture("qwen3moe").validate(), "qwen3moe needs experts");
        assertThrows(IllegalArgumentException.class, () -> dense.withArchitecture("nope").validate());
        SynthModel moe = SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 1);
        assertThrows(IllegalArgumentException.class, () -> moe.withArchitecture("qwen3").validate(), "qwen3 has no experts");
        assertThrows(IllegalArgumentException.class, () -> moe.withArchitecture("olmoe").validate(), "olmoe with fewer kv heads than heads");
    }

    /** Logits after PROMPT, in one prefill on two threads. */
    static float[] logits(Path path) {
        try (GgufFile file = GgufFile.open(path)) {
            ModelConfig c = ModelConfig.fromGguf(file);
            CpuBackend backend = new CpuBackend(2);
            try (LlamaModel model = new LlamaModel(c, LlamaWeights.load(file, c, backend), backend, 64, 1);
                 KvCache cache = model.newKvCache(PROMPT.length)) {
                float[] out = new float[c.vocabSize()];
                model.forward(PROMPT, AttentionBatch.single(cache, 0, PROMPT.length), new int[] {PROMPT.length - 1}, out);
                return out;
            }
        }
    }

    /** A copy whose F32 attn_q and attn_k rows of head h (headDim rows each) are multiplied by scales[h % scales.length]. */
    private static void scaleHeads(Path in, Path out, float[] scales, int headDim) {
        ValueLayout.OfFloat f32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        try (GgufFile src = GgufFile.open(in)) {
            GgufWriter w = new GgufWriter().metadata(src.metadata());
            for (GgufTensorInfo t : src.tensors().values()) w.tensor(t.name(), t.dims(), t.type());
            w.write(out, (info, dst) -> {
                dst.copyFrom(src.data(src.tensor(info.name())));
                if (!info.name().endsWith("attn_q.weight") && !info.name().endsWith("attn_k.weight")) return;
                assertEquals(TensorType.F32, info.type());
                int cols = info.cols();
                for (int r = 0; r < info.rows(); r++) {
                    float scale = scales[(r / headDim) % scales.length];
                    for (int i = 0; i < cols; i++) {
                        long at = 4L * ((long) r * cols + i);
                        dst.set(f32, at, dst.get(f32, at) * scale);
                    }
                }
            });
        }
    }

    private static void assertClose(float[] want, float[] got, String what) {
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 2e-3 * (1 + Math.abs(want[i])), what + ": logit " + i);
    }

    private static double maxDifference(float[] a, float[] b) {
        double max = 0;
        for (int i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
        return max;
    }
}
