package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.conformance.BackendConformance;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.synth.SynthPreset;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import static dev.tessera.tools.gpucheck.CheckReport.log;
import static dev.tessera.tools.gpucheck.CheckReport.oneLine;

/**
 * Mixture of experts on the device against the CPU backend: synthetic moe-tiny (F16) prefills one prompt and decodes
 * greedily on both; the expert ids of every token in every layer of every step, the greedy tokens and the prompt's
 * last logits are compared. Then greedy decode tok/s on the device (moe-tiny and, unless quick, moe-16x, in Q8_0). In
 * the dry run a second CPU backend stands in, so the comparison runs (trivially equal) and the timing row is SKIP.
 * <p>
 * The exact comparison uses F16 experts, where both backends multiply float x: the CPU's Q8_0 kernels round x to int8
 * per block (as llama.cpp's do) and CUDA's Q8_0 matvec does not, so on the random model's flat logits a near-tie could
 * fall either way. Q8_0 against the CPU is checked within tolerance by the parity section's expert cases.
 */
final class MoeSection extends CheckSection {
    private static final TensorType PARITY_TYPE = TensorType.F16, TYPE = TensorType.Q8_0;
    /** Largest relative error of the prompt's last logits: the matmul cases' tolerance. */
    private static final double LOGIT_TOLERANCE = 2e-2;

    /** One backend's run: expert ids per routed layer per step (in call order), greedy tokens, the prompt's last logits. */
    private record GreedyRun(String backend, int numLayers, int numUsed, List<int[]> routing, int[] tokens, float[] promptLogits) {}

    MoeSection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "moe";
    }

    @Override
    void run() throws Exception {
        SynthPreset preset = SynthPreset.MOE_TINY;
        Path file = synth(preset, PARITY_TYPE);
        String label = preset.presetName + " " + PARITY_TYPE.ggmlName();
        int steps = quick ? 16 : 48;
        int[] prompt = prompt(24, 7);
        GreedyRun reference = greedy(file, new CpuBackend(numThreads), prompt, steps);
        GreedyRun device = greedy(file, deviceBackend(), prompt, steps);
        compare(label, reference, device);
        String speedLabel = preset.presetName + " " + TYPE.ggmlName();
        if (cpuOnly) {
            report.row("moe", speedLabel + " decode b1", "CPU only (dry run): no device to time", "SKIP");
            return;
        }
        decodeSpeed(speedLabel, synth(preset, TYPE));
        if (!quick) {
            SynthPreset bigger = SynthPreset.MOE_16X;
            decodeSpeed(bigger.presetName + " " + TYPE.ggmlName(), synth(bigger, TYPE));
        }
    }

    private void compare(String label, GreedyRun cpu, GreedyRun dev) {
        String against = " (" + dev.backend() + " vs " + cpu.backend() + ")";
        int firstToken = firstDifference(cpu.tokens(), dev.tokens());
        // Forward call c produced token c; calls up to the first differing token had equal inputs, so their routing
        // must be equal. After it the inputs differ and so may the experts.
        int numLayers = cpu.numLayers(), calls = firstToken < 0 ? cpu.tokens().length : firstToken + 1, compared = calls * numLayers;
        String routing = compared + " layer-steps of expert ids equal";
        boolean routingOk = cpu.routing().size() >= compared && dev.routing().size() >= compared;
        if (!routingOk) routing = "routed layer-steps: " + dev.routing().size() + ", CPU " + cpu.routing().size() + ", expected " + compared;
        for (int i = 0; i < compared && routingOk; i++) {
            int[] want = cpu.routing().get(i), got = dev.routing().get(i);
            int slot = firstDifference(want, got);
            if (slot < 0) continue;
            int k = cpu.numUsed(), t = slot / k;
            routing = "step " + i / numLayers + " layer " + i % numLayers + " token " + t + ": experts "
                    + Arrays.toString(slice(got, t * k, k)) + ", CPU " + Arrays.toString(slice(want, t * k, k));
            routingOk = false;
        }
        log("moe %s routing: %s", label, routing);
        report.row("moe", label + " routing" + against, oneLine(routing), routingOk ? "ok" : "FAIL");

        String tokens = firstToken < 0 ? cpu.tokens().length + "/" + cpu.tokens().length + " greedy ids equal"
                : "first difference at id " + firstToken + " of " + cpu.tokens().length + ": " + dev.tokens()[firstToken] + ", CPU " + cpu.tokens()[firstToken];
        log("moe %s greedy: %s", label, tokens);
        report.row("moe", label + " greedy ids" + against, tokens, firstToken < 0 ? "ok" : "FAIL");

        double[] err = BackendConformance.compare(cpu.promptLogits(), dev.promptLogits());
        boolean top5 = Arrays.equals(top(cpu.promptLogits(), 5), top(dev.promptLogits(), 5));
        String logits = String.format(Locale.ROOT, "max |diff| %.2e, rel %.2e; top-5 ids %s", err[0], err[1], top5 ? "equal" : "differ");
        log("moe %s prompt logits: %s", label, logits);
        report.row("moe", label + " prompt logits" + against, logits, err[1] <= LOGIT_TOLERANCE && top5 ? "ok" : "FAIL");
    }

    /** Prefill then {@code steps} greedy tokens on one backend, recording every layer's routing. Closes the backend. */
    private GreedyRun greedy(Path file, Backend backend, int[] prompt, int steps) {
        List<int[]> routing = new ArrayList<>();
        try (LoadedModel m = ModelLoader.load(file, backend, prompt.length, 1)) {
            LlamaModel lm = m.model();
            String name = lm.backend().name();
            lm.observeRouting((layer, r) -> {
                int[] ids = new int[r.numTokens() * r.numUsed()];
                for (int t = 0; t < r.numTokens(); t++) for (int s = 0; s < r.numUsed(); s++) ids[t * r.numUsed() + s] = r.expert(t, s);
                routing.add(ids);
            });
            int vocab = m.config().vocabSize();
            float[] logits = new float[vocab];
            int[] tokens = new int[steps];
            float[] promptLogits;
            try (KvCache cache = lm.newKvCache(prompt.length + steps + 1)) {
                lm.forward(prompt, AttentionBatch.single(cache, 0, prompt.length), new int[] {prompt.length - 1}, logits);
                promptLogits = logits.clone();
                for (int s = 0; s < steps; s++) {
                    tokens[s] = CheckSetup.argmax(logits);
                    if (s + 1 < steps) lm.forward(new int[] {tokens[s]}, AttentionBatch.single(cache, prompt.length + s, 1), new int[] {0}, logits);
                }
            }
            lm.observeRouting(null);
            log("moe: %s routed %d layer-steps, greedy %s", name, routing.size(), Arrays.toString(Arrays.copyOf(tokens, Math.min(12, steps))));
            return new GreedyRun(name, m.config().numLayers(), m.config().moe().numExpertsUsed(), routing, tokens, promptLogits);
        }
    }

    /** Greedy decode at batch 1 on the device after a short prompt; the median of 3 runs after a warm-up. */
    private void decodeSpeed(String label, Path file) {
        int steps = quick ? 32 : 128;
        int[] prompt = prompt(32, 11);
        try (LoadedModel m = ModelLoader.load(file, deviceBackend(), prompt.length, 1)) {
            LlamaModel lm = m.model();
            float[] logits = new float[m.config().vocabSize()];
            double[] runs = new double[3];
            for (int rep = -1; rep < 3; rep++) {
                try (KvCache cache = lm.newKvCache(prompt.length + steps + 1)) {
                    lm.forward(prompt, AttentionBatch.single(cache, 0, prompt.length), new int[] {prompt.length - 1}, logits);
                    int[] one = {CheckSetup.argmax(logits)};
                    long t0 = System.nanoTime();
                    for (int s = 0; s < steps; s++) lm.forwardArgmax(one, AttentionBatch.single(cache, prompt.length + s, 1), new int[] {0}, one);
                    if (rep >= 0) runs[rep] = steps / ((System.nanoTime() - t0) / 1e9);
                }
            }
            double tokensPerS = DecodeSection.median(runs);
            log("moe %s on %s: decode %.1f tok/s (b1)", label, lm.backend().name(), tokensPerS);
            report.row("moe", label + " decode b1 (" + lm.backend().name() + ")",
                    String.format(Locale.ROOT, "%.1f tok/s (median of 3 x %d steps, eager: MoE steps are not recorded)", tokensPerS, steps), "ok");
        }
    }

    private static int[] prompt(int n, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int[] p = new int[n];
        p[0] = 1;  // BOS
        for (int i = 1; i < n; i++) p[i] = 260 + random.nextInt(30000);
        return p;
    }

    private static int firstDifference(int[] a, int[] b) {
        for (int i = 0; i < Math.max(a.length, b.length); i++) if (i >= a.length || i >= b.length || a[i] != b[i]) return i;
        return -1;
    }

    private static int[] slice(int[] a, int from, int n) {
        return Arrays.copyOfRange(a, Math.min(from, a.length), Math.min(from + n, a.length));
    }

    /** Ids of the n largest values, largest first (ties to the lower id). */
    private static int[] top(float[] x, int n) {
        Integer[] idx = new Integer[x.length];
        for (int i = 0; i < x.length; i++) idx[i] = i;
        Arrays.sort(idx, (a, b) -> x[a] != x[b] ? Float.compare(x[b], x[a]) : Integer.compare(a, b));
        int[] out = new int[Math.min(n, x.length)];
        for (int i = 0; i < out.length; i++) out[i] = idx[i];
        return out;
    }
}
