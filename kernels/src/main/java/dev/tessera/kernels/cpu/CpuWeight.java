package dev.tessera.kernels.cpu;

import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.cpu.rows.RowKernel;
import dev.tessera.kernels.cpu.rows.RowKernels;

import java.lang.foreign.MemorySegment;

/**
 * A weight as a zero-copy view of mapped GGUF bytes; rows are {@code rowBytes} apart and read by {@code kernel}.
 * A 1-D weight (norm, bias: one row of a few thousand values) is also decoded once into {@code vector}, because the
 * element-wise ops read it whole for every token.
 */
public record CpuWeight(String name, TensorType type, MemorySegment data, int rows, int cols, long rowBytes, RowKernel kernel,
                        float[] vector) implements Weight {
    public CpuWeight(String name, TensorType type, MemorySegment data, int rows, int cols) {
        this(name, type, data, rows, cols, type.byteSize(cols), RowKernels.forType(type), null);
    }

    /** Adds the decoded {@code vector} to 1-D weights. */
    static CpuWeight of(String name, TensorType type, MemorySegment data, int rows, int cols) {
        CpuWeight w = new CpuWeight(name, type, data, rows, cols);
        if (rows != 1) return w;
        float[] v = new float[cols];
        w.dequantize(0, v, 0);
        return new CpuWeight(name, type, data, rows, cols, w.rowBytes, w.kernel, v);
    }

    float dot(int row, float[] x, int xOffset) {
        return kernel.dot(data, row * rowBytes, x, xOffset, cols);
    }

    void dequantize(int row, float[] out, int outOffset) {
        kernel.dequantize(data, row * rowBytes, out, outOffset, cols);
    }
}
