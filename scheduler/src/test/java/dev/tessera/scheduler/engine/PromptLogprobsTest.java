package dev.tessera.scheduler.engine;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.models.sample.TokenLogprob;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A prompt's log-probabilities (completions' echo + logprobs) are the model's own, one position at a time, however
 * the engine chunks, batches and caches the prompt, and asking for them changes nothing that is generated.
 */
public class PromptLogprobsTest {
    static final String PROMPT = "Once upon a time, there was a little girl named Lily. She loved to play outside";

    public record Output(TokenEvent.PromptLogprobs prompt, int[] tokens) {}

    public static Output collect(RequestHandle h) throws InterruptedException {
        TokenEvent.PromptLogprobs prompt = null;
        List<Integer> tokens = new ArrayList<>();
        while (true) {
            TokenEvent e = h.poll(60, TimeUnit.SECONDS);
            if (e == null) throw new AssertionError(h.request().id() + ": no event within 60 s");
            switch (e) {
                case TokenEvent.PromptLogprobs p -> {
                    assertNull(prompt, "prompt logprobs come once");
                    assertTrue(tokens.isEmpty(), "prompt logprobs come before the first token");
                    prompt = p;
                }
                case TokenEvent.Token t -> tokens.add(t.token());
                case TokenEvent.Finished f -> { return new Output(prompt, tokens.stream().mapToInt(Integer::intValue).toArray()); }
                case TokenEvent.Failed f -> throw new AssertionError(h.request().id() + " failed: " + f.message());
            }
        }
    }

    /** Log-probability of prompt[i + 1] after prompt[0..i], the model run one token at a time. */
    public static double[] reference(LlamaModel model, int[] prompt) {
        int vocab = model.config().vocabSize();
        double[] out = new double[prompt.length - 1];
        float[] logits = new float[vocab];
        try (KvCache cache = model.newKvCache(prompt.length)) {
            for (int i = 0; i + 1 < prompt.length; i++) {
                model.forward(new int[]{prompt[i]}, AttentionBatch.single(cache, i, 1), new int[]{0}, logits);
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (float v : logits) max = Math.max(max, v);
                for (float v : logits) sum += Math.exp(v - max);
                out[i] = logits[prompt[i + 1]] - max - Math.log(sum);
            }
        }
        return out;
    }

    @Test
    void promptLogprobsAreTheModelsUnderChunkingBatchingAndPrefixCaching() throws Exception {
        try (LoadedModel m = ModelLoader.load(SingleRequestTest.models().resolve("stories260K.gguf"), new CpuBackend(2), 8, 4)) {
            int[] prompt = m.tokenizer().encode(PROMPT, true, false);
            int[] other = m.tokenizer().encode("The cat sat", true, false);
            double[] expected = reference(m.model(), prompt);
            int[] alone = SingleRequestTest.greedyAlone(m.model(), prompt, 12, m.tokenizer()::isEndOfGeneration);
            int[] otherAlone = SingleRequestTest.greedyAlone(m.model(), other, 12, m.tokenizer()::isEndOfGeneration);
            // Four logit rows and eight tokens a step: the scored prompt goes in chunks of the rows the others leave.
            try (BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(4, 8, 64))) {
                RequestHandle plain = engine.submit(new EngineRequest("plain", other, SamplingParams.greedy(), 12, m.tokenizer()::isEndOfGeneration, false));
                RequestHandle first = engine.submit(new EngineRequest("first", prompt, SamplingParams.greedy(), 12, m.tokenizer()::isEndOfGeneration, false, 2));
                Output p = collect(plain), a = collect(first);
                // The same prompt again: its blocks are in the prefix cache now, and still every position is scored.
                RequestHandle again = engine.submit(new EngineRequest("again", prompt, SamplingParams.greedy(), 12, m.tokenizer()::isEndOfGeneration, true, 0));
                RequestHandle unscored = engine.submit(new EngineRequest("unscored", prompt, SamplingParams.greedy(), 12, m.tokenizer()::isEndOfGeneration, false));
                Output b = collect(again), c = collect(unscored);
                assertTrue(engine.stats().prefixHitTokens() > 0, "the unscored request adopted the cached prompt");
                assertNull(p.prompt());
                assertNull(c.prompt());
                assertArrayEquals(otherAlone, p.tokens());
                for (Output o : List.of(a, b, c)) assertArrayEquals(alone, o.tokens(), "asking for prompt logprobs changes no token");
                for (Output o : List.of(a, b)) {
                    assertNotNull(o.prompt());
                    assertEquals(prompt.length - 1, o.prompt().chosen().length);
                    for (int i = 0; i < expected.length; i++) {
                        TokenLogprob chosen = o.prompt().chosen()[i];
                        assertEquals(prompt[i + 1], chosen.token(), "position " + i);
                        assertEquals(expected[i], chosen.logprob(), 1e-4, "position " + i);
                    }
                }
                for (int i = 0; i < expected.length; i++) {
                    TokenLogprob[] top = a.prompt().top()[i];
                    assertEquals(2, top.length);
                    assertTrue(top[0].logprob() >= top[1].logprob() && top[0].logprob() >= a.prompt().chosen()[i].logprob() - 1e-6f);
                    assertEquals(0, b.prompt().top()[i].length);
                }
            }
        }
    }

    @Test
    void scoresSurvivePreemptionAndArriveOnceEach() throws Exception {
        try (LoadedModel m = ModelLoader.load(SingleRequestTest.models().resolve("stories260K.gguf"), new CpuBackend(2), 64, 8)) {
            int n = 8;
            int[][] prompts = new int[n][];
            int[] maxTokens = new int[n];
            for (int i = 0; i < n; i++) {
                String p = BatchingEngineTest.PROMPTS[i];
                prompts[i] = m.tokenizer().encode(p + ". " + p + ". " + p + ".", true, false);
                maxTokens[i] = 60 + 5 * i;
            }
            // The model alone, before the engine runs on it (one model serves one caller at a time).
            int[][] alone = new int[n][];
            double[][] expected = new double[n][];
            for (int i = 0; i < n; i++) {
                alone[i] = SingleRequestTest.greedyAlone(m.model(), prompts[i], maxTokens[i], t -> false);
                expected[i] = reference(m.model(), prompts[i]);
            }
            // 10 blocks of 16 positions: each request fits alone, all eight at once do not, so some are preempted and
            // recomputed, some of them while their prompt is being scored.
            EngineConfig config = EngineConfig.defaults(8, 64, 16).withKvCache(PagedKvEngineTest.bytesFor(m, 10, dev.tessera.kernels.KvCacheType.F32),
                    dev.tessera.kernels.KvCacheType.F32);
            try (BatchingEngine engine = new BatchingEngine(m.model(), config)) {
                List<RequestHandle> handles = new ArrayList<>();
                for (int i = 0; i < n; i++)
                    handles.add(engine.submit(new EngineRequest("p" + i, prompts[i], SamplingParams.greedy(), maxTokens[i], t -> false, false,
                            i % 2 == 0 ? 1 : -1)));
                for (int i = 0; i < n; i++) {
                    Output out = collect(handles.get(i));
                    assertArrayEquals(alone[i], out.tokens(), "request " + i);
                    if (i % 2 == 1) { assertNull(out.prompt()); continue; }
                    for (int j = 0; j < expected[i].length; j++)
                        assertEquals(expected[i][j], out.prompt().chosen()[j].logprob(), 1e-4, "request " + i + " position " + j);
                }
                assertTrue(engine.stats().preemptions() > 0, "a pool this small must preempt");
                PagedKvEngineTest.assertNoLeak(engine);
            }
        }
    }

    @Test
    void aOneTokenPromptHasNoneToScoreAndItsListStillComes() throws Exception {
        try (LoadedModel m = ModelLoader.load(SingleRequestTest.models().resolve("stories260K.gguf"), new CpuBackend(1), 16, 2);
             BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(2, 16, 8))) {
            Output o = collect(engine.submit(new EngineRequest("bos", new int[]{m.tokenizer().bosId()}, SamplingParams.greedy(), 3,
                    t -> false, false, 1)));
            assertEquals(0, o.prompt().chosen().length);
            assertEquals(3, o.tokens().length);
        }
    }

    @Test
    void maxTokensZeroScoresThePromptGeneratesNothingAndGivesItsBlocksBack() throws Exception {
        try (LoadedModel m = ModelLoader.load(SingleRequestTest.models().resolve("stories260K.gguf"), new CpuBackend(1), 16, 2)) {
            int[] prompt = m.tokenizer().encode(PROMPT, true, false);
            double[] expected = reference(m.model(), prompt);
            try (BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(2, 16, 8))) {
                RequestHandle h = engine.submit(new EngineRequest("score", prompt, SamplingParams.greedy(), 0, t -> false, false, 0));
                TokenEvent.PromptLogprobs scores = null;
                TokenEvent.Finished finished = null;
                for (TokenEvent e; finished == null; ) {
                    e = h.poll(60, TimeUnit.SECONDS);
                    if (e instanceof TokenEvent.PromptLogprobs p) scores = p;
                    else if (e instanceof TokenEvent.Finished f) finished = f;
                    else throw new AssertionError("unexpected " + e);
                }
                assertNotNull(scores);
                for (int i = 0; i < expected.length; i++) assertEquals(expected[i], scores.chosen()[i].logprob(), 1e-4, "position " + i);
                assertEquals(FinishReason.LENGTH, finished.reason());
                assertEquals(0, finished.numGeneratedTokens());
                PagedKvEngineTest.assertNoLeak(engine);
            }
        }
    }

    @Test
    void tooManyAlternativesIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new EngineRequest("x", new int[]{1}, SamplingParams.greedy(), 1, t -> false, false, 21));
        assertTrue(e.getMessage().contains("promptLogprobs must be -1 (off) or 0..20, found 21"), e.getMessage());
    }
}
