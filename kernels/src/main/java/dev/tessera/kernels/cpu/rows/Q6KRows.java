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

/**
 * block_q6_K, 210 bytes per 256 values: u8 ql[128], u8 qh[64], i8 scales[16], f16 d. Each 128-value half h uses
 * ql[64h ..], qh[32h ..] and scales[8h ..]; for l &lt; 32 its four values l, l+32, l+64, l+96 take the low nibble of
 * ql[l], ql[l+32], then the high nibbles, with bits 0-1, 2-3, 4-5, 6-7 of qh[l] on top, minus 32. Every 16 values
 * share one scale: value = d * scales[i / 16] * q.
 */
public final class Q6KRows implements RowKernel {
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 210;

    @Override
    public float dot(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        FloatVector acc = FloatVector.zero(F);
        long off = rowOffset;
        for (int xb = xOffset, end = xOffset + n; xb < end; xb += BLOCK, off += BLOCK_BYTES) {
            FloatVector blockSum = FloatVector.zero(F);
            for (int h = 0; h < 2; h++) {
                long ql = off + 64 * h;
                long qh = off + 128 + 32 * h;
                long sc = off + 192 + 8 * h;
                int xh = xb + 128 * h;
                for (int l = 0; l < 32; l += L) {
                    ByteVector a = ByteVector.fromMemorySegment(B, w, ql + l, LE);
                    ByteVector b = ByteVector.fromMemorySegment(B, w, ql + 32 + l, LE);
                    ByteVector hb = ByteVector.fromMemorySegment(B, w, qh + l, LE);
                    ByteVector q1 = a.and((byte) 0x0f).or(hb.and((byte) 3).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32);
                    ByteVector q2 = b.and((byte) 0x0f).or(hb.and((byte) 0x0c).lanewise(VectorOperators.LSHL, 2)).sub((byte) 32);
                    ByteVector q3 = a.lanewise(VectorOperators.LSHR, 4).or(hb.and((byte) 0x30)).sub((byte) 32);
                    ByteVector q4 = b.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 6).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32);
                    int is = l / 16;
                    FloatVector p1 = ((FloatVector) q1.convertShape(VectorOperators.B2F, F, 0)).mul(FloatVector.fromArray(F, x, xh + l));
                    FloatVector p2 = ((FloatVector) q2.convertShape(VectorOperators.B2F, F, 0)).mul(FloatVector.fromArray(F, x, xh + 32 + l));
                    FloatVector p3 = ((FloatVector) q3.convertShape(VectorOperators.B2F, F, 0)).mul(FloatVector.fromArray(F, x, xh + 64 + l));
                    FloatVector p4 = ((FloatVector) q4.convertShape(VectorOperators.B2F, F, 0)).mul(FloatVector.fromArray(F, x, xh + 96 + l));
                    blockSum = p1.fma(FloatVector.broadcast(F, w.get(U8, sc + is)), blockSum);
                    blockSum = p2.fma(FloatVector.broadcast(F, w.get(U8, sc + is + 2)), blockSum);
                    blockSum = p3.fma(FloatVector.broadcast(F, w.get(U8, sc + is + 4)), blockSum);
                    blockSum = p4.fma(FloatVector.broadcast(F, w.get(U8, sc + is + 6)), blockSum);
                }
            }
            acc = blockSum.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, off + 208))), acc);
        }
        return VectorSum.sum(acc);
    }

    @Override
    public float dotScalar(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        float sum = 0f;
        long off = rowOffset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off + 208));
            for (int h = 0; h < 2; h++) {
                int xh = xOffset + b * BLOCK + 128 * h;
                for (int l = 0; l < 32; l++) {
                    for (int k = 0; k < 4; k++) sum += value(w, off, d, h, l, k) * x[xh + 32 * k + l];
                }
            }
        }
        return sum;
    }

    @Override
    public void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        long off = offset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off + 208));
            for (int h = 0; h < 2; h++) {
                int oh = outOffset + b * BLOCK + 128 * h;
                for (int l = 0; l < 32; l++) {
                    for (int k = 0; k < 4; k++) out[oh + 32 * k + l] = value(w, off, d, h, l, k);
                }
            }
        }
    }

    /** Value 128h + 32k + l of the block at {@code off}, whose f16 d is already decoded. */
    private static float value(MemorySegment w, long off, float d, int h, int l, int k) {
        int ql = w.get(U8, off + 64 * h + l + (k & 1) * 32) & 0xff;
        int qh = w.get(U8, off + 128 + 32 * h + l) & 0xff;
        int q = ((k < 2 ? ql & 0x0f : ql >> 4) | ((qh >> (2 * k)) & 3) << 4) - 32;
        int scale = w.get(U8, off + 192 + 8 * h + l / 16 + 2 * k);
        return d * scale * q;
    }
}
