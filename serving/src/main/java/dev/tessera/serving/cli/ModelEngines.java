package dev.tessera.serving.cli;

import dev.tessera.kernels.Backend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.tokenizer.Tokenizer;
import dev.tessera.scheduler.engine.BatchingEngine;
import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.scheduler.expert.ExpertParallelRunner;
import dev.tessera.scheduler.parallel.TensorParallelRunner;
import dev.tessera.scheduler.worker.LocalModelRunner;
import dev.tessera.scheduler.worker.ModelRunner;

import java.nio.file.Path;

/**
 * Opens a model file behind a batching engine for {@code generate} and {@code bench}: in this process on
 * {@code --device}, or as rank 0 of a tensor-parallel group with {@code --tp-workers}. Both are the same engine; only
 * the runner differs.
 */
final class ModelEngines {
    /** An engine over an open model; closing stops the engine and releases the model. */
    record Opened(GgufFile file, ModelConfig config, Tokenizer tokenizer, BatchingEngine engine, ModelRunner runner,
                  String where, AutoCloseable model) implements AutoCloseable {
        @Override
        public void close() throws Exception {
            try (model) {
                engine.close();
            }
        }
    }

    private ModelEngines() {}

    /** A command's own options plus those that pick a runner (tensor-parallel, attention offloading). */
    static java.util.Set<String> withRunnerOptions(java.util.Set<String> own) {
        java.util.Set<String> all = new java.util.HashSet<>(own);
        all.addAll(TensorParallelOptions.OPTIONS);
        all.addAll(AttentionOffloadOptions.OPTIONS);
        all.addAll(ExpertParallelOptions.OPTIONS);
        return java.util.Set.copyOf(all);
    }

    static Opened open(CliArgs args, Path path, EngineConfig config, int threads) {
        int batch = config.maxBatchedTokens(), seqs = config.maxNumSeqs();
        if (args.has("tp-workers"))
            return overFile(path, config, (file, c) -> TensorParallelOptions.open(args, file, c, threads, batch, seqs),
                    r -> "tensor-parallel over " + ((TensorParallelRunner) r).shardPlan().numDevices() + " devices");
        if (args.has("attention-workers"))
            return overFile(path, config, (file, c) -> AttentionOffloadOptions.open(args, file, c, path.getFileName().toString(), threads, batch, seqs),
                    r -> "attention offloaded to " + args.get("attention-workers", ""));
        if (args.has("expert-workers"))
            return overFile(path, config, (file, c) -> ExpertParallelOptions.open(args, file, c, threads, batch, seqs),
                    r -> "expert-parallel (" + ((ExpertParallelRunner) r).mode().flag + ") over " + ((ExpertParallelRunner) r).numDevices() + " devices");
        Backend backend = Devices.backend(args, threads);
        LoadedModel m = ModelLoader.load(path, backend, config.maxBatchedTokens(), config.maxNumSeqs());
        try {
            LocalModelRunner runner = new LocalModelRunner(m.model());
            BatchingEngine engine = new BatchingEngine(runner, config, true);
            return new Opened(m.file(), m.config(), m.tokenizer(), engine, runner, backend.name(), m);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /** Builds a runner from the open file (the layers run elsewhere, at least in part) under a batching engine. */
    private static Opened overFile(Path path, EngineConfig config, java.util.function.BiFunction<GgufFile, ModelConfig, ModelRunner> open,
                                   java.util.function.Function<ModelRunner, String> where) {
        GgufFile file = GgufFile.open(path);
        try {
            ModelConfig c = ModelConfig.fromGguf(file);
            Tokenizer tokenizer = Tokenizer.fromGguf(file);
            ModelRunner runner = open.apply(file, c);
            BatchingEngine engine;
            try {
                engine = new BatchingEngine(runner, config, false);
            } catch (RuntimeException e) {
                runner.close();
                throw e;
            }
            AutoCloseable model = () -> { try (file) { runner.close(); } };
            return new Opened(file, c, tokenizer, engine, runner, where.apply(runner), model);
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }
}
