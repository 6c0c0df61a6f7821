package dev.tessera.models.arch;

import dev.tessera.kernels.TensorType;
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

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DeepSeek-MoE ({@code deepseek}) as llama.cpp's loader reads it: leading dense layers, ungated shared experts as one
 * SwiGLU of {@code expert_shared_count} expert widths, raw top-k probabilities times {@code expert_weights_scale}
 * (0 and 1 both meaning none), and one-line refusals of keys it cannot run. Its greedy output against llama.cpp is
 * checked by {@code scripts/arch-parity.sh}.
 */
class DeepseekModelTest {
    @TempDir
    Path tmp;

    private Path synth() {
        Path out = tmp.resolve("deepseek.gguf");
        SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 7).withArchitecture("deepseek").write(TestModels.file(SynthPreset.DEFAULT_VOCAB), out, null);
        return out;
    }

    @Test
    void readsLeadingDenseLayersSharedExpertsAndTheWeightsScale() {
        Path file = synth();
        try (GgufFile f = GgufFile.open(file); CpuBackend cpu = new CpuBackend(1)) {
            ModelConfig c = ModelConfig.fromGguf(f);
            MoeConfig m = c.moe();
            assertNotNull(m);
            assertEquals(1, m.leadingDenseLayers());
            assertEquals(256, m.expertHiddenDim());
            assertEquals(2 * 256, m.sharedHiddenDim(), "two shared experts, one SwiGLU twice an expert's width");
            assertEquals(1.5f, m.weightsScale());
            assertFalse(m.normalize());
            assertFalse(c.architecture().neoxRope(), "llama.cpp ropes deepseek as llama does");
            assertFalse(c.isMoeLayer(0));
            assertTrue(c.isMoeLayer(1));
            LlamaWeights w = LlamaWeights.load(f, c, cpu);
            assertNull(w.layers()[0].moe());
            assertNotNull(w.layers()[0].gate());
            MoeWeights e = w.layers()[1].moe();
            assertNotNull(e);
            assertNull(w.layers()[1].gate());
            assertNull(e.sharedGateInput(), "deepseek's shared experts have no gate");
            assertEquals(512, e.sharedGate().rows());
        }
    }

    @Test
    void aScaleOfZeroIsNoScaleAndOtherScalesMoveTheLogits() {
        Path base = synth(), zero = tmp.resolve("zero.gguf"), one = tmp.resolve("one.gguf");
        withKeys(base, zero, Map.of("deepseek.expert_weights_scale", GgufValue.ofFloat32(0f)));
        withKeys(base, one, Map.of("deepseek.expert_weights_scale", GgufValue.ofFloat32(1f)));
        float[] atZero = QkNormModelTest.logits(zero), atOne = QkNormModelTest.logits(one), atBase = QkNormModelTest.logits(base);
        assertArrayEquals(atOne, atZero, "llama.cpp scales only when the scale is neither 0 nor 1");
        double moved = 0;
        for (int i = 0; i < atOne.length; i++) moved = Math.max(moved, Math.abs(atOne[i] - atBase[i]));
        assertTrue(moved > 1e-3, "a scale of 1.5 must change the logits, moved " + moved);
    }

    @Test
    void refusesKeysItCannotRunInOneLine() {
        Path base = synth(), all = tmp.resolve("all-dense.gguf"), noShared = tmp.resolve("no-shared.gguf");
        withKeys(base, all, Map.of("deepseek.leading_dense_block_count", GgufValue.ofUint32(4)));
        assertRefused(all, "leading_dense_block_count = 4 must be in 0..3");
        withKeys(base, noShared, Map.of("deepseek.expert_shared_count", GgufValue.ofString("drop")));
        assertRefused(noShared, "expert_shared_count is missing");
    }

    private static void assertRefused(Path file, String message) {
        try (GgufFile f = GgufFile.open(file)) {
            GgufException e = assertThrows(GgufException.class, () -> ModelConfig.fromGguf(f));
            assertTrue(e.getMessage().contains(message) && !e.getMessage().contains("\n"), e.getMessage());
        }
    }

    /** A copy with {@code keys} set; a string value "drop" removes the key. */
    private static void withKeys(Path in, Path out, Map<String, GgufValue> keys) {
        try (GgufFile src = GgufFile.open(in)) {
            GgufWriter w = new GgufWriter();
            src.metadata().forEach((k, v) -> { if (!keys.containsKey(k)) w.metadata(k, v); });
            keys.forEach((k, v) -> { if (!v.equals(GgufValue.ofString("drop"))) w.metadata(k, v); });
            for (GgufTensorInfo t : src.tensors().values()) w.tensor(t.name(), t.dims(), t.type());
            w.write(out, (info, dst) -> dst.copyFrom(src.data(src.tensor(info.name()))));
        }
    }
}
