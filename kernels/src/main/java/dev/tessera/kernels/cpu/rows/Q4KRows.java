package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.B;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I64;
import static dev.tessera.kernels.cpu.rows.VectorLanes.L;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * block_q4_K, 144 bytes per 256 values: f16 d, f16 dmin, u8 scales[12], u8 qs[128]. Eight sub-blocks of 32 each
 * have a 6-bit scale sc and min m packed in scales[] (ggml's get_scale_min_k4). Value = d*sc * q - dmin*m, where
 * sub-blocks 2c and 2c+1 take the low and high nibbles of qs[32c .. 32c+32).
 */
public final class Q4KRows implements RowKernel {
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 144;

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
                    ByteVector q = ByteVector.fromMemorySegment(B, w, off + 16 + 32 * c + l, LE);
                    FloatVector lo = (FloatVector) q.and((byte) 0x0f).convertShape(VectorOperators.B2F, F, 0);
                    FloatVector hi = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.B2F, F, 0);
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
                    int q = w.get(U8, off + 16 + 32 * c + l) & 0xff;
                    sum += (d1 * (q & 0x0f) - m1) * x[xc + l] + (d2 * (q >> 4) - m2) * x[xc + 32 + l];
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
                    int q = w.get(U8, off + 16 + 32 * c + l) & 0xff;
                    out[oc + l] = d1 * (q & 0x0f) - m1;
                    out[oc + 32 + l] = d2 * (q >> 4) - m2;
                }
            }
        }
    }

    /** The 6-bit scale of sub-block j (0..7) from the 12 packed bytes at {@code scales} (ggml get_scale_min_k4). */
    static int scale(MemorySegment w, long scales, int j) {
        if (j < 4) return w.get(U8, scales + j) & 63;
        return (w.get(U8, scales + j + 4) & 0x0f) | ((w.get(U8, scales + j - 4) & 0xff) >> 6) << 4;
    }

    /** Byte k (0..11) of the packed scales, given as their first 8 bytes and last 4 bytes (little-endian). */
    private static int packedByte(long lo, int hi, int k) {
        return (int) (k < 8 ? lo >>> (8 * k) : hi >>> (8 * (k - 8))) & 0xff;
    }

    /** {@link #scale(MemorySegment, long, int)} on the 12 packed bytes already loaded into registers. */
    static int scale(long lo, int hi, int j) {
        if (j < 4) return packedByte(lo, hi, j) & 63;
        return (packedByte(lo, hi, j + 4) & 0x0f) | (packedByte(lo, hi, j - 4) >> 6) << 4;
    }

    /** {@link #min(MemorySegment, long, int)} on the 12 packed bytes already loaded into registers. */
    static int min(long lo, int hi, int j) {
        if (j < 4) return packedByte(lo, hi, j + 4) & 63;
        return (packedByte(lo, hi, j + 4) >> 4) | (packedByte(lo, hi, j) >> 6) << 4;
    }

    /** The 6-bit min of sub-block j (0..7) from the 12 packed bytes at {@code scales}. */
    static int min(MemorySegment w, long scales, int j) {
        if (j < 4) return w.get(U8, scales + j + 4) & 63;
        return ((w.get(U8, scales + j + 4) & 0xff) >> 4) | ((w.get(U8, scales + j) & 0xff) >> 6) << 4;
    }
}
