package dev.tessera.serving.cli;

import dev.tessera.kernels.collective.AllReduceKind;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.sample.Sampler;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.models.tokenizer.StreamingDecoder;
import dev.tessera.models.tokenizer.Tokenizer;
import dev.tessera.scheduler.engine.SequenceGenerator;
import dev.tessera.scheduler.parallel.ShardPlan;
import dev.tessera.scheduler.parallel.TensorParallelModel;
import dev.tessera.scheduler.parallel.TensorParallelWorker;
import dev.tessera.scheduler.parallel.TpProtocol;

import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The tensor-parallel master options of {@code generate} and {@code bench} ({@code --tp-workers}, {@code --tp-weights},
 * {@code --allreduce}, {@code --memory-window}) and the runs they select: this process is rank 0.
 */
final class TensorParallelOptions {
    static final Set<String> OPTIONS = Set.of("tp-workers", "tp-weights", "allreduce", "memory-window", "tp-allreduce-listen", "tp-allreduce-via");

    static final String USAGE = """

              --tp-workers H:P,...     tensor-parallel: run with these workers (ranks 1..N); this process is rank 0
              --tp-weights 1,1,2       relative device speeds, master first (default: all equal)
              --allreduce star|ring    allreduce algorithm (default star)
              --memory-window W        blocks of the master's weights resident at once, 0 = all (default 0)
              --tp-allreduce-listen H:P  bind the master's allreduce listener here (default: a free port)
              --tp-allreduce-via H:P,... per worker, in --tp-workers order, the address it reaches the master's
                                       allreduce listener at (e.g. a 'tessera linkemu' in front of --tp-allreduce-listen)""";

    private TensorParallelOptions() {}

    static TensorParallelModel open(CliArgs args, GgufFile file, ModelConfig config, int threads) {
        List<InetSocketAddress> workers = new ArrayList<>();
        for (String s : args.require("tp-workers").split(",")) {
            try {
                workers.add(TensorParallelWorker.parseAddress(s.trim()));
            } catch (TpProtocol.ProtocolException e) {
                throw new CliArgs.UsageException("--tp-workers: " + e.getMessage());
            }
        }
        int[] weights;
        AllReduceKind kind;
        ShardPlan plan;
        try {
            weights = args.has("tp-weights") ? ShardPlan.parseWeights(args.get("tp-weights", "")) : ones(workers.size() + 1);
            if (weights.length != workers.size() + 1)
                throw new CliArgs.UsageException("--tp-weights has " + weights.length + " entries for " + (workers.size() + 1) + " devices (master first)");
            kind = AllReduceKind.parse(args.get("allreduce", "star"));
            plan = TensorParallelModel.plan(file, config, weights);
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        int window = args.getInt("memory-window", 0, 0, 1 << 20);
        if (window == 1) throw new CliArgs.UsageException("--memory-window must be 0 (all) or at least 2");
        InetSocketAddress listen = args.has("tp-allreduce-listen") ? address("--tp-allreduce-listen", args.get("tp-allreduce-listen", "")) : null;
        List<InetSocketAddress> via = new ArrayList<>();
        if (args.has("tp-allreduce-via")) {
            for (String s : args.get("tp-allreduce-via", "").split(",")) via.add(address("--tp-allreduce-via", s.trim()));
            if (via.size() != workers.size())
                throw new CliArgs.UsageException("--tp-allreduce-via has " + via.size() + " addresses for " + workers.size() + " workers (one per worker, in --tp-workers order)");
            if (listen == null) throw new CliArgs.UsageException("--tp-allreduce-via needs --tp-allreduce-listen (the fixed port the routes lead to)");
        }
        return new TensorParallelModel(file, config, new CpuBackend(threads), workers, plan, kind, window, 256, Duration.ofSeconds(30), listen, via);
    }

    private static InetSocketAddress address(String flag, String s) {
        try {
            return TensorParallelWorker.parseAddress(s);
        } catch (TpProtocol.ProtocolException e) {
            throw new CliArgs.UsageException(flag + ": " + e.getMessage());
        }
    }

    private static int[] ones(int n) {
        int[] w = new int[n];
        java.util.Arrays.fill(w, 1);
        return w;
    }

    static int generate(CliArgs args, Path model, String prompt, int maxTokens, SamplingParams params, int threads) {
        try (GgufFile file = GgufFile.open(model)) {
            ModelConfig config = ModelConfig.fromGguf(file);
            Tokenizer tokenizer = Tokenizer.fromGguf(file);
            try (TensorParallelModel tp = open(args, file, config, threads)) {
                int[] tokens = tokenizer.encode(prompt, true, false);
                if (tokens.length == 0) throw new CliArgs.UsageException("the prompt produced no tokens and the model adds no BOS");
                PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);
                StreamingDecoder decoder = new StreamingDecoder(tokenizer, prompt.isEmpty());
                SequenceGenerator.Result r = new SequenceGenerator(tp).generate(tokens, new Sampler(params, config.vocabSize()), maxTokens,
                        tokenizer::isEndOfGeneration, token -> {
                            out.print(decoder.feed(token));
                            out.flush();
                            return true;
                        });
                out.print(decoder.flush());
                out.println();
                out.flush();
                System.err.printf(Locale.ROOT, "tessera: tensor-parallel over %d devices; prompt %d tokens in %.3f s; generated %d tokens at %.1f tok/s (%s)%n",
                        tp.shardPlan().numDevices(), r.numPromptTokens(), r.prefillNanos() / 1e9, r.numTokens(),
                        r.numTokens() / Math.max(1e-9, r.decodeNanos() / 1e9), r.finishReason());
                for (TpProtocol.StatsReply s : tp.stats()) System.err.println("tessera: " + s.summary() + " (peak " + s.peakResidentBlocks() + " blocks resident)");
            }
        }
        return 0;
    }

    /** TTFT (prefill to first logits) and per-token decode latency, median over reps after a warm-up; greedy. */
    static int bench(CliArgs args, Path model, int promptTokens, int genTokens, int reps, int threads) {
        try (GgufFile file = GgufFile.open(model)) {
            ModelConfig config = ModelConfig.fromGguf(file);
            Tokenizer tokenizer = Tokenizer.fromGguf(file);
            int[] prompt = new int[promptTokens];
            SplittableRandom random = new SplittableRandom(42);
            int low = Math.min(260, config.vocabSize() - 1);
            for (int i = 0; i < promptTokens; i++) prompt[i] = low + random.nextInt(config.vocabSize() - low);
            if (tokenizer.addBos()) prompt[0] = tokenizer.bosId();
            try (TensorParallelModel tp = open(args, file, config, threads)) {
                double[] ttft = new double[reps], perToken = new double[reps];
                for (int r = -1; r < reps; r++) {
                    SequenceGenerator.Result res = new SequenceGenerator(tp).generate(prompt, new Sampler(SamplingParams.greedy(), config.vocabSize()),
                            genTokens, t -> false, t -> true);
                    double first = res.prefillNanos() / 1e6, each = res.decodeNanos() / 1e6 / Math.max(1, res.numTokens() - 1);
                    if (r >= 0) { ttft[r] = first; perToken[r] = each; }
                    System.err.printf(Locale.ROOT, "tessera bench: %s TTFT %.1f ms, %.1f ms/token%n", r < 0 ? "warm-up" : "run " + (r + 1), first, each);
                }
                List<TpProtocol.StatsReply> stats = tp.stats();
                for (TpProtocol.StatsReply s : stats) System.err.println("tessera bench: " + s.summary() + " (peak " + s.peakResidentBlocks() + " blocks resident)");
                double t = BenchCommand.median(ttft), p = BenchCommand.median(perToken);
                if (args.has("json")) {
                    System.out.printf(Locale.ROOT, "{\"engine\":\"tessera-tp\",\"model\":\"%s\",\"devices\":%d,\"allreduce\":\"%s\",\"memory_window\":%d,"
                                    + "\"prompt_tokens\":%d,\"gen_tokens\":%d,\"reps\":%d,\"ttft_ms\":%.3f,\"ms_per_token\":%.3f,\"decode_tokens_per_s\":%.3f}%n",
                            model.getFileName(), tp.shardPlan().numDevices(), args.get("allreduce", "star"), args.getInt("memory-window", 0, 0, 1 << 20),
                            promptTokens, genTokens, reps, t, p, 1000 / p);
                } else {
                    System.out.printf(Locale.ROOT, "model %s, tensor-parallel over %d devices%nTTFT (%d prompt tokens): %.1f ms (median of %d)%ndecode: %.2f ms/token (median of %d)%n",
                            model.getFileName(), tp.shardPlan().numDevices(), promptTokens, t, reps, p, reps);
                }
            }
        }
        return 0;
    }
}
