package dev.tessera.models;

import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;

import java.nio.file.Path;

/** Opens a model file and checks everything needed to run it. */
public final class ModelLoader {
    private ModelLoader() {}

    /** Opens, validates and closes a model file; any problem is a GgufException with a one-line message. */
    public static void check(Path path) {
        try (GgufFile file = GgufFile.open(path)) {
            ModelConfig.fromGguf(file);
        }
    }
}
