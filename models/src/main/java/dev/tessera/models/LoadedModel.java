package dev.tessera.models;

import dev.tessera.kernels.Backend;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.tokenizer.Tokenizer;

/** A model ready to run: the mapped file, its configuration, tokenizer and forward pass. Closing unmaps the file. */
public record LoadedModel(GgufFile file, ModelConfig config, Tokenizer tokenizer, LlamaModel model) implements AutoCloseable {
    @Override
    public void close() {
        model.close();
        file.close();
    }
}
