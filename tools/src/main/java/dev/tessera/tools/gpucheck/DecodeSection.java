package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cuda.CudaBackend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.models.synth.SynthMix;
import dev.tessera.models.synth.SynthPreset;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static dev.tessera.tools.gpucheck.CheckReport.log;
import static dev.tessera.tools.gpucheck.CheckReport.oneLine;

/**
 * Prefill and greedy decode throughput of synthetic models at batch 1 and 16, and a per-kernel profile of one eager
 * step on CUDA: llama-1b in F16, Q4_0, Q4_K_M (llama-quantize's mix of Q4_K and Q6_K) and Q6_K, and llama-7b in F16
 * and Q4_0 ({@code --quick}: llama-1b F16 and Q4_K_M). The bandwidth section puts each batch-1 decode against the copy
 * roofline.
 */
final class DecodeSection extends CheckSection {
    DecodeSection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "decode";
    }

    /** One model the section runs: a preset's shape, in one type or llama-quantize's Q4_K_M mix. */
    record Variant(SynthPreset preset, TensorType type, SynthMix mix) {
        String label() {
            return preset.presetName + " " + mix.typeName(type);
        }
    }

    /** A batch-1 greedy decode rate and the weight bytes each of its tokens reads: read by the bandwidth section. */
    record DecodeRate(String label, long bytesPerToken, double tokensPerS) {}

    final List<DecodeRate> rates = new ArrayList<>();

    /** What the section runs. The dry run takes the tiny shape for every model, once per type. */
    List<Variant> variants() {
        List<Variant> all = new ArrayList<>();
        SynthPreset small = cpuOnly ? SynthPreset.TINY : SynthPreset.LLAMA_1B;
        all.add(new Variant(small, TensorType.F16, SynthMix.PURE));
        if (!quick) all.add(new Variant(small, TensorType.Q4_0, SynthMix.PURE));
        all.add(new Variant(small, TensorType.Q4_K, SynthMix.Q4_K_M));
        if (!quick) all.add(new Variant(small, TensorType.Q6_K, SynthMix.PURE));
        if (!quick && !cpuOnly) {
            // The shape most users serve, where batch-1 decode must reach 60% of the roofline (issue 15).
            all.add(new Variant(SynthPreset.LLAMA_7B, TensorType.F16, SynthMix.PURE));
            all.add(new Variant(SynthPreset.LLAMA_7B, TensorType.Q4_0, SynthMix.PURE));
        }
        return all;
    }

    @Override
    void run() {
        for (Variant v : variants()) {
            try {
                Path file = synth(v.preset(), v.type(), v.mix());
                throughput(v.label(), file);
            } catch (Throwable e) {
                log("decode %s failed: %s", v.label(), e);
                report.row("decode", v.label(), oneLine(e.toString()), "FAIL");
            }
        }
    }

    /** Where a batch-1 decode step's time goes: each launch synchronized and timed, per kernel, per token. */
    private void profileDecode(String label, LlamaModel model, CudaBackend cuda, int[] prompt, int steps, float[] logits) {
        int vocab = model.config().vocabSize(), promptTokens = prompt.length;
        try (KvCache cache = model.newKvCache(promptTokens + steps + 1)) {
            model.forward(prompt, AttentionBatch.single(cache, 0, promptTokens), new int[] {promptTokens - 1}, logits);
            int[] one = {CheckSetup.argmax(logits, 0, vocab)};
            cuda.profile(true);
            long t0 = System.nanoTime();
            for (int s = 0; s < steps; s++) {
                model.forward(one, AttentionBatch.single(cache, promptTokens + s, 1), new int[] {0}, logits);
                one[0] = CheckSetup.argmax(logits, 0, vocab);
            }
            double stepMicros = (System.nanoTime() - t0) / 1e3 / steps;
            var results = new java.util.TreeMap<>(cuda.profileResults());
            cuda.profile(false);
            double kernelMicros = 0;
            for (long[] r : results.values()) kernelMicros += r[1] / 1e3 / steps;
            report.row("profile", label + " eager step (synchronized)", String.format(Locale.ROOT, "%.0f us/token, kernels %.0f us", stepMicros, kernelMicros), "ok");
            results.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[1], a.getValue()[1])).limit(12).forEach(e ->
                    report.row("profile", "  " + e.getKey(), String.format(Locale.ROOT, "%.1f us/token (%d launches/token)",
                            e.getValue()[1] / 1e3 / steps, e.getValue()[0] / steps), "ok"));
        } catch (Throwable e) {
            cuda.profile(false);
            report.row("profile", label, oneLine(e.toString()), "FAIL");
        }
    }


    private void throughput(String label, Path file) {
        int batch = 16, promptTokens = quick ? 128 : 256, steps = quick ? 16 : 32;
        // Batch 1 takes more steps and the median of 3 runs: 32 steps are ~50 ms, where one host hiccup moves the result.
        int steps1 = quick ? 64 : 128;
        int perSequencePrompt = promptTokens / batch;
        try (LoadedModel m = ModelLoader.load(file, deviceBackend(), promptTokens, batch)) {
            LlamaModel model = m.model();
            int vocab = m.config().vocabSize();
            long bytesPerToken = 0;
            for (GgufTensorInfo t : m.file().tensors().values())
                if (!t.name().equals("token_embd.weight")) bytesPerToken += t.sizeBytes();
            SplittableRandom random = new SplittableRandom(42);
            int[] prompt = new int[promptTokens];
            for (int i = 0; i < promptTokens; i++) prompt[i] = 260 + random.nextInt(vocab - 260);
            float[] logits = new float[batch * vocab];

            // Batch 1: one prompt in one forward, then greedy decode. The first run warms up (kernels, graphs, caches).
            double[] prefillRuns = new double[3], decodeRuns = new double[3];
            for (int rep = -1; rep < 3; rep++) {
                try (KvCache cache = model.newKvCache(promptTokens + steps1 + 1)) {
                    long t0 = System.nanoTime();
                    model.forward(prompt, AttentionBatch.single(cache, 0, promptTokens), new int[] {promptTokens - 1}, logits);
                    long t1 = System.nanoTime();
                    int[] one = {CheckSetup.argmax(logits, 0, vocab)};
                    // Greedy steps as the engine runs them: the argmax on the device, the id back as the next token.
                    for (int s = 0; s < steps1; s++)
                        model.forwardArgmax(one, AttentionBatch.single(cache, promptTokens + s, 1), new int[] {0}, one);
                    long t2 = System.nanoTime();
                    if (rep < 0) continue;  // warm-up
                    prefillRuns[rep] = promptTokens / ((t1 - t0) / 1e9);
                    decodeRuns[rep] = steps1 / ((t2 - t1) / 1e9);
                }
            }
            double prefill1 = median(prefillRuns), decode1 = median(decodeRuns);
            // The same steps queued back to back, nobody waiting for a token (no classifier, no argmax, one sync at the
            // end): the device's own time per step. decode b1 minus this is what each greedy step adds on the host.
            double queued1;
            try (KvCache cache = model.newKvCache(promptTokens + steps1 + 1)) {
                model.forward(prompt, AttentionBatch.single(cache, 0, promptTokens), new int[] {promptTokens - 1}, logits);
                int[] one = {CheckSetup.argmax(logits, 0, vocab)};
                for (int s = 0; s < 2; s++) model.forward(one, AttentionBatch.single(cache, promptTokens + s, 1), new int[0], logits);
                long t0 = System.nanoTime();
                for (int s = 2; s < steps1; s++) model.forward(one, AttentionBatch.single(cache, promptTokens + s, 1), new int[0], logits);
                model.forward(one, AttentionBatch.single(cache, promptTokens + steps1, 1), new int[] {0}, logits);
                queued1 = (steps1 - 1) / ((System.nanoTime() - t0) / 1e9);
            }

            if (model.backend() instanceof CudaBackend cuda) profileDecode(label, model, cuda, prompt, steps, logits);

            // Batch 16: 16 sequences prefilled together in one forward, then one token each per forward.
            double prefill16 = 0, decode16 = 0;
            KvCache[] caches = new KvCache[batch];
            try {
                for (int s = 0; s < batch; s++) caches[s] = model.newKvCache(perSequencePrompt + steps + 1);
                int[] positions = new int[promptTokens];
                KvCache[] owners = new KvCache[promptTokens];
                int[] lastRows = new int[batch];
                for (int s = 0; s < batch; s++) {
                    for (int p = 0; p < perSequencePrompt; p++) {
                        positions[s * perSequencePrompt + p] = p;
                        owners[s * perSequencePrompt + p] = caches[s];
                    }
                    lastRows[s] = s * perSequencePrompt + perSequencePrompt - 1;
                }
                long t0 = System.nanoTime();
                model.forward(prompt, new AttentionBatch(promptTokens, positions, owners), lastRows, logits);
                long t1 = System.nanoTime();
                int[] next = new int[batch], decodePositions = new int[batch], all = new int[batch];
                for (int s = 0; s < batch; s++) { next[s] = CheckSetup.argmax(logits, s * vocab, vocab); all[s] = s; }
                for (int step = 0; step < steps; step++) {
                    Arrays.fill(decodePositions, perSequencePrompt + step);
                    model.forwardArgmax(next, new AttentionBatch(batch, decodePositions, caches), all, next);
                }
                long t2 = System.nanoTime();
                prefill16 = promptTokens / ((t1 - t0) / 1e9);
                decode16 = (double) batch * steps / ((t2 - t1) / 1e9);
            } finally {
                for (KvCache c : caches) if (c != null) c.close();
            }
            String backend = model.backend().name();
            log("%s on %s: prefill %.0f tok/s (b1, %d tokens), %.0f tok/s (b16); decode %.1f tok/s (b1), %.1f tok/s (b16, %d steps)",
                    label, backend, prefill1, promptTokens, prefill16, decode1, decode16, steps);
            report.row("decode", label + " prefill b1", String.format(Locale.ROOT, "%.0f tok/s", prefill1), "ok");
            report.row("decode", label + " prefill b16", String.format(Locale.ROOT, "%.0f tok/s", prefill16), "ok");
            report.row("decode", label + " decode b1", String.format(Locale.ROOT, "%.1f tok/s (median of 3 x %d steps)", decode1, steps1), "ok");
            report.row("decode", label + " decode b1, steps queued", String.format(Locale.ROOT, "%.1f tok/s (%.0f us/step on the device, %.0f us host per greedy step)",
                    queued1, 1e6 / queued1, 1e6 / decode1 - 1e6 / queued1), "ok");
            report.row("decode", label + " decode b16", String.format(Locale.ROOT, "%.1f tok/s", decode16), "ok");
            rates.add(new DecodeRate(label, bytesPerToken, decode1));
        }
    }


    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
