package dev.tessera.scheduler.engine;

import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.sample.Sampler;
import dev.tessera.models.sample.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

class SerialEngineTest {
    static LoadedModel model;
    static SerialEngine engine;
    static int[] prompt;

    @BeforeAll
    static void load() {
        model = ModelLoader.load(Path.of(System.getProperty("tessera.models"), "stories260K.gguf"), new CpuBackend(1),
                ModelLoader.DEFAULT_MAX_BATCH_TOKENS);
        engine = new SerialEngine(model.model(), 2);
        prompt = model.tokenizer().encode("Once upon a time", true, false);
    }

    @AfterAll
    static void close() {
        engine.close();
        model.close();
    }

    static List<TokenEvent> drain(RequestHandle h) throws InterruptedException {
        List<TokenEvent> out = new ArrayList<>();
        while (true) {
            TokenEvent e = h.poll(30, TimeUnit.SECONDS);
            assertNotNull(e, "no event within 30 s");
            out.add(e);
            if (!(e instanceof TokenEvent.Token)) return out;
        }
    }

    @Test
    void tokensMatchSequenceGeneratorAndEndWithFinished() throws Exception {
        int[] expected = new SequenceGenerator(model.model()).generate(prompt, new Sampler(SamplingParams.greedy(),
                model.config().vocabSize()), 10, model.tokenizer()::isEndOfGeneration, t -> true).tokens();
        RequestHandle h = engine.submit(new EngineRequest("a", prompt, SamplingParams.greedy().withNumLogprobs(3), 10,
                model.tokenizer()::isEndOfGeneration, true));
        List<TokenEvent> events = drain(h);
        assertEquals(11, events.size());
        for (int i = 0; i < 10; i++) {
            TokenEvent.Token t = (TokenEvent.Token) events.get(i);
            assertEquals(expected[i], t.token());
            assertEquals(3, t.top().length);
            assertEquals(t.token(), t.top()[0].token(), "greedy picks the most likely token");
            assertEquals(t.top()[0].logprob(), t.logprob().logprob(), 1e-6);
        }
        TokenEvent.Finished f = (TokenEvent.Finished) events.getLast();
        assertEquals(FinishReason.LENGTH, f.reason());
        assertEquals(10, f.numGeneratedTokens());
        assertEquals(prompt.length, f.numPromptTokens());
    }

    @Test
    void cancelStopsWithinAStepAndAFullQueueRefuses() throws Exception {
        RequestHandle running = engine.submit(new EngineRequest("r", prompt, SamplingParams.greedy(), 1500, t -> false, false));
        assertInstanceOf(TokenEvent.Token.class, running.poll(30, TimeUnit.SECONDS));
        RequestHandle w1 = engine.submit(new EngineRequest("w1", prompt, SamplingParams.greedy(), 5, t -> false, false));
        RequestHandle w2 = engine.submit(new EngineRequest("w2", prompt, SamplingParams.greedy(), 5, t -> false, false));
        assertEquals(1, engine.numRunning());
        assertEquals(2, engine.numWaiting());
        assertThrows(EngineOverloadedException.class,
                () -> engine.submit(new EngineRequest("x", prompt, SamplingParams.greedy(), 5, t -> false, false)));

        w2.cancel(); // a waiting request ends at once, without running
        TokenEvent.Finished f2 = (TokenEvent.Finished) drain(w2).getLast();
        assertEquals(FinishReason.CANCELLED, f2.reason());
        assertEquals(0, f2.numGeneratedTokens());
        assertEquals(1, engine.numWaiting());

        running.cancel();
        List<TokenEvent> rest = drain(running);
        TokenEvent.Finished f = (TokenEvent.Finished) rest.getLast();
        assertEquals(FinishReason.CANCELLED, f.reason());
        assertTrue(f.numGeneratedTokens() < 1500, "stopped early: " + f.numGeneratedTokens());
        assertEquals(FinishReason.LENGTH, ((TokenEvent.Finished) drain(w1).getLast()).reason(), "the next request runs");
        assertEquals(0, engine.numWaiting());
    }
}
