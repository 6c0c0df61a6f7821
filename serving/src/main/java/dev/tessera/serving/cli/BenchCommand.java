package dev.tessera.serving.cli;

import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.cpu.CpuTopology;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.models.tokenizer.Tokenizer;
import dev.tessera.scheduler.engine.Engine;
import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.scheduler.engine.EngineRequest;
import dev.tessera.scheduler.engine.SingleRequest;

import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * {@code tessera bench}: prefill and decode throughput of one sequence, median over repeated runs after a warm-up that
 * lasts until the JIT has settled.
 * Prompt tokens are a fixed pseudo-random sequence of ordinary vocabulary ids, so every run (and a peer engine
 * given the same ids) does identical work; decode is greedy.
 */
public final class BenchCommand implements Command {
    @Override public String name() { return "bench"; }

    @Override public String summary() { return "measure prefill and decode tokens/s of a model; 'bench serve' load-tests a server"; }

    @Override
    public String usage() {
        return """
                usage: tessera bench --model PATH [options]

                  --model PATH          GGUF model file (required)
                  --prompt-tokens N     prompt length for prefill (default 128)
                  --gen-tokens N        decode steps (default 64)
                  --reps N              measured runs after the warm-up (until the JIT settles, at most 5 runs);
                        the median is reported (default 3)
                  --threads N           CPU threads (default: physical cores)
                  --device auto|cpu|cuda[:N]  compute device (default auto)
                  --kv-cache-type f32|f16   element type of cached keys and values (default f32, as serve; llama.cpp's is f16)
                  --json                print one JSON object instead of a table""" + TensorParallelOptions.USAGE + AttentionOffloadOptions.USAGE + ExpertParallelOptions.USAGE
                + "\n\n'tessera bench serve' load-tests a running OpenAI-compatible server instead:\n" + BenchServeCommand.USAGE;
    }

    @Override
    public int run(List<String> argList) throws Exception {
        if (!argList.isEmpty() && argList.getFirst().equals("serve")) return new BenchServeCommand().run(argList.subList(1, argList.size()));
        CliArgs args = new CliArgs(argList, ModelEngines.withRunnerOptions(java.util.Set.of("model", "prompt-tokens", "gen-tokens", "reps", "threads", "device", "kv-cache-type")),
                java.util.Set.of("json"));
        Path path = Path.of(args.require("model"));
        int promptTokens = args.getInt("prompt-tokens", 128, 1, 1 << 20);
        int genTokens = args.getInt("gen-tokens", 64, 1, 1 << 20);
        int reps = args.getInt("reps", 3, 1, 1000);
        int threads = args.getInt("threads", CpuTopology.physicalCores(), 1, 1024);
        // The same batching engine the server runs, one request at a time, local or tensor-parallel (--tp-workers).
        // No prefix caching: every rep must compute its whole prompt.
        KvCacheType kvType = ServeCommand.kvCacheType(args.get("kv-cache-type", "f32"));
        EngineConfig config = EngineConfig.defaults(1, ModelLoader.DEFAULT_MAX_BATCH_TOKENS, 1).withPrefixCaching(false)
                .withKvCache(0, kvType);
        long t0 = System.nanoTime();
        try (ModelEngines.Opened m = ModelEngines.open(args, path, config, threads)) {
            double loadSeconds = (System.nanoTime() - t0) / 1e9;
            if (promptTokens + genTokens > m.engine().maxSequenceTokens())
                throw new CliArgs.UsageException("prompt + gen tokens " + (promptTokens + genTokens) + " exceed the context of " + m.engine().maxSequenceTokens());
            int[] prompt = benchPrompt(m.config().vocabSize(), m.tokenizer(), promptTokens);
            warmUp(m.engine(), prompt, genTokens);
            double[] prefill = new double[reps], decode = new double[reps];
            for (int r = 0; r < reps; r++) {
                double[] run = runOnce(m.engine(), prompt, genTokens);
                prefill[r] = run[0];
                decode[r] = run[1];
                System.err.printf(Locale.ROOT, "tessera bench: run %d prefill %.1f tok/s, decode %.2f tok/s%n", r + 1, run[0], run[1]);
            }
            for (String line : m.runner().stats()) System.err.println("tessera bench: " + line);
            double p = median(prefill), d = median(decode);
            if (args.has("json")) {
                System.out.printf(Locale.ROOT, "{\"engine\":\"tessera\",\"model\":\"%s\",\"model_bytes\":%d,\"backend\":\"%s\",\"threads\":%d,"
                                + "\"kv_cache_type\":\"%s\",\"prompt_tokens\":%d,\"gen_tokens\":%d,\"reps\":%d,\"load_s\":%.3f,"
                                + "\"prefill_tokens_per_s\":%.3f,\"decode_tokens_per_s\":%.3f,\"prefill_runs\":%s,\"decode_runs\":%s}%n",
                        path.getFileName(), Files.size(path), m.where(), threads, kvType.name().toLowerCase(Locale.ROOT), promptTokens, genTokens, reps, loadSeconds,
                        p, d, json(prefill), json(decode));
            } else {
                System.out.printf(Locale.ROOT, "model %s, %s%nprefill %d tokens: %.1f tok/s (median of %d)%ndecode %d tokens: %.2f tok/s (median of %d)%n",
                        path.getFileName(), m.where(), promptTokens, p, reps, genTokens, d, reps);
            }
        }
        return 0;
    }

    /** At most this many warm-up runs. */
    static final int MAX_WARMUPS = 5;

    /**
     * Runs until the JIT has settled: a run during which the compiler threads spent under 2% of its wall time, or
     * {@link #MAX_WARMUPS} runs. On a 2-core machine those threads take cores from the measured runs; after a single
     * warm-up run the next two still compiled (2-thread 1B decode reps 40.8, 50.0, 47.9 tok/s).
     */
    static void warmUp(Engine engine, int[] prompt, int genTokens) throws InterruptedException {
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        boolean timed = jit != null && jit.isCompilationTimeMonitoringSupported();
        for (int w = 1; w <= MAX_WARMUPS; w++) {
            long compiled = timed ? jit.getTotalCompilationTime() : 0, t0 = System.nanoTime();
            double[] run = runOnce(engine, prompt, genTokens);
            double wallMillis = (System.nanoTime() - t0) / 1e6, compileMillis = timed ? jit.getTotalCompilationTime() - compiled : 0;
            System.err.printf(Locale.ROOT, "tessera bench: warm-up %d prefill %.1f tok/s, decode %.2f tok/s, JIT %.0f ms of %.0f%n",
                    w, run[0], run[1], compileMillis, wallMillis);
            if (!timed || compileMillis < 0.02 * wallMillis) return;
        }
    }

    /** Throughput of one prefill of the prompt and genTokens greedy decode steps on the engine: {prefill, decode} tok/s. */
    static double[] runOnce(Engine engine, int[] prompt, int genTokens) throws InterruptedException {
        // n sampled tokens take n - 1 decode steps after the prefill; ask for one more so there are genTokens steps.
        SingleRequest.Result r = SingleRequest.run(engine, new EngineRequest("bench", prompt, SamplingParams.greedy(), genTokens + 1,
                t -> false, false), t -> true);
        return new double[]{prompt.length / (r.prefillNanos() / 1e9), (r.numTokens() - 1) / (r.decodeNanos() / 1e9)};
    }

    static int[] benchPrompt(int vocab, Tokenizer tokenizer, int n) {
        int[] out = new int[n];
        SplittableRandom random = new SplittableRandom(42);
        // Skip the first 260 ids: control and byte tokens in SentencePiece vocabularies.
        int low = Math.min(260, vocab - 1);
        for (int i = 0; i < n; i++) out[i] = low + random.nextInt(vocab - low);
        if (tokenizer.addBos()) out[0] = tokenizer.bosId();
        return out;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static String json(double[] v) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < v.length; i++) sb.append(i > 0 ? "," : "").append(String.format(Locale.ROOT, "%.3f", v[i]));
        return sb.append(']').toString();
    }
}
