package dev.tessera.models.gguf;

import dev.tessera.kernels.TensorType;

/**
 * A tensor's directory entry. {@code dims} are ggml's ne (ne0 first: the contiguous, input dimension), so a
 * 2-D weight with dims [cols, rows] is stored row-major as [rows][cols]. {@code offset} is relative to the data section.
 */
public record GgufTensorInfo(String name, long[] dims, TensorType type, long offset) {

    public long numElements() {
        long n = 1;
        for (long d : dims) n *= d;
        return n;
    }

    public long sizeBytes() {
        return type.byteSize(numElements());
    }

    /** Length of one row (ne0). */
    public int cols() {
        return (int) dims[0];
    }

    /** Number of rows (product of ne1.. ). */
    public int rows() {
        return (int) (numElements() / dims[0]);
    }
}
