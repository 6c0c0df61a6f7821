package dev.tessera.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** VectorExp against Math.exp: within 2 ulp over its range, exact at 0, clamped below -87 (softmax and silu inputs). */
class VectorExpTest {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    @Test
    void withinTwoUlpOfMathExp() {
        float[] x = new float[F.length()], out = new float[F.length()];
        double worst = 0;
        for (float v = -87f; v <= 88f; ) {
            for (int i = 0; i < x.length; i++, v += 0.0137f) x[i] = v;
            VectorExp.exp(FloatVector.fromArray(F, x, 0)).intoArray(out, 0);
            for (int i = 0; i < x.length; i++) {
                if (x[i] > 88f) continue;  // past the range: clamped
                float want = (float) Math.exp(x[i]);
                worst = Math.max(worst, Math.abs(out[i] - want) / Math.ulp(want));
            }
        }
        assertTrue(worst <= 2, "worst error " + worst + " ulp");
    }

    @Test
    void exactAtZeroAndClampedFarBelow() {
        float[] x = new float[F.length()], out = new float[F.length()];
        x[1] = -1000f;
        x[2] = Float.NEGATIVE_INFINITY;
        VectorExp.exp(FloatVector.fromArray(F, x, 0)).intoArray(out, 0);
        assertEquals(1f, out[0]);
        assertEquals((float) Math.exp(-87), out[1], Math.ulp((float) Math.exp(-87)) * 2);
        assertEquals(out[1], out[2]);
    }
}
