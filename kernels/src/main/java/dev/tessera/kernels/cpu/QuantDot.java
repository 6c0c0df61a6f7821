package dev.tessera.kernels.cpu;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The decode-critical dot products and dequantizers (F32, F16, Q8_0, Q4_0), written for 16-lane float vectors:
 * a 32-element quant block is exactly two vectors. Rows are little-endian GGUF bytes at byte offset {@code off}.
 * Each vector kernel has a scalar twin ({@code *Scalar}) that tests compare against.
 */
public final class QuantDot {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128;
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** True when this CPU's preferred float vector has 16 lanes, which these kernels assume. */
    public static final boolean SUPPORTED = FloatVector.SPECIES_PREFERRED.length() >= 16;

    private QuantDot() {}

    public static float dotF32(MemorySegment w, long off, float[] x, int xo, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i < F.loopBound(n); i += F.length())
            acc = FloatVector.fromMemorySegment(F, w, off + 4L * i, LE).fma(FloatVector.fromArray(F, x, xo + i), acc);
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) sum += w.get(F32, off + 4L * i) * x[xo + i];
        return sum;
    }

    public static float dotQ8_0(MemorySegment w, long off, float[] x, int xo, int n) {
        // Two accumulators: the per-block FMA chain, not the loads, limits one accumulator.
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        int nb = n / 32, b = 0;
        for (; b + 1 < nb; b += 2) {
            acc0 = blockQ8_0(w, off + 34L * b, x, xo + 32 * b, acc0);
            acc1 = blockQ8_0(w, off + 34L * (b + 1), x, xo + 32 * (b + 1), acc1);
        }
        if (b < nb) acc0 = blockQ8_0(w, off + 34L * b, x, xo + 32 * b, acc0);
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    private static FloatVector blockQ8_0(MemorySegment w, long bo, float[] x, int xi, FloatVector acc) {
        FloatVector q0 = (FloatVector) ByteVector.fromMemorySegment(B16, w, bo + 2, LE).convertShape(VectorOperators.B2F, F, 0);
        FloatVector q1 = (FloatVector) ByteVector.fromMemorySegment(B16, w, bo + 18, LE).convertShape(VectorOperators.B2F, F, 0);
        FloatVector s = q1.fma(FloatVector.fromArray(F, x, xi + 16), q0.mul(FloatVector.fromArray(F, x, xi)));
        return s.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, bo))), acc);
    }

    public static float dotQ4_0(MemorySegment w, long off, float[] x, int xo, int n) {
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        int nb = n / 32, b = 0;
        for (; b + 1 < nb; b += 2) {
            acc0 = blockQ4_0(w, off + 18L * b, x, xo + 32 * b, acc0);
            acc1 = blockQ4_0(w, off + 18L * (b + 1), x, xo + 32 * (b + 1), acc1);
        }
        if (b < nb) acc0 = blockQ4_0(w, off + 18L * b, x, xo + 32 * b, acc0);
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    private static FloatVector blockQ4_0(MemorySegment w, long bo, float[] x, int xi, FloatVector acc) {
        ByteVector q = ByteVector.fromMemorySegment(B16, w, bo + 2, LE);
        // low nibbles are elements 0..15 of the block, high nibbles 16..31; both stored +8
        FloatVector lo = (FloatVector) q.and((byte) 0x0F).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
        FloatVector hi = (FloatVector) highNibbles(q).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
        FloatVector s = hi.fma(FloatVector.fromArray(F, x, xi + 16), lo.mul(FloatVector.fromArray(F, x, xi)));
        return s.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, bo))), acc);
    }

    /**
     * q >>> 4 per byte. x86 has no byte shift, so a byte-lane LSHR compiles to a widen-shift-narrow sequence;
     * shifting 16-bit lanes and masking gives the same nibbles in two instructions.
     */
    static ByteVector highNibbles(ByteVector q) {
        return q.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 4).reinterpretAsBytes().and((byte) 0x0F);
    }

    /** Dot of two F32 arrays (used after dequantizing a row once for many tokens). */
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i < F.loopBound(n); i += F.length())
            acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) sum += a[ao + i] * b[bo + i];
        return sum;
    }

    public static void dequantizeF32(MemorySegment w, long off, float[] out, int oo, int n) {
        MemorySegment.copy(w, F32, off, out, oo, n);
    }

    public static void dequantizeF16(MemorySegment w, long off, float[] out, int oo, int n) {
        for (int i = 0; i < n; i++) out[oo + i] = Float.float16ToFloat(w.get(I16, off + 2L * i));
    }

    public static void dequantizeQ8_0(MemorySegment w, long off, float[] out, int oo, int n) {
        for (int b = 0; b < n / 32; b++) {
            long bo = off + 34L * b;
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, bo)));
            ((FloatVector) ByteVector.fromMemorySegment(B16, w, bo + 2, LE).convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(out, oo + 32 * b);
            ((FloatVector) ByteVector.fromMemorySegment(B16, w, bo + 18, LE).convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(out, oo + 32 * b + 16);
        }
    }

    public static void dequantizeQ4_0(MemorySegment w, long off, float[] out, int oo, int n) {
        for (int b = 0; b < n / 32; b++) {
            long bo = off + 18L * b;
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(w.get(I16, bo)));
            ByteVector q = ByteVector.fromMemorySegment(B16, w, bo + 2, LE);
            ((FloatVector) q.and((byte) 0x0F).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(out, oo + 32 * b);
            ((FloatVector) highNibbles(q).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(out, oo + 32 * b + 16);
        }
    }

    public static float dotQ8_0Scalar(MemorySegment w, long off, float[] x, int xo, int n) {
        float sum = 0;
        for (int b = 0; b < n / 32; b++) {
            long bo = off + 34L * b;
            float s = 0;
            for (int i = 0; i < 32; i++) s += w.get(ValueLayout.JAVA_BYTE, bo + 2 + i) * x[xo + 32 * b + i];
            sum += s * Float.float16ToFloat(w.get(I16, bo));
        }
        return sum;
    }

    public static float dotQ4_0Scalar(MemorySegment w, long off, float[] x, int xo, int n) {
        float sum = 0;
        for (int b = 0; b < n / 32; b++) {
            long bo = off + 18L * b;
            float s = 0;
            for (int i = 0; i < 16; i++) {
                int q = w.get(ValueLayout.JAVA_BYTE, bo + 2 + i) & 0xFF;
                s += ((q & 0x0F) - 8) * x[xo + 32 * b + i] + ((q >>> 4) - 8) * x[xo + 32 * b + 16 + i];
            }
            sum += s * Float.float16ToFloat(w.get(I16, bo));
        }
        return sum;
    }
}
