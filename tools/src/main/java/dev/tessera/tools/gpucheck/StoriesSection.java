package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.LlamaModel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static dev.tessera.tools.gpucheck.CheckReport.log;

/** stories260K greedy ids on the device against {@code stories260K.reference.json}. */
final class StoriesSection extends CheckSection {
    StoriesSection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "stories";
    }

    @Override
    void run() throws IOException {
        Path model = modelsDir.resolve("stories260K.gguf");
        String json = Files.readString(modelsDir.resolve("stories260K.reference.json"));
        List<int[][]> cases = referenceCases(json);
        if (cases.isEmpty()) throw new IllegalStateException("stories260K.reference.json: no cases found");
        try (LoadedModel m = ModelLoader.load(model, deviceBackend(), 64, 1)) {
            LlamaModel lm = m.model();
            int caseIndex = 0;
            for (int[][] c : cases) {
                int[] prompt = c[0], expected = c[1];
                int total = c[2][0];
                List<Integer> got = new ArrayList<>();
                float[] logits = new float[m.config().vocabSize()];
                try (KvCache cache = lm.newKvCache(total)) {
                    lm.forward(prompt, AttentionBatch.single(cache, 0, prompt.length), new int[] {prompt.length - 1}, logits);
                    for (int pos = prompt.length; pos <= total; pos++) {
                        int next = CheckSetup.argmax(logits);
                        got.add(next);
                        if (next == 1 || pos == total) break;
                        lm.forward(new int[] {next}, AttentionBatch.single(cache, pos, 1), new int[] {0}, logits);
                    }
                }
                int firstDiff = -1;
                for (int i = 0; i < Math.max(got.size(), expected.length); i++) {
                    if (i >= got.size() || i >= expected.length || got.get(i) != expected[i]) { firstDiff = i; break; }
                }
                String value = firstDiff < 0 ? expected.length + "/" + expected.length + " greedy ids match"
                        : "first difference at id " + firstDiff + " of " + expected.length;
                log("stories260K case %d (%d prompt tokens): %s", caseIndex, prompt.length, value);
                report.row("stories", "case " + caseIndex + " (" + lm.backend().name() + ")", value, firstDiff < 0 ? "ok" : "FAIL");
                caseIndex++;
            }
        }
    }

    /** Each case as {prompt ids, expected greedy ids, {steps_total_positions}}, read without a JSON library. */
    static List<int[][]> referenceCases(String json) {
        List<int[][]> out = new ArrayList<>();
        Matcher steps = Pattern.compile("\"steps_total_positions\"\\s*:\\s*(\\d+)").matcher(json);
        Matcher prompt = Pattern.compile("\"prompt_token_ids\"\\s*:\\s*\\[([^\\]]*)\\]").matcher(json);
        Matcher greedy = Pattern.compile("\"greedy_generated_token_ids\"\\s*:\\s*\\[([^\\]]*)\\]").matcher(json);
        while (steps.find() && prompt.find() && greedy.find())
            out.add(new int[][] {ids(prompt.group(1)), ids(greedy.group(1)), {Integer.parseInt(steps.group(1))}});
        return out;
    }

    private static int[] ids(String list) {
        return Arrays.stream(list.split(",")).map(String::trim).filter(s -> !s.isEmpty()).mapToInt(Integer::parseInt).toArray();
    }
}
