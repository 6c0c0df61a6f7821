package dev.tessera.models;

import dev.tessera.kernels.Backend;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.models.tokenizer.Tokenizer;

import java.nio.file.Path;

/** Opens a model file and checks everything needed to run it before any compute starts. */
public final class ModelLoader {
    public static final int DEFAULT_MAX_BATCH_TOKENS = 256;

    private ModelLoader() {}

    /** Opens, validates and closes a model file; any problem is a GgufException with a one-line message. */
    public static void check(Path path) {
        try (GgufFile file = GgufFile.open(path)) {
            ModelConfig config = ModelConfig.fromGguf(file);
            Tokenizer.fromGguf(file);
            checkWeights(file, config);
        }
    }

    /** Loads a model onto a backend; the backend is closed with the model. */
    public static LoadedModel load(Path path, Backend backend, int maxBatchTokens) {
        return load(path, backend, maxBatchTokens, 1);
    }

    /** @param maxLogitRows sequences that can need logits in one step */
    public static LoadedModel load(Path path, Backend backend, int maxBatchTokens, int maxLogitRows) {
        GgufFile file = GgufFile.open(path);
        try {
            ModelConfig config = ModelConfig.fromGguf(file);
            Tokenizer tokenizer = Tokenizer.fromGguf(file);
            LlamaWeights weights = LlamaWeights.load(file, config, backend);
            return new LoadedModel(file, config, tokenizer, new LlamaModel(config, weights, backend, maxBatchTokens, maxLogitRows));
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }

    /** Shape checks without a backend: the same rules LlamaWeights.load applies. */
    private static void checkWeights(GgufFile file, ModelConfig config) {
        LlamaWeights.load(file, config, new ShapeOnlyBackend());
        for (GgufTensorInfo t : file.tensors().values()) file.data(t);
    }
}
