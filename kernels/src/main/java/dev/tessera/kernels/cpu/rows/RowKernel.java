package dev.tessera.kernels.cpu.rows;

import java.lang.foreign.MemorySegment;

/**
 * Reads one row of a weight tensor stored in a ggml type. {@code w} holds little-endian GGUF bytes (often an
 * mmapped file, so offsets need not be aligned); {@code rowOffset}/{@code offset} is the byte offset of the row's
 * first block and {@code n}, the number of elements, is a multiple of the type's block size.
 */
public interface RowKernel {

    /** Sum over i of row[i] * x[xOffset + i], vectorized. */
    float dot(MemorySegment w, long rowOffset, float[] x, int xOffset, int n);

    /** Writes the row's n values into out[outOffset..]. */
    void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n);

    /** The plain scalar reference for {@link #dot}; tests compare the two. */
    float dotScalar(MemorySegment w, long rowOffset, float[] x, int xOffset, int n);
}
