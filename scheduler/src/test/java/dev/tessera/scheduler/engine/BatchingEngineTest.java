package dev.tessera.scheduler.engine;

import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.sample.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Continuous batching must not change what any one sequence generates, and must end every request. */
public class BatchingEngineTest {
    static final String[] PROMPTS = {"Once upon a time", "One day, Lily met a Shoggoth", "The cat", "Tom and Sue went to the park",
            "A little dog", "She was happy", "The sun was", "Once there was a big tree", "He liked to play", "Mom said",
            "The bird sang a song", "They ran fast", "In the garden", "Max was sad because", "The ball", "It was a sunny day"};

    public record Output(int[] tokens, TokenEvent.Finished finished) {}

    public static Output collect(RequestHandle h) throws InterruptedException {
        List<Integer> tokens = new ArrayList<>();
        while (true) {
            TokenEvent e = h.poll(60, TimeUnit.SECONDS);
            if (e == null) throw new AssertionError(h.request().id() + ": no event within 60 s");
            switch (e) {
                case TokenEvent.Token t -> tokens.add(t.token());
                case TokenEvent.Finished f -> { return new Output(tokens.stream().mapToInt(Integer::intValue).toArray(), f); }
                case TokenEvent.Failed f -> throw new AssertionError(h.request().id() + " failed: " + f.message());
                case TokenEvent.PromptLogprobs p -> { }
            }
        }
    }

    @Test
    void sixteenConcurrentGreedyRequestsMatchEachRunAlone() throws Exception {
        try (LoadedModel m = ModelLoader.load(SingleRequestTest.models().resolve("stories260K.gguf"), new CpuBackend(2), 64, 16)) {
            int[][] prompts = new int[PROMPTS.length][];
            int[][] alone = new int[PROMPTS.length][];
            for (int i = 0; i < PROMPTS.length; i++) {
                prompts[i] = m.tokenizer().encode(PROMPTS[i], true, false);
                // Different lengths so sequences join and leave the batch at different steps.
                alone[i] = SingleRequestTest.greedyAlone(m.model(), prompts[i], 20 + 3 * i, m.tokenizer()::isEndOfGeneration);
            }
            // 64 tokens per step with 16 sequences: prompts are prefilled in chunks while others decode.
            try (BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(16, 64, 64))) {
                List<RequestHandle> handles = new ArrayList<>();
                for (int i = 0; i < PROMPTS.length; i++)
                    handles.add(engine.submit(new EngineRequest("r" + i, prompts[i], SamplingParams.greedy(), 20 + 3 * i,
                            m.tokenizer()::isEndOfGeneration, false)));
                for (int i = 0; i < PROMPTS.length; i++) {
                    Output out = collect(handles.get(i));
                    assertArrayEquals(alone[i], out.tokens(), "request " + i + " '" + PROMPTS[i] + "'");
                    assertEquals(out.tokens().length, out.finished().numGeneratedTokens());
                }
                PagedKvEngineTest.assertNoLeak(engine);
            }
        }
    }

    @Test
    void cancelStopsARunningRequestAndOthersContinue() throws Exception {
        try (LoadedModel m = ModelLoader.load(SingleRequestTest.models().resolve("stories260K.gguf"), new CpuBackend(1), 32, 4);
             BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(4, 32, 8))) {
            int[] prompt = m.tokenizer().encode("Once upon a time", true, false);
            RequestHandle longOne = engine.submit(new EngineRequest("long", prompt, SamplingParams.greedy(), 1500, t -> false, false));
            RequestHandle other = engine.submit(new EngineRequest("other", prompt, SamplingParams.greedy(), 10, t -> false, false));
            assertInstanceOf(TokenEvent.Token.class, longOne.poll(30, TimeUnit.SECONDS));
            longOne.cancel();
            TokenEvent e;
            int after = 0;
            while (!((e = longOne.poll(30, TimeUnit.SECONDS)) instanceof TokenEvent.Finished)) {
                if (e == null) throw new AssertionError("no finish after cancel");
                after++;
            }
            assertEquals(FinishReason.CANCELLED, ((TokenEvent.Finished) e).reason());
            assertTrue(after < 1500, "generated " + after + " tokens after cancel");
            Output o = collect(other);
            assertEquals(10, o.tokens().length);
            assertEquals(FinishReason.LENGTH, o.finished().reason());
            // The cancelled request's blocks went back to the pool, as did the finished one's.
            PagedKvEngineTest.assertNoLeak(engine);
        }
    }

    @Test
    void fullQueueIsRefused() throws Exception {
        try (LoadedModel m = ModelLoader.load(SingleRequestTest.models().resolve("stories260K.gguf"), new CpuBackend(1), 16, 1);
             BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(1, 16, 1))) {
            int[] prompt = m.tokenizer().encode("Once upon a time", true, false);
            List<RequestHandle> accepted = new ArrayList<>();
            int refused = 0;
            for (int i = 0; i < 6; i++) {
                try {
                    accepted.add(engine.submit(new EngineRequest("q" + i, prompt, SamplingParams.greedy(), 400, t -> false, false)));
                } catch (EngineOverloadedException e) {
                    refused++;
                }
            }
            assertTrue(refused >= 1, "some requests must be refused with one running and one waiting slot: " + Arrays.toString(new int[]{refused}));
            for (RequestHandle h : accepted) h.cancel();
            for (RequestHandle h : accepted) collectAllowingCancel(h);
            PagedKvEngineTest.assertNoLeak(engine);
        }
    }

    private static void collectAllowingCancel(RequestHandle h) throws InterruptedException {
        TokenEvent e;
        do {
            e = h.poll(30, TimeUnit.SECONDS);
            if (e == null) throw new AssertionError(h.request().id() + " never finished");
        } while (!(e instanceof TokenEvent.Finished));
    }
}
