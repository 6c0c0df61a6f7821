package dev.tessera.kernels.cpu;

import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

import java.lang.foreign.MemorySegment;

/** A weight as a zero-copy view of mapped GGUF bytes; rows are {@code rowBytes} apart. */
public record CpuWeight(String name, TensorType type, MemorySegment data, int rows, int cols, long rowBytes) implements Weight {
    public CpuWeight(String name, TensorType type, MemorySegment data, int rows, int cols) {
        this(name, type, data, rows, cols, type.byteSize(cols));
    }
}
