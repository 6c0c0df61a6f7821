package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.IQ4NLRows.LEVELS;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * block_iq4_xs, 136 bytes per 256 values: f16 d, u16 scales_h, u8 scales_l[4], u8 qs[128]. Sub-block j (32 values)
 * has the 6-bit scale ls = (scales_l[j / 2] &gt;&gt; 4 (j % 2) &amp; 15) | (scales_h &gt;&gt; 2j &amp; 3) &lt;&lt; 4 and
 * the factor dl = d * (ls - 32); its 16 bytes qs[16j..] index {@link IQ4NLRows#LEVELS} as an IQ4_NL block's do.
 */
public final class IQ4XSRows implements RowKernel {
    static final int BLOCK = 256;
    static final int BLOCK_BYTES = 136;
    private static final int QS = 8;

    /** The 6-bit scale ls (0..63) of sub-block j of the block at {@code off}. */
    static int scale(MemorySegment w, long off, int j) {
        int low = (w.get(U8, off + 4 + j / 2) & 0xff) >> 4 * (j & 1) & 15, high = (w.get(I16, off + 2) & 0xffff) >> 2 * j & 3;
        return low | high << 4;
    }

    /** d * (ls - 32) of sub-block j of the block at {@code off}, in ggml's order. */
    private static float subBlockScale(MemorySegment w, long off, float d, int j) {
        return d * (scale(w, off, j) - 32);
    }

    @Override
    public float dot(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        FloatVector acc = FloatVector.zero(F);
        long off = rowOffset;
        for (int xb = xOffset, end = xOffset + n; xb < end; xb += BLOCK, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off));
            for (int j = 0; j < 8; j++)
                acc = IQ4NLRows.levelsDot(w, off + QS + 16 * j, x, xb + 32 * j).fma(FloatVector.broadcast(F, subBlockScale(w, off, d, j)), acc);
        }
        return VectorSum.sum(acc);
    }

    @Override
    public float dotScalar(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        float sum = 0f;
        long off = rowOffset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off));
            for (int j = 0; j < 8; j++) {
                float dl = subBlockScale(w, off, d, j);
                int xb = xOffset + b * BLOCK + 32 * j;
                for (int l = 0; l < 16; l++) {
                    int q = w.get(U8, off + QS + 16 * j + l) & 0xff;
                    sum += dl * LEVELS[q & 15] * x[xb + l] + dl * LEVELS[q >> 4] * x[xb + 16 + l];
                }
            }
        }
        return sum;
    }

    /** Vectorized: a batched decode dequantizes every row it multiplies. */
    @Override
    public void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        long off = offset;
        for (int ob = outOffset, end = outOffset + n; ob < end; ob += BLOCK, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off));
            for (int j = 0; j < 8; j++) IQ4NLRows.levelsTimes(w, off + QS + 16 * j, subBlockScale(w, off, d, j), out, ob + 32 * j);
        }
    }
}
