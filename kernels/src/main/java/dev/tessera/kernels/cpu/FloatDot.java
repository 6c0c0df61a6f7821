package dev.tessera.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
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
        float sum = acc.reduceLanes(VectorOperators.ADD);
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
        float s0 = a0.reduceLanes(VectorOperators.ADD), s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD), s3 = a3.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            s0 += w[i] * x[x0 + i]; s1 += w[i] * x[x1 + i]; s2 += w[i] * x[x2 + i]; s3 += w[i] * x[x3 + i];
        }
        out[t * outWidth + row] = s0;
        out[(t + 1) * outWidth + row] = s1;
        out[(t + 2) * outWidth + row] = s2;
        out[(t + 3) * outWidth + row] = s3;
    }
}
