package dev.tessera.kernels.cuda;

import dev.tessera.kernels.Activations;

/** F32 activations [maxTokens][width] in device memory at {@code pointer}; row t starts t * width floats in. */
record CudaActivations(int maxTokens, int width, long pointer) implements Activations {
    long rowPointer(int t) {
        return pointer + 4L * t * width;
    }
}
