package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;

/** Activations on the Java heap: the Vector API reads float[] fastest. Row t starts at t * width. */
public record CpuActivations(float[] data, int maxTokens, int width) implements Activations {
    public CpuActivations(int maxTokens, int width) {
        this(new float[Math.multiplyExact(maxTokens, width)], maxTokens, width);
    }
}
