package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.TensorType;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.models.synth.SynthPreset;
import dev.tessera.scheduler.engine.BatchingEngine;
import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.scheduler.engine.EngineRequest;
import dev.tessera.scheduler.engine.RequestHandle;
import dev.tessera.scheduler.engine.SingleRequest;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static dev.tessera.tools.gpucheck.CheckReport.log;

/** The batching engine on the device: exact greedy ids under preemption, then throughput at concurrency 1 and 8. */
final class EngineSection extends CheckSection {
    EngineSection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "engine";
    }

    /**
     * The serving engine on this device: stories260K's three reference cases plus five more prompts, submitted at once
     * to a {@link BatchingEngine} whose paged pool (20 blocks, 320 positions) cannot hold them together, so requests are
     * batched, preempted and recomputed. Every request's greedy ids must equal the reference (or its solo run on the
     * same device), and every block must be free at the end; F32 and F16 pools.
     */
    @Override
    void run() throws Exception {
        Path file = modelsDir.resolve("stories260K.gguf");
        List<int[][]> cases = StoriesSection.referenceCases(Files.readString(modelsDir.resolve("stories260K.reference.json")));
        try (LoadedModel m = ModelLoader.load(file, deviceBackend(), 64, 8)) {
            SplittableRandom random = new SplittableRandom(5);
            List<int[]> prompts = new ArrayList<>(), expected = new ArrayList<>();
            for (int[][] c : cases) { prompts.add(c[0]); expected.add(c[1]); }
            // The reference: each prompt alone on an engine that runs one sequence at a time.
            try (BatchingEngine solo = new BatchingEngine(m.model(), EngineConfig.defaults(1, 64, 1))) {
                while (prompts.size() < 8) {
                    int[] p = new int[3 + random.nextInt(30)];
                    p[0] = 1;
                    for (int i = 1; i < p.length; i++) p[i] = 3 + random.nextInt(500);
                    prompts.add(p);
                    expected.add(SingleRequest.run(solo, new EngineRequest("solo", p, SamplingParams.greedy(), 60, t -> false, false), t -> true).tokens());
                }
            }
            for (KvCacheType type : KvCacheType.values()) {
                long bytes = 20 * KvBlockStore.bytesPerBlock(m.config().numLayers(), m.config().kvDim(), 16, type);
                try (BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(8, 64, 8).withKvCache(bytes, type))) {
                    List<RequestHandle> handles = new ArrayList<>();
                    for (int i = 0; i < prompts.size(); i++)
                        handles.add(engine.submit(new EngineRequest("g" + i, prompts.get(i), SamplingParams.greedy(), expected.get(i).length, t -> false, false)));
                    int same = 0;
                    for (int i = 0; i < handles.size(); i++) if (Arrays.equals(expected.get(i), EngineLoad.tokens(handles.get(i)))) same++;
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                    while (engine.numFreeKvBlocks() != engine.numKvBlocks() && System.nanoTime() < deadline) Thread.sleep(5);
                    boolean ok = same == prompts.size() && engine.numFreeKvBlocks() == engine.numKvBlocks() && engine.stats().preemptions() > 0;
                    // F16 keys may flip a near-tie late in a long greedy run; F32 must match every id.
                    boolean pass = ok || (type == KvCacheType.F16 && same >= prompts.size() - 1 && engine.numFreeKvBlocks() == engine.numKvBlocks());
                    String value = String.format(Locale.ROOT, "%d/%d match, %d preemptions, %d/%d blocks free", same, prompts.size(),
                            engine.stats().preemptions(), engine.numFreeKvBlocks(), engine.numKvBlocks());
                    log("engine %s: %s", type, value);
                    report.row("engine", "8 requests, 20-block " + type + " pool (" + m.model().backend().name() + ")", value, pass ? "ok" : "FAIL");
                }
            }
        }
        engineThroughput();
    }

    /**
     * The engine's acceptance load (issue: 128-token prompts, 64 greedy tokens, concurrency 1 and 8) on Q4_0
     * llama-1b: output tok/s at each and their ratio. On a device where one sequence's decode is bandwidth-bound,
     * batching should multiply throughput; a 2-core CPU is compute-bound already at one sequence.
     */
    private void engineThroughput() throws Exception {
        SynthPreset preset = cpuOnly ? SynthPreset.TINY : SynthPreset.LLAMA_1B;
        Path file = synth(preset, TensorType.Q4_0);
        int promptTokens = cpuOnly ? 32 : 128, genTokens = cpuOnly ? 16 : 64;
        try (LoadedModel m = ModelLoader.load(file, deviceBackend(), 256, 16);
             BatchingEngine engine = new BatchingEngine(m.model(), EngineConfig.defaults(16, 256, 64))) {
            int vocab = m.config().vocabSize();
            EngineLoad.run(engine, vocab, 8, 8, promptTokens, 8, 1);  // warm-up: kernels, graphs, JIT
            EngineLoad.Result c1 = EngineLoad.run(engine, vocab, 1, 8, promptTokens, genTokens, 2);
            EngineLoad.Result c8 = EngineLoad.run(engine, vocab, 8, 16, promptTokens, genTokens, 3);
            String label = preset.presetName + " q4_0, " + promptTokens + "+" + genTokens + " tokens";
            log("engine load %s: c1 %.1f tok/s, c8 %.1f tok/s (%.2fx), failed %d + %d", label, c1.outputTokensPerS(),
                    c8.outputTokensPerS(), c8.outputTokensPerS() / c1.outputTokensPerS(), c1.failed(), c8.failed());
            String status = c1.failed() + c8.failed() == 0 ? "ok" : "FAIL";
            report.row("engine", label + ", concurrency 1", String.format(Locale.ROOT, "%.1f output tok/s (8 requests)", c1.outputTokensPerS()), status);
            report.row("engine", label + ", concurrency 8", String.format(Locale.ROOT, "%.1f output tok/s (16 requests), %.2fx concurrency 1",
                    c8.outputTokensPerS(), c8.outputTokensPerS() / c1.outputTokensPerS()), status);
        }
    }
}
