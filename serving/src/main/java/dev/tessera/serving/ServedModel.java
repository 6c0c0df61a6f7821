package dev.tessera.serving;

import dev.tessera.kernels.Backend;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.tokenizer.Tokenizer;
import dev.tessera.scheduler.engine.Engine;
import dev.tessera.scheduler.engine.SerialEngine;
import dev.tessera.serving.text.ChatPrompts;

import java.nio.file.Path;

/**
 * A loaded model behind the API: its name, tokenizer and chat prompt rendering, and the engine that runs it.
 *
 * @param createdSeconds when it was loaded, Unix seconds (the model card's {@code created})
 */
public record ServedModel(String name, LoadedModel loaded, Engine engine, ChatPrompts chat, long createdSeconds)
        implements AutoCloseable {

    /** Loads a model file onto a backend and starts a {@link SerialEngine} with room for maxWaiting requests. */
    public static ServedModel load(Path path, String name, Backend backend, int maxWaiting) {
        LoadedModel loaded = ModelLoader.load(path, backend, ModelLoader.DEFAULT_MAX_BATCH_TOKENS);
        try {
            ChatPrompts chat = ChatPrompts.fromGguf(loaded.file(), loaded.tokenizer());
            Engine engine = new SerialEngine(loaded.model(), maxWaiting);
            return new ServedModel(name, loaded, engine, chat, System.currentTimeMillis() / 1000);
        } catch (RuntimeException e) {
            loaded.close();
            throw e;
        }
    }

    public Tokenizer tokenizer() {
        return loaded.tokenizer();
    }

    public int contextLength() {
        return engine.maxSequenceTokens();
    }

    @Override
    public void close() {
        engine.close();
        loaded.close();
    }
}
