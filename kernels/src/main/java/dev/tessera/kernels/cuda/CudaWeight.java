package dev.tessera.kernels.cuda;

import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

/** A weight in device memory at {@code pointer}, GGUF bytes unchanged ([rows][cols] in {@code type}'s blocks). */
record CudaWeight(String name, TensorType type, int rows, int cols, long pointer, long sizeBytes) implements Weight {}
