package dev.tessera.kernels;

/** F32 activations [maxTokens][width], row-major, owned by a {@link Backend}. */
public interface Activations {
    int maxTokens();
    int width();
}
