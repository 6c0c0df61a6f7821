package dev.tessera.scheduler.engine;

import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static dev.tessera.scheduler.engine.BatchingEngineTest.PROMPTS;
import static dev.tessera.scheduler.engine.BatchingEngineTest.collect;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The batching engine over its paged KV pool: preemption under memory pressure, prefix reuse, no leaked blocks. */
public class PagedKvEngineTest {
    static Path stories() {
        return SingleRequestTest.models().resolve("stories260K.gguf");
    }

    static long bytesFor(LoadedModel m, int numBlocks, KvCacheType type) {
        ModelConfig c = m.config();
        return numBlocks * KvBlockStore.bytesPerBlock(c.numLayers(), c.kvDim(), 16, type);
    }

    static int[][] alone(LoadedModel m, int[][] prompts, int[] maxTokens) {
        int[][] out = new int[prompts.length][];
        for (int i = 0; i < prompts.length; i++) out[i] = SingleRequestTest.greedyAlone(m.model(), prompts[i], maxTokens[i], t -> false);
        return out;
    }

    /** Waits for the engine thread to finish its bookkeeping after the last event, then checks every block is back. */
    public static void assertNoLeak(BatchingEngine engine) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while ((engine.numRunning() != 0 || engine.numFreeKvBlocks() != engine.numKvBlocks()) && System.nanoTime() < deadline) Thread.sleep(5);
        assertEquals(0, engine.numRunning());
        assertEquals(engine.numKvBlocks(), engine.numFreeKvBlocks(), "KV blocks leaked");
        assertEquals(0.0, engine.stats().kvCacheUsage());
    }

    @Test
    void poolTooSmallForAllRequestsPreemptsAndEveryRequestStillMatchesItsSoloRun() throws Exception {
        try (LoadedModel m = ModelLoader.load(stories(), new CpuBackend(2), 64, 8)) {
            int n = 8;
            int[][] prompts = new int[n][];
            int[] maxTokens = new int[n];
            for (int i = 0; i < n; i++) { prompts[i] = m.tokenizer().encode(PROMPTS[i], true, false); maxTokens[i] = 90 + 7 * i; }
            int[][] expected = alone(m, prompts, maxTokens);
            // 10 blocks = 160 positions: each request alone fits (< 160 tokens), all eight at once need ~6 blocks each.
            EngineConfig config = EngineConfig.defaults(8, 64, 16).withKvCache(bytesFor(m, 10, KvCacheType.F32), KvCacheType.F32);
            try (BatchingEngine engine = new BatchingEngine(m.model(), config)) {
                assertEquals(10, engine.numKvBlocks());
                List<RequestHandle> handles = new ArrayList<>();
                for (int i = 0; i < n; i++)
                    handles.add(engine.submit(new EngineRequest("p" + i, prompts[i], SamplingParams.greedy(), maxTokens[i], t -> false, false)));
                for (int i = 0; i < n; i++) {
                    BatchingEngineTest.Output out = collect(handles.get(i));
                    assertArrayEquals(expected[i], out.tokens(), "request " + i + " after preemption");
                    assertEquals(FinishReason.LENGTH, out.finished().reason());
                }
                assertTrue(engine.stats().preemptions() > 0, "a pool this small must preempt");
                assertNoLeak(engine);
            }
        }
    }

    @Test
    void requestLargerThanThePoolIsRefusedAtSubmitNamingTheLimit() throws Exception {
        try (LoadedModel m = ModelLoader.load(stories(), new CpuBackend(1), 32, 4);
             BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(4, 32, 4)
                     .withKvCache(bytesFor(m, 4, KvCacheType.F32), KvCacheType.F32))) {
            assertEquals(64, engine.maxSequenceTokens());
            assertTrue(engine.sequenceLimitName().contains("--kv-cache-memory"), engine.sequenceLimitName());
            int[] prompt = new int[64];
            java.util.Arrays.fill(prompt, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> engine.submit(new EngineRequest("big", prompt, SamplingParams.greedy(), 8, t -> false, false)));
            assertTrue(e.getMessage().contains("64"), e.getMessage());
            // A request that fits gets its generation clipped to the pool, and completes.
            int[] small = m.tokenizer().encode("Once upon a time", true, false);
            BatchingEngineTest.Output out = collect(engine.submit(new EngineRequest("ok", small, SamplingParams.greedy(), 500, t -> false, false)));
            assertEquals(64 - small.length, out.tokens().length);
            assertNoLeak(engine);
        }
    }

    @Test
    void sharedPrefixIsReusedAndGivesTheSameTokens() throws Exception {
        try (LoadedModel m = ModelLoader.load(stories(), new CpuBackend(2), 64, 4)) {
            int[] prefix = m.tokenizer().encode("Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day,", true, false);
            int[][] prompts = new int[3][];
            for (int i = 0; i < 3; i++) {
                int[] tail = m.tokenizer().encode(new String[]{" she saw a bird", " her mom said", " the sun"}[i], false, false);
                prompts[i] = java.util.stream.IntStream.concat(java.util.Arrays.stream(prefix), java.util.Arrays.stream(tail)).toArray();
            }
            int[] maxTokens = {30, 30, 30};
            int[][] expected = alone(m, prompts, maxTokens);
            try (BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(4, 64, 8))) {
                for (int i = 0; i < 3; i++) {
                    long hitsBefore = engine.stats().prefixHitTokens();
                    BatchingEngineTest.Output out = collect(engine.submit(new EngineRequest("s" + i, prompts[i], SamplingParams.greedy(), 30, t -> false, false)));
                    assertArrayEquals(expected[i], out.tokens(), "request " + i);
                    long hits = engine.stats().prefixHitTokens() - hitsBefore;
                    if (i == 0) assertEquals(0, hits);
                    else assertEquals(prefix.length / 16 * 16, hits, "request " + i + " reuses every full block of the shared prefix");
                }
                assertTrue(engine.stats().prefixQueryTokens() >= 3L * prefix.length);
                assertNoLeak(engine);
            }
        }
    }

    @Test
    void nGreaterThanOneSiblingsShareThePromptBlocks() throws Exception {
        try (LoadedModel m = ModelLoader.load(stories(), new CpuBackend(2), 64, 4)) {
            int[] prompt = m.tokenizer().encode("Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends and her big red ball.", true, false);
            assertTrue(prompt.length > 33, "prompt of " + prompt.length + " tokens spans at least two full blocks");
            int[] expected = alone(m, new int[][]{prompt}, new int[]{20})[0];
            try (BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(4, 64, 8))) {
                List<RequestHandle> siblings = new ArrayList<>();
                for (int i = 0; i < 4; i++) siblings.add(engine.submit(new EngineRequest("n" + i, prompt, SamplingParams.greedy(), 20, t -> false, false)));
                for (RequestHandle h : siblings) assertArrayEquals(expected, collect(h).tokens());
                // The first computes the prompt; the other three adopt its full blocks.
                assertEquals(3L * ((prompt.length - 1) / 16 * 16), engine.stats().prefixHitTokens());
                assertNoLeak(engine);
            }
        }
    }

    @Test
    void f16KvCacheAndDisabledPrefixCachingStillMatchSoloGreedyRuns() throws Exception {
        try (LoadedModel m = ModelLoader.load(stories(), new CpuBackend(2), 64, 8)) {
            int n = 6;
            int[][] prompts = new int[n][];
            int[] maxTokens = new int[n];
            for (int i = 0; i < n; i++) { prompts[i] = m.tokenizer().encode(PROMPTS[i], true, false); maxTokens[i] = 24; }
            int[][] expected = alone(m, prompts, maxTokens);
            for (EngineConfig config : List.of(
                    EngineConfig.defaults(8, 64, 16).withKvCache(bytesFor(m, 64, KvCacheType.F16), KvCacheType.F16),
                    EngineConfig.defaults(8, 64, 16).withPrefixCaching(false))) {
                try (BatchingEngine engine = new BatchingEngine(m.model(), config)) {
                    List<RequestHandle> handles = new ArrayList<>();
                    for (int i = 0; i < n; i++)
                        handles.add(engine.submit(new EngineRequest("f" + i, prompts[i], SamplingParams.greedy(), maxTokens[i], t -> false, false)));
                    int same = 0;
                    for (int i = 0; i < n; i++) if (java.util.Arrays.equals(expected[i], collect(handles.get(i)).tokens())) same++;
                    // F16 rounding may flip a near-tie late in a sequence; F32 must match exactly.
                    assertTrue(config.kvCacheType() == KvCacheType.F16 ? same >= n - 1 : same == n, same + " of " + n + " match with " + config);
                    if (!config.prefixCaching()) assertEquals(0, engine.stats().prefixHitTokens());
                    assertNoLeak(engine);
                }
            }
        }
    }

    @Test
    void sixteenConcurrentRequestsOnASyntheticModelMatchEachRunAlone(@TempDir Path dir) throws Exception {
        Path synth = dir.resolve("tiny.gguf");
        SynthModel.of(SynthPreset.TINY, TensorType.Q8_0, 5).write(SingleRequestTest.models().resolve(SynthPreset.DEFAULT_VOCAB), synth, null);
        try (LoadedModel m = ModelLoader.load(synth, new CpuBackend(2), 64, 16)) {
            int n = 16;
            int[][] prompts = new int[n][];
            int[] maxTokens = new int[n];
            for (int i = 0; i < n; i++) { prompts[i] = m.tokenizer().encode(PROMPTS[i], true, false); maxTokens[i] = 8 + 2 * i; }
            int[][] expected = alone(m, prompts, maxTokens);
            try (BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(16, 64, 16))) {
                List<RequestHandle> handles = new ArrayList<>();
                for (int i = 0; i < n; i++)
                    handles.add(engine.submit(new EngineRequest("t" + i, prompts[i], SamplingParams.greedy(), maxTokens[i], t -> false, false)));
                for (int i = 0; i < n; i++) assertArrayEquals(expected[i], collect(handles.get(i)).tokens(), "request " + i);
                assertNoLeak(engine);
            }
        }
    }
}
