package dev.tessera.models.synth;

import dev.tessera.kernels.TensorType;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.gguf.GgufFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SynthMixTest {
    @TempDir
    Path tmp;

    /** The layers whose attn_v and ffn_down are Q6_K, as llama-quantize Q4_K_M wrote them for a 16-layer llama-1b (2026-12-07). */
    @Test
    void q4kmPicksTheLayersLlamaQuantizePicks() {
        assertEquals(Set.of(0, 1, 4, 7, 10, 13, 14, 15), q6kLayers(16, ".attn_v.weight"));
        assertEquals(Set.of(0, 1, 4, 7, 10, 13, 14, 15), q6kLayers(16, ".ffn_down.weight"));
        // 32 layers (llama-7b): the first and last four, and every third from layer 6.
        assertEquals(Set.of(0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31), q6kLayers(32, ".ffn_down.weight"));
        assertEquals(Set.of(), q6kLayers(32, ".attn_q.weight"));
        assertEquals(Set.of(), q6kLayers(32, ".ffn_gate.weight"));

        SynthMix mix = SynthMix.Q4_K_M;
        assertEquals(TensorType.Q6_K, mix.typeOf(TensorType.Q4_K, "output.weight", -1, 16, 0));
        assertEquals(TensorType.Q4_K, mix.typeOf(TensorType.Q4_K, "token_embd.weight", -1, 16, 0));
        assertEquals(TensorType.Q4_K, mix.typeOf(TensorType.Q4_K, "blk.3.attn_output.weight", 3, 16, 0));
        assertEquals(TensorType.Q5_K, mix.typeOf(TensorType.Q4_K, "blk.3.attn_output.weight", 3, 16, 8));
        assertEquals(TensorType.Q6_K, mix.typeOf(TensorType.Q4_K, "blk.0.ffn_down_exps.weight", 0, 16, 8));
        assertEquals(TensorType.Q8_0, SynthMix.PURE.typeOf(TensorType.Q8_0, "output.weight", -1, 16, 0));
        assertEquals("q4_k_m", mix.typeName(TensorType.Q4_K));
        assertEquals("q6_k", SynthMix.PURE.typeName(TensorType.Q6_K));
    }

    @Test
    void tinyQ4kmFileHasTheMixAndLoads() {
        Path out = tmp.resolve("tiny-q4_k_m.gguf");
        SynthModel.of(SynthPreset.TINY, TensorType.Q4_K, 3).withMix(SynthMix.Q4_K_M).write(SynthModelTest.vocab(), out, null);
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(TensorType.Q6_K, f.tensor("output.weight").type());
            assertEquals(TensorType.Q4_K, f.tensor("token_embd.weight").type());
            // Four layers: n / 8 = 0, so only layers 2 (every third) and 3 (the last eighth) get more bits.
            for (int i = 0; i < 4; i++) {
                TensorType expected = i >= 2 ? TensorType.Q6_K : TensorType.Q4_K;
                assertEquals(expected, f.tensor("blk." + i + ".attn_v.weight").type(), "layer " + i);
                assertEquals(expected, f.tensor("blk." + i + ".ffn_down.weight").type(), "layer " + i);
                assertEquals(TensorType.Q4_K, f.tensor("blk." + i + ".ffn_up.weight").type(), "layer " + i);
            }
        }
        ModelLoader.check(out);
    }

    @Test
    void q4kmNeedsAQ4kBase() {
        SynthModel q8 = SynthModel.of(SynthPreset.TINY, TensorType.Q8_0, 0).withMix(SynthMix.Q4_K_M);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, q8::validate);
        assertEquals("the q4_k_m mix is made of Q4_K, Q5_K and Q6_K tensors; its base type must be q4_k, not q8_0", e.getMessage());
    }

    private static Set<Integer> q6kLayers(int numLayers, String suffix) {
        Set<Integer> layers = new TreeSet<>();
        for (int i = 0; i < numLayers; i++)
            if (SynthMix.Q4_K_M.typeOf(TensorType.Q4_K, "blk." + i + suffix, i, numLayers, 0) == TensorType.Q6_K) layers.add(i);
        return layers;
    }
}
