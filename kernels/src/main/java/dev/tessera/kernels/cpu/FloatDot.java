package dev.tessera.kernels.cpu;

import dev.tessera.kernels.cpu.rows.VectorSum;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/** Dot product of two F32 arrays: attention scores and rows already dequantized for many tokens. */
final class FloatDot {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private FloatDot() {}

    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i < F.loopBound(n); i += F.length())
            acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
        float sum = VectorSum.sum(acc);
        for (; i < n; i++) sum += a[ao + i] * b[bo + i];
        return sum;
    }

    /**
     * out[t][row] = w · x[t] for tokens t..t+3: one weight load feeds four FMAs into four independent accumulators,
     * so neither the load ports nor the FMA latency chain of a single dot limit it.
     */
    static void dot4(float[] w, float[] x, int t, int cols, float[] out, int outWidth, int row) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int x0 = t * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        int i = 0;
        for (; i < F.loopBound(cols); i += F.length()) {
            FloatVector wv = FloatVector.fromArray(F, w, i);
            a0 = wv.fma(FloatVector.fromArray(F, x, x0 + i), a0);
            a1 = wv.fma(FloatVector.fromArray(F, x, x1 + i), a1);
            a2 = wv.fma(FloatVector.fromArray(F, x, x2 + i), a2);
            a3 = wv.fma(FloatVector.fromArray(F, x, x3 + i), a3);
        }
        float s0 = VectorSum.sum(a0), s1 = VectorSum.sum(a1);
        float s2 = VectorSum.sum(a2), s3 = VectorSum.sum(a3);
        for (; i < cols; i++) {
            s0 += w[i] * x[x0 + i]; s1 += w[i] * x[x1 + i]; s2 += w[i] * x[x2 + i]; s3 += w[i] * x[x3 + i];
        }
        out[t * outWidth + row] = s0;
        out[(t + 1) * outWidth + row] = s1;
        out[(t + 2) * outWidth + row] = s2;
        out[(t + 3) * outWidth + row] = s3;
    }

    /** out[t..t+3][row..row+3] = w[row..row+3] · x[t..t+3]; w holds four rows of {@code cols}. */
    static void dot4x4(float[] w, float[] x, int t, int cols, float[] out, int outWidth, int row) {
        FloatVector z = FloatVector.zero(F);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
        FloatVector a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
        int x0 = t * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        int w1 = cols, w2 = 2 * cols, w3 = 3 * cols;
        int i = 0;
        for (; i < F.loopBound(cols); i += F.length()) {
            FloatVector v0 = FloatVector.fromArray(F, w, i), v1 = FloatVector.fromArray(F, w, w1 + i);
            FloatVector v2 = FloatVector.fromArray(F, w, w2 + i), v3 = FloatVector.fromArray(F, w, w3 + i);
            FloatVector xv = FloatVector.fromArray(F, x, x0 + i);
            a00 = v0.fma(xv, a00); a10 = v1.fma(xv, a10); a20 = v2.fma(xv, a20); a30 = v3.fma(xv, a30);
            xv = FloatVector.fromArray(F, x, x1 + i);
            a01 = v0.fma(xv, a01); a11 = v1.fma(xv, a11); a21 = v2.fma(xv, a21); a31 = v3.fma(xv, a31);
            xv = FloatVector.fromArray(F, x, x2 + i);
            a02 = v0.fma(xv, a02); a12 = v1.fma(xv, a12); a22 = v2.fma(xv, a22); a32 = v3.fma(xv, a32);
            xv = FloatVector.fromArray(F, x, x3 + i);
            a03 = v0.fma(xv, a03); a13 = v1.fma(xv, a13); a23 = v2.fma(xv, a23); a33 = v3.fma(xv, a33);
        }
        float[] r = {VectorSum.sum(a00), VectorSum.sum(a10), VectorSum.sum(a20), VectorSum.sum(a30),
                VectorSum.sum(a01), VectorSum.sum(a11), VectorSum.sum(a21), VectorSum.sum(a31),
                VectorSum.sum(a02), VectorSum.sum(a12), VectorSum.sum(a22), VectorSum.sum(a32),
                VectorSum.sum(a03), VectorSum.sum(a13), VectorSum.sum(a23), VectorSum.sum(a33)};
        for (; i < cols; i++)
            for (int tt = 0; tt < 4; tt++)
                for (int rr = 0; rr < 4; rr++) r[tt * 4 + rr] += w[rr * cols + i] * x[(t + tt) * cols + i];
        for (int tt = 0; tt < 4; tt++)
            for (int rr = 0; rr < 4; rr++) out[(t + tt) * outWidth + row + rr] = r[tt * 4 + rr];
    }
}
