package dev.tessera.kernels;

/**
 * A weight matrix [rows][cols] (ggml ne0 = cols) in some {@link TensorType}, owned by a {@link Backend}:
 * a zero-copy view of the mapped GGUF on the CPU, a device buffer on a GPU. A 1-D weight (norm, bias) has rows = 1.
 */
public interface Weight {
    String name();
    TensorType type();
    int rows();
    int cols();
}
