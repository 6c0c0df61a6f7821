package dev.tessera.scheduler.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.models.tokenizer.StreamingDecoder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/** End to end through tokenizer, the batching engine (one request), sampler and streaming decoder, against published references. */
public class SingleRequestTest {

    public static Path models() {
        String p = System.getProperty("tessera.models");
        Path dir = p != null ? Path.of(p) : Path.of("../../shared/models");
        if (!Files.isDirectory(dir)) throw new IllegalStateException("test data not found at " + dir.toAbsolutePath());
        return dir;
    }

    record Output(int[] tokens, String text, String finishReason) {}

    static Output generate(Path model, String prompt, SamplingParams params, int maxTokens) {
        try (LoadedModel m = ModelLoader.load(model, new CpuBackend(2), 64);
             BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(1, 64, 1))) {
            int[] tokens = m.tokenizer().encode(prompt, true, false);
            StreamingDecoder decoder = new StreamingDecoder(m.tokenizer(), prompt.isEmpty());
            StringBuilder text = new StringBuilder();
            SingleRequest.Result r = SingleRequest.run(engine, new EngineRequest("t", tokens, params, maxTokens, m.tokenizer()::isEndOfGeneration, false),
                    t -> { text.append(decoder.feed(t)); return true; });
            text.append(decoder.flush());
            return new Output(r.tokens(), text.toString(), r.finishReason());
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Greedy ids of one prompt run alone, straight through the model with a private KV cache (no engine, no paging):
     * the reference that batched, paged and tensor-parallel runs must equal.
     */
    public static int[] greedyAlone(dev.tessera.models.arch.LlamaModel model, int[] prompt, int maxTokens, java.util.function.IntPredicate isStop) {
        return greedyAlone(model, prompt, maxTokens, isStop, null);
    }

    /** As above; when {@code gaps} is given, gaps[n] is the n-th chosen token's logit minus the runner-up's. */
    public static int[] greedyAlone(dev.tessera.models.arch.LlamaModel model, int[] prompt, int maxTokens, java.util.function.IntPredicate isStop,
                                    float[] gaps) {
        int vocab = model.config().vocabSize();
        int limit = Math.min(maxTokens, model.config().contextLength() - prompt.length);
        int[] out = new int[limit];
        float[] logits = new float[vocab];
        try (dev.tessera.kernels.KvCache cache = model.newKvCache(prompt.length + limit)) {
            int chunk = model.maxBatchTokens();
            for (int start = 0; start < prompt.length; start += chunk) {
                int n = Math.min(chunk, prompt.length - start);
                int[] rows = start + n == prompt.length ? new int[]{n - 1} : new int[0];
                model.forward(Arrays.copyOfRange(prompt, start, start + n), dev.tessera.kernels.AttentionBatch.single(cache, start, n), rows, logits);
            }
            int n = 0, position = prompt.length;
            while (n < limit) {
                int best = 0;
                for (int i = 1; i < vocab; i++) if (logits[i] > logits[best]) best = i;
                if (isStop.test(best)) break;
                if (gaps != null) {
                    float second = Float.NEGATIVE_INFINITY;
                    for (int i = 0; i < vocab; i++) if (i != best) second = Math.max(second, logits[i]);
                    gaps[n] = logits[best] - second;
                }
                out[n++] = best;
                if (n == limit) break;
                model.forward(new int[]{best}, dev.tessera.kernels.AttentionBatch.single(cache, position++, 1), new int[]{0}, logits);
            }
            return Arrays.copyOf(out, n);
        }
    }

    @Test
    void emptyPromptPrintsLlama2cReferenceText() throws IOException {
        JsonNode ref = new ObjectMapper().readTree(models().resolve("stories260K.reference.json").toFile());
        JsonNode c = ref.get("cases").get(0);
        Output out = generate(models().resolve("stories260K.gguf"), "", SamplingParams.greedy(), 256);
        assertEquals(c.get("greedy_text").asText(), out.text());
        assertEquals("length", out.finishReason());
    }

    /** derived/REFERENCE.md records llama.cpp's greedy ids: the first list for F32/F16/Q8_0, the second for Q4_0. */
    @ParameterizedTest
    @CsvSource({"stories260K-F16.gguf,0", "stories260K-Q8_0.gguf,0", "stories260K-Q4_0.gguf,1"})
    void quantizedVariantsMatchLlamaCpp(String file, int listIndex) throws IOException {
        String md = Files.readString(models().resolve("derived/REFERENCE.md"));
        Matcher m = Pattern.compile("^\\[(432(?:, \\d+)+)]$", Pattern.MULTILINE).matcher(md);
        List<int[]> lists = new ArrayList<>();
        while (m.find()) lists.add(Arrays.stream(m.group(1).split(", ")).mapToInt(Integer::parseInt).toArray());
        assertEquals(2, lists.size(), "REFERENCE.md id lists");
        Output out = generate(models().resolve("derived").resolve(file), "Once upon a time", SamplingParams.greedy(), 64);
        assertArrayEquals(lists.get(listIndex), out.tokens(), file);
    }

    @Test
    void seedMakesSamplingRepeatable() {
        SamplingParams p = SamplingParams.defaults().withTemperature(1.0f).withSeed(1234L);
        Path model = models().resolve("stories260K.gguf");
        Output a = generate(model, "Once upon a time", p, 48), b = generate(model, "Once upon a time", p, 48);
        assertArrayEquals(a.tokens(), b.tokens());
        Output c = generate(model, "Once upon a time", p.withSeed(99L), 48);
        assertNotEquals(Arrays.toString(a.tokens()), Arrays.toString(c.tokens()));
    }
}
