package dev.tessera.kernels.cpu;

import dev.tessera.kernels.CorruptTensorException;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.cpu.rows.PanelKernel;
import dev.tessera.kernels.cpu.rows.RowKernel;
import dev.tessera.kernels.cpu.rows.RowKernels;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A weight as a zero-copy view of mapped GGUF bytes; rows are {@code rowBytes} apart and read by {@code kernel}.
 * A 1-D weight (norm, bias: one row of a few thousand values) is also decoded once into {@code vector}, because the
 * element-wise ops read it whole for every token.
 * <p>
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS and K-quant (Q2_K to Q6_K) matrices are the exception to zero-copy: they
 * are repacked at load into 16-row panels ({@code panels}, read by {@code panelKernel}; the same size, Q2_K's 4.8%,
 * Q3_K's 5.5%, IQ4_XS's 2.9% and Q6_K's 1% larger), which every op then reads instead
 * of {@code data}. The mapped pages are released after the copy, so
 * resident memory stays about one copy of the tensor; they are read back from the file only if {@code data} is read.
 */
public record CpuWeight(String name, TensorType type, MemorySegment data, int rows, int cols, long rowBytes, RowKernel kernel,
                        float[] vector, MemorySegment panels, PanelKernel panelKernel) implements Weight {
    public CpuWeight(String name, TensorType type, MemorySegment data, int rows, int cols) {
        this(name, type, data, rows, cols, type.byteSize(cols), RowKernels.forType(type), null, null, null);
    }

    /** Adds the decoded {@code vector} to 1-D weights and the panel copy to matrices of a type with panels. */
    static CpuWeight of(String name, TensorType type, MemorySegment data, int rows, int cols) {
        CpuWeight w = new CpuWeight(name, type, data, rows, cols);
        if (rows == 1) {
            float[] v = new float[cols];
            w.dequantize(0, v, 0);
            return new CpuWeight(name, type, data, rows, cols, w.rowBytes, w.kernel, v, null, null);
        }
        PanelKernel panelKernel = PanelKernel.forType(type, rows, cols);
        if (panelKernel != null) {
            // Arena.ofAuto: the copy lives as long as the weight, like the mapping it replaces.
            MemorySegment panels;
            try {
                panels = panelKernel.repack(data, rows, cols, Arena.ofAuto());
            } catch (CorruptTensorException e) {
                // The parallel repack may wrap its worker's exception in another of the same type.
                Throwable first = e;
                while (first.getCause() instanceof CorruptTensorException inner) first = inner;
                throw new CorruptTensorException("tensor " + name + ": " + first.getMessage(), e);
            }
            if (data.isMapped()) data.unload();
            return new CpuWeight(name, type, data, rows, cols, w.rowBytes, w.kernel, null, panels, panelKernel);
        }
        return w;
    }

    long panelOffset(int row) {
        return (row / PanelKernel.ROWS) * panelKernel.panelBytes(cols);
    }

    float dot(int row, float[] x, int xOffset) {
        return kernel.dot(data, row * rowBytes, x, xOffset, cols);
    }

    void dequantize(int row, float[] out, int outOffset) {
        if (panels != null) panelKernel.dequantizeRow(panels, panelOffset(row), row % PanelKernel.ROWS, cols, out, outOffset);
        else kernel.dequantize(data, row * rowBytes, out, outOffset, cols);
    }
}
