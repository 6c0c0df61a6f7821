package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * VectorSum adds in its documented order, and gives the same bits on the first call and after C2 has compiled it: the
 * property reduceLanes(ADD) lacks (its interpreted and compiled orders differ on these very inputs).
 */
class VectorSumTest {
    @Test
    void foldsHalvesInTheSameOrderInEveryTier() {
        for (VectorSpecies<Float> species : new VectorSpecies[] {FloatVector.SPECIES_128, FloatVector.SPECIES_256, FloatVector.SPECIES_512}) {
            int n = species.length(), rows = 64;
            Random random = new Random(n);
            float[] x = new float[rows * n], want = new float[rows];
            for (int i = 0; i < x.length; i++) x[i] = (float) (random.nextGaussian() * Math.exp(random.nextGaussian() * 4));
            for (int r = 0; r < rows; r++) want[r] = fold(x, r * n, n);
            // Enough calls for C2 to compile sum (and this loop) part-way through.
            for (int round = 0; round < 3_000; round++)
                for (int r = 0; r < rows; r++) {
                    float got = VectorSum.sum(FloatVector.fromArray(species, x, r * n));
                    if (Float.floatToRawIntBits(got) != Float.floatToRawIntBits(want[r]))
                        assertEquals(want[r], got, 0f, n + " lanes, row " + r + ", round " + round);
                }
        }
    }

    /** Lane i plus lane i + n/2, recursively, as scalars: the order VectorSum documents. */
    private static float fold(float[] x, int off, int n) {
        float[] v = java.util.Arrays.copyOfRange(x, off, off + n);
        for (int half = n / 2; half >= 1; half /= 2)
            for (int i = 0; i < half; i++) v[i] = v[i] + v[i + half];
        return v[0];
    }
}
