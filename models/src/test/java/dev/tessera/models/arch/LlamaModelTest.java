package dev.tessera.models.arch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.TestModels;
import dev.tessera.models.gguf.GgufFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The forward pass against stories260K.reference.json: exact greedy ids and top-5 logits within 1e-3. */
class LlamaModelTest {

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void reproducesReferenceCases(int threads) throws IOException {
        JsonNode ref = new ObjectMapper().readTree(TestModels.file("stories260K.reference.json").toFile());
        try (GgufFile file = GgufFile.open(TestModels.file("stories260K.gguf"))) {
            ModelConfig config = ModelConfig.fromGguf(file);
            CpuBackend backend = new CpuBackend(threads);
            try (LlamaModel model = new LlamaModel(config, LlamaWeights.load(file, config, backend), backend, 64, 1)) {
                for (JsonNode c : ref.get("cases")) {
                    int[] prompt = ints(c.get("prompt_token_ids"));
                    int[] expected = ints(c.get("greedy_generated_token_ids"));
                    int total = c.get("steps_total_positions").asInt();
                    List<Integer> got = new ArrayList<>();
                    float[] logits = new float[config.vocabSize()];
                    try (KvCache cache = model.newKvCache(total)) {
                        model.forward(prompt, AttentionBatch.single(cache, 0, prompt.length), new int[]{prompt.length - 1}, logits);
                        int[] top = top5(logits);
                        assertArrayEquals(ints(c.get("top5_next_token_ids_after_prompt")), top, c.get("prompt").asText());
                        for (int i = 0; i < 5; i++)
                            assertEquals(c.get("top5_logits_after_prompt").get(i).asDouble(), logits[top[i]], 1e-3);
                        for (int pos = prompt.length; pos <= total; pos++) {
                            int next = argmax(logits);
                            got.add(next);
                            if (next == 1 || pos == total) break;
                            model.forward(new int[]{next}, AttentionBatch.single(cache, pos, 1), new int[]{0}, logits);
                        }
                    }
                    assertArrayEquals(expected, got.stream().mapToInt(Integer::intValue).toArray(), "case '" + c.get("prompt").asText() + "'");
                }
            }
        }
    }

    @Test
    void forwardArgmaxGivesTheArgmaxOfEachLogitRow() {
        withStories(model -> {
            ModelConfig config = model.config();
            int[] prompt = {1, 385, 328, 267, 403, 407, 261, 378, 432, 383};
            int[] rows = {9, 2, 5};  // not leading: the classifier runs on gathered rows
            float[] logits = new float[config.vocabSize() * rows.length];
            int[] ids = new int[rows.length];
            try (KvCache cache = model.newKvCache(32)) {
                model.forward(prompt, AttentionBatch.single(cache, 0, prompt.length), rows, logits);
            }
            try (KvCache cache = model.newKvCache(32)) {
                model.forwardArgmax(prompt, AttentionBatch.single(cache, 0, prompt.length), rows, ids);
                for (int i = 0; i < rows.length; i++)
                    assertEquals(argmax(java.util.Arrays.copyOfRange(logits, i * config.vocabSize(), (i + 1) * config.vocabSize())), ids[i], "row " + rows[i]);
                // A decode step (leading row 0) as the engine runs greedy requests; its id feeds the next step.
                float[] one = new float[config.vocabSize()];
                int[] next = {ids[0]};
                try (KvCache check = model.newKvCache(32)) {
                    model.forward(prompt, AttentionBatch.single(check, 0, prompt.length), new int[]{prompt.length - 1}, one);
                    for (int p = prompt.length; p < prompt.length + 5; p++) {
                        int expected = argmax(one);
                        assertEquals(expected, next[0], "position " + p);
                        model.forward(new int[]{expected}, AttentionBatch.single(check, p, 1), new int[]{0}, one);
                        model.forwardArgmax(next, AttentionBatch.single(cache, p, 1), new int[]{0}, next);
                    }
                }
            }
        });
    }

    @Test
    void batchedPrefillMatchesTokenByToken() {
        withStories(model -> {
            ModelConfig config = model.config();
            int[] prompt = {1, 385, 328, 267, 403, 407, 261, 378, 432, 383};
            float[] batched = new float[config.vocabSize() * prompt.length];
            int[] all = new int[prompt.length];
            for (int i = 0; i < all.length; i++) all[i] = i;
            try (KvCache cache = model.newKvCache(32)) {
                model.forward(prompt, AttentionBatch.single(cache, 0, prompt.length), all, batched);
            }
            float[] one = new float[config.vocabSize()];
            try (KvCache cache = model.newKvCache(32)) {
                for (int p = 0; p < prompt.length; p++) {
                    model.forward(new int[]{prompt[p]}, AttentionBatch.single(cache, p, 1), new int[]{0}, one);
                    for (int v = 0; v < one.length; v++)
                        assertEquals(one[v], batched[p * one.length + v], 1e-4, "position " + p + " token " + v);
                }
            }
        });
    }

    /** stories260K on a 2-thread CPU backend, up to 16 tokens and 16 logit rows per forward. */
    private static void withStories(java.util.function.Consumer<LlamaModel> body) {
        try (GgufFile file = GgufFile.open(TestModels.file("stories260K.gguf"))) {
            ModelConfig config = ModelConfig.fromGguf(file);
            CpuBackend backend = new CpuBackend(2);
            try (LlamaModel model = new LlamaModel(config, LlamaWeights.load(file, config, backend), backend, 16, 16)) {
                body.accept(model);
            }
        }
    }

    static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    static int[] top5(float[] x) {
        int[] out = new int[5];
        boolean[] used = new boolean[x.length];
        for (int k = 0; k < 5; k++) {
            int best = -1;
            for (int i = 0; i < x.length; i++) if (!used[i] && (best < 0 || x[i] > x[best])) best = i;
            used[best] = true;
            out[k] = best;
        }
        return out;
    }

    static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }
}
