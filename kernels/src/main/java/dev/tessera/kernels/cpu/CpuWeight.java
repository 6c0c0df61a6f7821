package dev.tessera.kernels.cpu;

import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.cpu.rows.RowKernel;
import dev.tessera.kernels.cpu.rows.RowKernels;

import java.lang.foreign.MemorySegment;

/** A weight as a zero-copy view of mapped GGUF bytes; rows are {@code rowBytes} apart and read by {@code kernel}. */
public record CpuWeight(String name, TensorType type, MemorySegment data, int rows, int cols, long rowBytes, RowKernel kernel)
        implements Weight {
    public CpuWeight(String name, TensorType type, MemorySegment data, int rows, int cols) {
        this(name, type, data, rows, cols, type.byteSize(cols), RowKernels.forType(type));
    }

    float dot(int row, float[] x, int xOffset) {
        return kernel.dot(data, row * rowBytes, x, xOffset, cols);
    }

    void dequantize(int row, float[] out, int outOffset) {
        kernel.dequantize(data, row * rowBytes, out, outOffset, cols);
    }
}
