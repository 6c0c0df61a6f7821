package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.B;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.L;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * block_q2_K, 84 bytes per 256 values: u8 scales[16] (low nibble a scale, high nibble a min), u8 qs[64], f16 d, f16
 * dmin. Sub-block s (16 values, 0..15) of 128-value half c = s / 8 takes bits 2j..2j+1 (j = s % 8 / 2) of qs[32c +
 * 16 (s % 2) + l]; its value is d * scale * q - dmin * min.
 * <p>
 * The vector dot masks the 2-bit field in place, (q << 2j), and folds 4^-j into the sub-block's scale (an exact
 * power of two): the Vector API compiles a shift by a loop variable into no single instruction.
 */
public final class Q2KRows implements RowKernel {
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 84;
    private static final int QS = 16, D = 80, DMIN = 82;

    @Override
    public float dot(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        FloatVector acc = FloatVector.zero(F);
        long off = rowOffset;
        for (int xb = xOffset, end = xOffset + n; xb < end; xb += BLOCK, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off + D)), dmin = Float.float16ToFloat(w.get(I16, off + DMIN));
            for (int s = 0; s < 16; s++) {
                int sc = w.get(U8, off + s) & 0xff, j = s % 8 / 2;
                long q = off + QS + 32 * (s / 8) + 16 * (s % 2);
                FloatVector qx = FloatVector.zero(F), xs = FloatVector.zero(F);
                for (int l = 0; l < 16; l += L) {
                    FloatVector qv = (FloatVector) ((IntVector) ByteVector.fromMemorySegment(B, w, q + l, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).and(3 << 2 * j).convert(VectorOperators.I2F, 0);
                    FloatVector xv = FloatVector.fromArray(F, x, xb + 16 * s + l);
                    qx = qv.fma(xv, qx);
                    xs = xs.add(xv);
                }
                acc = qx.fma(FloatVector.broadcast(F, d * (sc & 15) / (1 << 2 * j)), acc);
                acc = xs.fma(FloatVector.broadcast(F, -(dmin * (sc >> 4))), acc);
            }
        }
        return VectorSum.sum(acc);
    }

    @Override
    public float dotScalar(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        float sum = 0f;
        long off = rowOffset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES)
            for (int i = 0; i < BLOCK; i++) sum += value(w, off, i) * x[xOffset + b * BLOCK + i];
        return sum;
    }

    @Override
    public void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        long off = offset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES)
            for (int i = 0; i < BLOCK; i++) out[outOffset + b * BLOCK + i] = value(w, off, i);
    }

    /** Value i (0..255) of the block at {@code off}, in ggml's arithmetic: (d * scale) * q - dmin * min. */
    private static float value(MemorySegment w, long off, int i) {
        int sc = scaleAndMin(w, off, i / 16);
        return d(w, off) * (sc & 15) * q(w, off, i) - dmin(w, off) * (sc >> 4);
    }

    static float d(MemorySegment w, long off) {
        return Float.float16ToFloat(w.get(I16, off + D));
    }

    static float dmin(MemorySegment w, long off) {
        return Float.float16ToFloat(w.get(I16, off + DMIN));
    }

    /** Sub-block s's byte: its scale in the low nibble, its min in the high one. */
    static int scaleAndMin(MemorySegment w, long off, int s) {
        return w.get(U8, off + s) & 0xff;
    }

    /** The 2-bit quant of value i (0..255). */
    static int q(MemorySegment w, long off, int i) {
        int s = i / 16;
        return (w.get(U8, off + QS + 32 * (s / 8) + 16 * (s % 2) + i % 16) & 0xff) >> 2 * (s % 8 / 2) & 3;
    }
}
