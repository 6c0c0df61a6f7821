package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;

/** Rows of little-endian IEEE floats, 4 bytes each. */
public final class F32Rows implements RowKernel {

    @Override
    public float dot(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        // Two accumulators hide the FMA latency; F32 rows are the one format not bound by decoding.
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int step = 2 * F.length();
        int i = 0;
        for (int bound = n - n % step; i < bound; i += step) {
            acc0 = FloatVector.fromMemorySegment(F, w, rowOffset + 4L * i, LE).fma(FloatVector.fromArray(F, x, xOffset + i), acc0);
            acc1 = FloatVector.fromMemorySegment(F, w, rowOffset + 4L * (i + F.length()), LE)
                    .fma(FloatVector.fromArray(F, x, xOffset + i + F.length()), acc1);
        }
        float sum = VectorSum.sum(acc0.add(acc1));
        for (; i < n; i++) sum += w.get(F32, rowOffset + 4L * i) * x[xOffset + i];
        return sum;
    }

    @Override
    public float dotScalar(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        float sum = 0f;
        for (int i = 0; i < n; i++) sum += w.get(F32, rowOffset + 4L * i) * x[xOffset + i];
        return sum;
    }

    @Override
    public void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        MemorySegment.copy(w, F32, offset, out, outOffset, n);
    }
}
