package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;

/**
 * Q8_0's prefill GEMM ({@link FloatIntegerGemm}): a panel's int8 values as floats, its f16 d as floats.
 */
final class Q8_0Gemm extends FloatIntegerGemm {
    static final Q8_0Gemm INSTANCE = new Q8_0Gemm();
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256, S32 = ShortVector.SPECIES_512;

    private Q8_0Gemm() {}

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment pack, int v) {
        long o = panelOffset + (long) (k0 / 32) * Q8_0Panels.PANEL_BLOCK_BYTES;
        for (int b = 0; b < kn / 32; b++, o += Q8_0Panels.PANEL_BLOCK_BYTES) {
            VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE)).intoMemorySegment(pack, SCALES + 64L * (VECTORS * b + v), NATIVE);
            for (int m = 0; m < 16; m++) {
                // Pair slice m holds columns 2m (low short of each int lane) and 2m + 1 (high short) of the 16 rows.
                IntVector q = ((ShortVector) ByteVector.fromMemorySegment(B32, w, o + Q8_0Panels.QS + 32L * m, LE)
                        .convertShape(VectorOperators.B2S, S32, 0)).reinterpretAsInts();
                long c = 32L * b + 2 * m;
                ((FloatVector) q.lanewise(LSHL, 16).lanewise(ASHR, 16).convert(I2F, 0)).intoMemorySegment(pack, 64 * (VECTORS * c + v), NATIVE);
                ((FloatVector) q.lanewise(ASHR, 16).convert(I2F, 0)).intoMemorySegment(pack, 64 * (VECTORS * (c + 1) + v), NATIVE);
            }
        }
    }
}
