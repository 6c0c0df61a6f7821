package dev.tessera.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * e^x for the lanes of a float vector, from adds, multiplies and FMAs alone (Cephes' expf: x = n ln2 + r, a degree-5
 * polynomial in r, times 2^n), within 2 ulp of exp for x in [-87, 88]; below -87 it gives e^-87.
 * <p>
 * The Vector API's own {@code lanewise(EXP)} is not used because its result depends on the JIT tier: compiled by C2 it
 * calls an SVML routine, interpreted or in C1 it rounds {@code Math.exp} per lane, and the two differ in the last bit.
 * One model's forward then changed bits between its first call and a later one (a MoE block and its dense twin,
 * compared in a test, differed in one element). Adds, multiplies and FMAs round the same in every tier.
 */
final class VectorExp {
    private static final float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f, P3 = 4.1665795894e-2f,
            P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;
    /** Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to an integer. */
    private static final float ROUND = 0x1.8p23f;

    private VectorExp() {}

    static FloatVector exp(FloatVector x) {
        FloatVector v = x.max(-87f).min(88f);
        FloatVector n = v.mul(LOG2E).add(ROUND).sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(x.species(), -LN2_HI), v);
        r = n.fma(FloatVector.broadcast(x.species(), -LN2_LO), r);
        FloatVector y = r.fma(P0, P1);
        y = y.fma(r, FloatVector.broadcast(x.species(), P2));
        y = y.fma(r, FloatVector.broadcast(x.species(), P3));
        y = y.fma(r, FloatVector.broadcast(x.species(), P4));
        y = y.fma(r, FloatVector.broadcast(x.species(), P5));
        y = y.fma(r.mul(r), r.add(1f));
        IntVector bits = ((IntVector) n.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
        return y.mul(bits.reinterpretAsFloats());
    }
}
