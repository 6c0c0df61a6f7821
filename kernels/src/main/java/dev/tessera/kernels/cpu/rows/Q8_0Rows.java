package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.B;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.L;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/** block_q8_0, 34 bytes per 32 values: f16 d, int8 qs[32]; value = d * qs[j]. */
public final class Q8_0Rows implements RowKernel {
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 34;

    @Override
    public float dot(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        // Two accumulators: the per-block FMA chain, not the loads, limits a single one.
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        int numBlocks = n / BLOCK, b = 0;
        for (; b + 1 < numBlocks; b += 2) {
            acc0 = block(w, rowOffset + (long) BLOCK_BYTES * b, x, xOffset + BLOCK * b, acc0);
            acc1 = block(w, rowOffset + (long) BLOCK_BYTES * (b + 1), x, xOffset + BLOCK * (b + 1), acc1);
        }
        if (b < numBlocks) acc0 = block(w, rowOffset + (long) BLOCK_BYTES * b, x, xOffset + BLOCK * b, acc0);
        return VectorSum.sum(acc0.add(acc1));
    }

    private static FloatVector block(MemorySegment w, long off, float[] x, int xb, FloatVector acc) {
        FloatVector sum = FloatVector.zero(F);
        for (int j = 0; j < BLOCK; j += L) {
            FloatVector q = (FloatVector) ByteVector.fromMemorySegment(B, w, off + 2 + j, LE).convertShape(VectorOperators.B2F, F, 0);
            sum = q.fma(FloatVector.fromArray(F, x, xb + j), sum);
        }
        return sum.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, off))), acc);
    }

    @Override
    public float dotScalar(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        float sum = 0f;
        long off = rowOffset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off));
            float blockSum = 0f;
            for (int j = 0; j < BLOCK; j++) blockSum += w.get(U8, off + 2 + j) * x[xOffset + b * BLOCK + j];
            sum += d * blockSum;
        }
        return sum;
    }

    @Override
    public void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        long off = offset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, off)));
            for (int j = 0; j < BLOCK; j += L)
                ((FloatVector) ByteVector.fromMemorySegment(B, w, off + 2 + j, LE).convertShape(VectorOperators.B2F, F, 0))
                        .mul(d).intoArray(out, outOffset + b * BLOCK + j);
        }
    }
}
