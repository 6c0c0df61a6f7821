package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.Q4KRows.min;
import static dev.tessera.kernels.cpu.rows.Q4KRows.scale;
import static dev.tessera.kernels.cpu.rows.VectorLanes.B;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I64;
import static dev.tessera.kernels.cpu.rows.VectorLanes.L;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * block_q5_K, 176 bytes per 256 values: f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]. Like Q4_K, with a
 * fifth bit per value: in 64-value chunk c, value l takes bit 2c of qh[l] and value 32 + l takes bit 2c + 1.
 */
public final class Q5KRows implements RowKernel {
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 176;

    @Override
    public float dot(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        FloatVector acc = FloatVector.zero(F);
        long off = rowOffset;
        for (int xb = xOffset, end = xOffset + n; xb < end; xb += BLOCK, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off));
            float dmin = Float.float16ToFloat(w.get(I16, off + 2));
            long scalesLo = w.get(I64, off + 4);
            int scalesHi = w.get(I32, off + 12);
            for (int c = 0; c < 4; c++) {
                FloatVector qx0 = FloatVector.zero(F), qx1 = FloatVector.zero(F);
                FloatVector xs0 = FloatVector.zero(F), xs1 = FloatVector.zero(F);
                int xc = xb + 64 * c;
                for (int l = 0; l < 32; l += L) {
                    ByteVector q = ByteVector.fromMemorySegment(B, w, off + 48 + 32 * c + l, LE);
                    ByteVector qh = ByteVector.fromMemorySegment(B, w, off + 16 + l, LE);
                    ByteVector h0 = qh.lanewise(VectorOperators.LSHR, 2 * c).and((byte) 1).lanewise(VectorOperators.LSHL, 4);
                    ByteVector h1 = qh.lanewise(VectorOperators.LSHR, 2 * c + 1).and((byte) 1).lanewise(VectorOperators.LSHL, 4);
                    FloatVector lo = (FloatVector) q.and((byte) 0x0f).or(h0).convertShape(VectorOperators.B2F, F, 0);
                    FloatVector hi = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).or(h1).convertShape(VectorOperators.B2F, F, 0);
                    FloatVector x0 = FloatVector.fromArray(F, x, xc + l);
                    FloatVector x1 = FloatVector.fromArray(F, x, xc + 32 + l);
                    qx0 = lo.fma(x0, qx0);
                    qx1 = hi.fma(x1, qx1);
                    xs0 = xs0.add(x0);
                    xs1 = xs1.add(x1);
                }
                acc = qx0.fma(FloatVector.broadcast(F, d * scale(scalesLo, scalesHi, 2 * c)), acc);
                acc = qx1.fma(FloatVector.broadcast(F, d * scale(scalesLo, scalesHi, 2 * c + 1)), acc);
                acc = xs0.fma(FloatVector.broadcast(F, -dmin * min(scalesLo, scalesHi, 2 * c)), acc);
                acc = xs1.fma(FloatVector.broadcast(F, -dmin * min(scalesLo, scalesHi, 2 * c + 1)), acc);
            }
        }
        return VectorSum.sum(acc);
    }

    @Override
    public float dotScalar(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        float sum = 0f;
        long off = rowOffset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off));
            float dmin = Float.float16ToFloat(w.get(I16, off + 2));
            for (int c = 0; c < 4; c++) {
                float d1 = d * scale(w, off + 4, 2 * c), m1 = dmin * min(w, off + 4, 2 * c);
                float d2 = d * scale(w, off + 4, 2 * c + 1), m2 = dmin * min(w, off + 4, 2 * c + 1);
                int xc = xOffset + b * BLOCK + 64 * c;
                for (int l = 0; l < 32; l++) {
                    int q = w.get(U8, off + 48 + 32 * c + l) & 0xff;
                    int h = w.get(U8, off + 16 + l) & 0xff;
                    int q0 = (q & 0x0f) | ((h >> (2 * c)) & 1) << 4;
                    int q1 = (q >> 4) | ((h >> (2 * c + 1)) & 1) << 4;
                    sum += (d1 * q0 - m1) * x[xc + l] + (d2 * q1 - m2) * x[xc + 32 + l];
                }
            }
        }
        return sum;
    }

    @Override
    public void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        long off = offset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off));
            float dmin = Float.float16ToFloat(w.get(I16, off + 2));
            for (int c = 0; c < 4; c++) {
                float d1 = d * scale(w, off + 4, 2 * c), m1 = dmin * min(w, off + 4, 2 * c);
                float d2 = d * scale(w, off + 4, 2 * c + 1), m2 = dmin * min(w, off + 4, 2 * c + 1);
                int oc = outOffset + b * BLOCK + 64 * c;
                for (int l = 0; l < 32; l++) {
                    int q = w.get(U8, off + 48 + 32 * c + l) & 0xff;
                    int h = w.get(U8, off + 16 + l) & 0xff;
                    out[oc + l] = d1 * ((q & 0x0f) | ((h >> (2 * c)) & 1) << 4) - m1;
                    out[oc + 32 + l] = d2 * ((q >> 4) | ((h >> (2 * c + 1)) & 1) << 4) - m2;
                }
            }
        }
    }
}
