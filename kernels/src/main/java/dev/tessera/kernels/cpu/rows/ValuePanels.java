package dev.tessera.kernels.cpu.rows;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F32;

/**
 * A K-quant panel kernel whose many-token matmuls go through its batched dots or its own integer GEMM, so {@link #unpack}
 * is off the matmul's path: unpacking and row dequantizing (embedding lookups) read one value at a time through
 * {@link #value}, exactly as the row kernel computes it.
 */
abstract class ValuePanels extends SuperBlockPanels {
    ValuePanels(int panelBlockBytes) {
        super(panelBlockBytes);
    }

    /** Row i's value at column k of the panel at {@code panelOffset}, with the row kernel's arithmetic. */
    abstract float value(MemorySegment w, long panelOffset, int i, int k);

    @Override
    public final void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0) {
        for (int k = k0; k < k0 + kn; k++)
            for (int i = 0; i < ROWS; i++)
                packed.setAtIndex(F32, (long) (k - k0) * stride + col0 + i, value(w, panelOffset, i, k));
    }

    @Override
    public final void dequantizeRow(MemorySegment w, long panelOffset, int i, int cols, float[] out, int outOffset) {
        for (int k = 0; k < cols; k++) out[outOffset + k] = value(w, panelOffset, i, k);
    }
}
