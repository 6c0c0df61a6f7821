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
 * block_q3_K, 110 bytes per 256 values: u8 hmask[32], u8 qs[64], u8 scales[12] (sixteen 6-bit scales, offset by 32),
 * f16 d. Sub-block s (16 values) of 128-value half c = s / 8 takes bits 2j..2j+1 (j = s % 8 / 2) of qs[32c + 16 (s %
 * 2) + l] as its low bits, and bit 4c + j of hmask[16 (s % 2) + l] as the high one, read inverted: the value is d *
 * (scale - 32) * (low - 4 + 4 high).
 * <p>
 * As in {@link Q2KRows}, the vector dot masks both fields in place and scales them back by exact powers of two
 * instead of shifting by a loop variable.
 */
public final class Q3KRows implements RowKernel {
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 110;
    private static final int HMASK = 0, QS = 32, SCALES = 96, D = 108;

    @Override
    public float dot(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        FloatVector acc = FloatVector.zero(F);
        long off = rowOffset;
        for (int xb = xOffset, end = xOffset + n; xb < end; xb += BLOCK, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off + D));
            for (int s = 0; s < 16; s++) {
                int c = s / 8, j = s % 8 / 2, half = s % 2, high = 4 * c + j;
                float lowUnit = 1f / (1 << 2 * j), highUnit = 4f / (1 << high);
                FloatVector qx = FloatVector.zero(F);
                for (int l = 0; l < 16; l += L) {
                    IntVector lo = (IntVector) ByteVector.fromMemorySegment(B, w, off + QS + 32 * c + 16 * half + l, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    IntVector hi = (IntVector) ByteVector.fromMemorySegment(B, w, off + HMASK + 16 * half + l, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    FloatVector q = ((FloatVector) lo.and(3 << 2 * j).convert(VectorOperators.I2F, 0)).mul(lowUnit)
                            .add(((FloatVector) hi.and(1 << high).convert(VectorOperators.I2F, 0)).mul(highUnit)).sub(4f);
                    qx = q.fma(FloatVector.fromArray(F, x, xb + 16 * s + l), qx);
                }
                acc = qx.fma(FloatVector.broadcast(F, d * (scale(w, off, s) - 32)), acc);
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

    /**
     * The 6-bit scale of sub-block s (0..63, before the offset of 32): the low 4 bits are a nibble of bytes 0..7 (low
     * nibbles for s < 8), the top 2 bits a pair of byte 8 + s % 4.
     */
    static int scale(MemorySegment w, long off, int s) {
        int k = s % 4, group = s / 4;
        int nibbles = w.get(U8, off + SCALES + k + 4 * (group % 2)) & 0xff;
        int low = group < 2 ? nibbles & 15 : nibbles >> 4;
        return low | ((w.get(U8, off + SCALES + 8 + k) & 0xff) >> 2 * group & 3) << 4;
    }

    /** Value i (0..255) of the block at {@code off}, in ggml's arithmetic: (d * (scale - 32)) * q. */
    private static float value(MemorySegment w, long off, int i) {
        float dl = d(w, off) * (scale(w, off, i / 16) - 32);
        return dl * (low(w, off, i) - (high(w, off, i) == 0 ? 4 : 0));
    }

    static float d(MemorySegment w, long off) {
        return Float.float16ToFloat(w.get(I16, off + D));
    }

    /** The low two bits of value i (0..255) of the block at {@code off}. */
    static int low(MemorySegment w, long off, int i) {
        int s = i / 16;
        return (w.get(U8, off + QS + 32 * (s / 8) + 16 * (s % 2) + i % 16) & 0xff) >> 2 * (s % 8 / 2) & 3;
    }

    /** The high bit of value i: 0 means the value is its low bits minus 4. */
    static int high(MemorySegment w, long off, int i) {
        int s = i / 16;
        return (w.get(U8, off + HMASK + 16 * (s % 2) + i % 16) & 0xff) >> 4 * (s / 8) + s % 8 / 2 & 1;
    }
}
