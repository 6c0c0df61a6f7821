package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.B;
import static dev.tessera.kernels.cpu.rows.VectorLanes.BIT_INDEX;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.L;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * block_q5_1, 24 bytes per 32 values: f16 d, f16 m, u32 qh, u8 qs[16]. Value j (j &lt; 16) is
 * d * ((qs[j] &amp; 15) | bit j of qh &lt;&lt; 4) + m; value j + 16 uses qs[j] &gt;&gt; 4 and bit j + 16.
 */
public final class Q5_1Rows implements RowKernel {
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 24;

    @Override
    public float dot(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        FloatVector acc = FloatVector.zero(F);
        long off = rowOffset;
        for (int xb = xOffset, end = xOffset + n; xb < end; xb += BLOCK, off += BLOCK_BYTES) {
            IntVector qh = IntVector.broadcast(I, w.get(I32, off + 4));
            FloatVector qx = FloatVector.zero(F);
            FloatVector xs = FloatVector.zero(F);
            for (int j = 0; j < 16; j += L) {
                ByteVector qs = ByteVector.fromMemorySegment(B, w, off + 8 + j, LE);
                IntVector lo = (IntVector) qs.and((byte) 0x0f).convertShape(VectorOperators.B2I, I, 0);
                IntVector hi = (IntVector) qs.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.B2I, I, 0);
                IntVector hbLo = qh.lanewise(VectorOperators.LSHR, IntVector.fromArray(I, BIT_INDEX, j)).lanewise(VectorOperators.LSHL, 4).and(0x10);
                IntVector hbHi = qh.lanewise(VectorOperators.LSHR, IntVector.fromArray(I, BIT_INDEX, 16 + j)).lanewise(VectorOperators.LSHL, 4).and(0x10);
                FloatVector q0 = (FloatVector) lo.or(hbLo).convert(VectorOperators.I2F, 0);
                FloatVector q1 = (FloatVector) hi.or(hbHi).convert(VectorOperators.I2F, 0);
                FloatVector x0 = FloatVector.fromArray(F, x, xb + j);
                FloatVector x1 = FloatVector.fromArray(F, x, xb + 16 + j);
                qx = q0.fma(x0, qx);
                qx = q1.fma(x1, qx);
                xs = xs.add(x0).add(x1);
            }
            acc = qx.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, off))), acc);
            acc = xs.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, off + 2))), acc);
        }
        return VectorSum.sum(acc);
    }

    @Override
    public float dotScalar(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        float sum = 0f;
        long off = rowOffset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off));
            float m = Float.float16ToFloat(w.get(I16, off + 2));
            int qh = w.get(I32, off + 4);
            int xb = xOffset + b * BLOCK;
            for (int j = 0; j < 16; j++) {
                int q = w.get(U8, off + 8 + j) & 0xff;
                int q0 = (q & 0x0f) | ((qh >>> j) & 1) << 4;
                int q1 = (q >> 4) | ((qh >>> (j + 16)) & 1) << 4;
                sum += (d * q0 + m) * x[xb + j] + (d * q1 + m) * x[xb + 16 + j];
            }
        }
        return sum;
    }

    /** Vectorized: a batched decode dequantizes every row it multiplies, so a scalar loop here cost 8x the dots. */
    @Override
    public void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        long off = offset;
        for (int ob = outOffset, end = outOffset + n; ob < end; ob += BLOCK, off += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, off)));
            FloatVector m = FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, off + 2)));
            IntVector qh = IntVector.broadcast(I, w.get(I32, off + 4));
            for (int j = 0; j < 16; j += L) {
                ByteVector qs = ByteVector.fromMemorySegment(B, w, off + 8 + j, LE);
                IntVector lo = (IntVector) qs.and((byte) 0x0f).convertShape(VectorOperators.B2I, I, 0);
                IntVector hi = (IntVector) Q4_0Rows.highNibbles(qs).convertShape(VectorOperators.B2I, I, 0);
                IntVector hbLo = qh.lanewise(VectorOperators.LSHR, IntVector.fromArray(I, BIT_INDEX, j)).lanewise(VectorOperators.LSHL, 4).and(0x10);
                IntVector hbHi = qh.lanewise(VectorOperators.LSHR, IntVector.fromArray(I, BIT_INDEX, 16 + j)).lanewise(VectorOperators.LSHL, 4).and(0x10);
                ((FloatVector) lo.or(hbLo).convert(VectorOperators.I2F, 0)).mul(d).add(m).intoArray(out, ob + j);
                ((FloatVector) hi.or(hbHi).convert(VectorOperators.I2F, 0)).mul(d).add(m).intoArray(out, ob + 16 + j);
            }
        }
    }
}
