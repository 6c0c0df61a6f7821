package dev.tessera.models;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates ../shared/models; missing test data fails the test rather than skipping it. */
public final class TestModels {
    private TestModels() {}

    public static Path dir() {
        String p = System.getProperty("tessera.models");
        Path dir = p != null ? Path.of(p) : Path.of("../../shared/models");
        if (!Files.isDirectory(dir)) throw new IllegalStateException("test data not found at " + dir.toAbsolutePath() + " (expected ../shared/models beside the repository)");
        return dir;
    }

    public static Path file(String relative) {
        Path f = dir().resolve(relative);
        if (!Files.exists(f)) throw new IllegalStateException("test data file missing: " + f.toAbsolutePath());
        return f;
    }
}
