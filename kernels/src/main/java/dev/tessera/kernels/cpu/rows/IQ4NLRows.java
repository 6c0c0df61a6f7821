package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.L;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * block_iq4_nl, 18 bytes per 32 values: f16 d, u8 qs[16]. A 4-bit index picks one of 16 non-uniform levels
 * ({@link #LEVELS}): value j (j &lt; 16) is d * LEVELS[qs[j] &amp; 15], value j + 16 is d * LEVELS[qs[j] &gt;&gt; 4].
 * The levels are denser near zero, where most weights lie, than Q4_0's even steps.
 */
public final class IQ4NLRows implements RowKernel {
    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 18;
    /** ggml's kvalues_iq4nl. */
    static final byte[] LEVELS = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    private static final ByteVector TABLE = ByteVector.fromArray(B16, LEVELS, 0);

    @Override
    public float dot(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        FloatVector acc = FloatVector.zero(F);
        long off = rowOffset;
        for (int xb = xOffset, end = xOffset + n; xb < end; xb += BLOCK, off += BLOCK_BYTES)
            acc = levelsDot(w, off + 2, x, xb).fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, off))), acc);
        return VectorSum.sum(acc);
    }

    /**
     * Σ LEVELS[q] * x over the 32 values whose indices are the 16 bytes at {@code qs} (low nibbles then high), per lane:
     * the levels looked up with a byte shuffle (the 16 levels fill one 128-bit register).
     */
    static FloatVector levelsDot(MemorySegment w, long qs, float[] x, int xb) {
        ByteVector q = ByteVector.fromMemorySegment(B16, w, qs, LE);
        ByteVector lo = q.and((byte) 0x0f).selectFrom(TABLE), hi = Q4_0Rows.highNibbles(q).selectFrom(TABLE);
        FloatVector sum = FloatVector.zero(F);
        for (int part = 0; part < 16 / L; part++) {
            sum = ((FloatVector) lo.convertShape(VectorOperators.B2F, F, part)).fma(FloatVector.fromArray(F, x, xb + part * L), sum);
            sum = ((FloatVector) hi.convertShape(VectorOperators.B2F, F, part)).fma(FloatVector.fromArray(F, x, xb + 16 + part * L), sum);
        }
        return sum;
    }

    @Override
    public float dotScalar(MemorySegment w, long rowOffset, float[] x, int xOffset, int n) {
        float sum = 0f;
        long off = rowOffset;
        for (int b = 0; b < n / BLOCK; b++, off += BLOCK_BYTES) {
            float d = Float.float16ToFloat(w.get(I16, off));
            int xb = xOffset + b * BLOCK;
            for (int j = 0; j < 16; j++) {
                int q = w.get(U8, off + 2 + j) & 0xff;
                sum += d * LEVELS[q & 15] * x[xb + j] + d * LEVELS[q >> 4] * x[xb + 16 + j];
            }
        }
        return sum;
    }

    /** Vectorized: a batched decode dequantizes every row it multiplies. */
    @Override
    public void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        long off = offset;
        for (int ob = outOffset, end = outOffset + n; ob < end; ob += BLOCK, off += BLOCK_BYTES)
            levelsTimes(w, off + 2, Float.float16ToFloat(w.get(I16, off)), out, ob);
    }

    /** d * LEVELS[q] of the 32 values whose indices are the 16 bytes at {@code qs}, into out[ob..]. */
    static void levelsTimes(MemorySegment w, long qs, float d, float[] out, int ob) {
        ByteVector q = ByteVector.fromMemorySegment(B16, w, qs, LE);
        ByteVector lo = q.and((byte) 0x0f).selectFrom(TABLE), hi = Q4_0Rows.highNibbles(q).selectFrom(TABLE);
        FloatVector dv = FloatVector.broadcast(F, d);
        for (int part = 0; part < 16 / L; part++) {
            dv.mul((FloatVector) lo.convertShape(VectorOperators.B2F, F, part)).intoArray(out, ob + part * L);
            dv.mul((FloatVector) hi.convertShape(VectorOperators.B2F, F, part)).intoArray(out, ob + 16 + part * L);
        }
    }
}
