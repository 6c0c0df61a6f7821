package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The sum of a float vector's lanes, added in one fixed order: lane i with lane i + n/2, then i + n/4, and so on down
 * to lane 0 (the order C2 uses on x86 for 16 lanes).
 * <p>
 * The Vector API's own {@code reduceLanes(ADD)} is not used because it leaves the order unspecified and the JIT tiers
 * differ: interpreted or in C1 it adds lane 0, 1, 2, ... in turn, compiled by C2 it folds halves. A sum of squares in
 * rmsNorm then changed in the last bit once C2 compiled it, and so did a model's logits between two loads in one JVM (a
 * MoE block and its dense twin, compared in a test, differed by an ulp about once in ten runs). Shuffles and lane-wise
 * adds give the same bits in every tier.
 */
public final class VectorSum {
    private static final VectorShuffle<Float> H16_8 = half(FloatVector.SPECIES_512, 8), H16_4 = half(FloatVector.SPECIES_512, 4),
            H16_2 = half(FloatVector.SPECIES_512, 2), H16_1 = half(FloatVector.SPECIES_512, 1);
    private static final VectorShuffle<Float> H8_4 = half(FloatVector.SPECIES_256, 4), H8_2 = half(FloatVector.SPECIES_256, 2),
            H8_1 = half(FloatVector.SPECIES_256, 1);
    private static final VectorShuffle<Float> H4_2 = half(FloatVector.SPECIES_128, 2), H4_1 = half(FloatVector.SPECIES_128, 1);

    private VectorSum() {}

    /** Lane i takes lane i ^ step: a swap of neighbouring runs of {@code step} lanes. */
    private static VectorShuffle<Float> half(VectorSpecies<Float> species, int step) {
        return VectorShuffle.fromOp(species, i -> i ^ step);
    }

    public static float sum(FloatVector v) {
        switch (v.length()) {
            case 16 -> {
                v = v.add(v.rearrange(H16_8));
                v = v.add(v.rearrange(H16_4));
                v = v.add(v.rearrange(H16_2));
                v = v.add(v.rearrange(H16_1));
            }
            case 8 -> {
                v = v.add(v.rearrange(H8_4));
                v = v.add(v.rearrange(H8_2));
                v = v.add(v.rearrange(H8_1));
            }
            case 4 -> {
                v = v.add(v.rearrange(H4_2));
                v = v.add(v.rearrange(H4_1));
            }
            default -> {
                float s = 0f;
                for (int i = 0; i < v.length(); i++) s += v.lane(i);
                return s;
            }
        }
        return v.lane(0);
    }
}
