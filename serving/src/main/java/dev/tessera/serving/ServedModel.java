package dev.tessera.serving;

import dev.tessera.kernels.Backend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.tokenizer.Tokenizer;
import dev.tessera.scheduler.engine.BatchingEngine;
import dev.tessera.scheduler.engine.Engine;
import dev.tessera.scheduler.engine.EngineConfig;
import dev.tessera.scheduler.worker.ModelRunner;
import dev.tessera.serving.text.ChatPrompts;

import java.nio.file.Path;
import java.util.function.Function;

/**
 * A loaded model behind the API: its name, tokenizer and chat prompt rendering, and the engine that runs it.
 *
 * @param resources        what closing the served model releases after the engine (the mapped file, the model)
 * @param createdSeconds   when it was loaded, Unix seconds (the model card's {@code created})
 */
public record ServedModel(String name, Tokenizer tokenizer, Engine engine, ChatPrompts chat, AutoCloseable resources,
                          long createdSeconds) implements AutoCloseable {

    /** Sequences the batching engine runs at once by default. */
    public static final int DEFAULT_MAX_NUM_SEQS = EngineConfig.DEFAULT_MAX_NUM_SEQS;

    /**
     * Loads a model file onto a backend and starts a {@link BatchingEngine} that runs up to {@code maxNumSeqs}
     * sequences together, with room for maxWaiting more.
     */
    public static ServedModel load(Path path, String name, Backend backend, int maxWaiting, int maxNumSeqs) {
        return load(path, name, backend, EngineConfig.defaults(maxNumSeqs, ModelLoader.DEFAULT_MAX_BATCH_TOKENS, maxWaiting));
    }

    /** As above, with every engine setting (batch limits, KV memory and type, prefix caching). */
    public static ServedModel load(Path path, String name, Backend backend, EngineConfig config) {
        LoadedModel loaded = ModelLoader.load(path, backend, config.maxBatchedTokens(), config.maxNumSeqs());
        try {
            ChatPrompts chat = ChatPrompts.fromGguf(loaded.file(), loaded.tokenizer());
            Engine engine = new BatchingEngine(loaded.model(), config);
            return new ServedModel(name, loaded.tokenizer(), engine, chat, loaded, System.currentTimeMillis() / 1000);
        } catch (RuntimeException e) {
            loaded.close();
            throw e;
        }
    }

    public static ServedModel load(Path path, String name, Backend backend, int maxWaiting) {
        return load(path, name, backend, maxWaiting, DEFAULT_MAX_NUM_SEQS);
    }

    /**
     * Serves a model whose layers run elsewhere (tensor-parallel workers) behind the same batching engine:
     * {@code open} builds the {@link ModelRunner} from the mapped file; tokenizer and chat template stay here.
     */
    public static ServedModel load(Path path, String name, EngineConfig config, Function<GgufFile, ModelRunner> open) {
        GgufFile file = GgufFile.open(path);
        try {
            Tokenizer tokenizer = Tokenizer.fromGguf(file);
            ChatPrompts chat = ChatPrompts.fromGguf(file, tokenizer);
            ModelRunner runner = open.apply(file);
            Engine engine;
            try {
                engine = new BatchingEngine(runner, config, true);
            } catch (RuntimeException e) {
                runner.close();
                throw e;
            }
            return new ServedModel(name, tokenizer, engine, chat, file, System.currentTimeMillis() / 1000);
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }

    public int contextLength() {
        return engine.maxSequenceTokens();
    }

    @Override
    public void close() {
        engine.close();
        try {
            resources.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing " + name + ": " + e.getMessage(), e);
        }
    }
}
