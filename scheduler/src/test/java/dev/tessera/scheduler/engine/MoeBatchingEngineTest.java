package dev.tessera.scheduler.engine;

import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A mixture-of-experts model (synthetic, Q8_0; Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE and DeepSeek-MoE) under the batching engine: 16 concurrent greedy
 * requests over the paged KV cache, with prefix caching on and shared prompt prefixes, each give exactly the tokens
 * the request gives alone.
 */
class MoeBatchingEngineTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2moe", "qwen3moe", "olmoe", "deepseek"})
    void sixteenConcurrentRequestsMatchTheirSoloRuns(String architecture) throws Exception {
        Path moe = tmp.resolve("moe-tiny-" + architecture + ".gguf");
        // OLMoE's k norm is as wide as the model, so its kv heads are all its heads.
        SynthModel model = architecture.equals("olmoe") ? new SynthModel("olmoe-tiny", 256, 4, 8, 8, 256, TensorType.Q8_0, 21, 8, 2, 0f)
                : SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 21);
        model.withAffinity(0.5f).withArchitecture(architecture).write(SingleRequestTest.models().resolve(SynthPreset.DEFAULT_VOCAB), moe, null);
        try (LoadedModel m = ModelLoader.load(moe, new CpuBackend(2), 64, 16)) {
            int n = 16;
            int[][] prompts = new int[n][];
            int[] maxTokens = new int[n];
            for (int i = 0; i < n; i++) {
                // Pairs share a prompt prefix of more than one 16-token block, so prefix caching adopts blocks.
                String text = "The engine batches requests from many users, and every expert reads its weights once per step. " + BatchingEngineTest.PROMPTS[i % BatchingEngineTest.PROMPTS.length] + " " + (i / 2);
                prompts[i] = m.tokenizer().encode(text, true, false);
                maxTokens[i] = 12 + i;
            }
            int[][] expected = PagedKvEngineTest.alone(m, prompts, maxTokens);
            try (BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(16, 64, 32))) {
                List<RequestHandle> handles = new ArrayList<>();
                for (int i = 0; i < n; i++)
                    handles.add(engine.submit(new EngineRequest("moe" + i, prompts[i], SamplingParams.greedy(), maxTokens[i], t -> false, false)));
                for (int i = 0; i < n; i++) assertArrayEquals(expected[i], BatchingEngineTest.collect(handles.get(i)).tokens(), "request " + i);
                assertTrue(engine.stats().prefixHitTokens() > 0, "shared prefixes must hit the prefix cache");
                PagedKvEngineTest.assertNoLeak(engine);
            }
        }
    }
}
