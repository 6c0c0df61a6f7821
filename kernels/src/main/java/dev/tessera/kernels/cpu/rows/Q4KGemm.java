package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static jdk.incubator.vector.VectorOperators.LSHR;

/** Q4_K's prefill matmul ({@link ScaleMinGemm}): pair vectors of the nibbles as they are, 0..15. */
final class Q4KGemm extends ScaleMinGemm {
    static final Q4KGemm INSTANCE = new Q4KGemm();
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;

    private Q4KGemm() {
        super(0);
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment pack, int v) {
        long o = panelOffset + (long) (k0 / BLOCK) * Q4KPanels.PANEL_BLOCK_BYTES;
        unpackScales(w, o, pack, v);
        for (int m = 0; m < 64; m++) {
            // Pair slice 16c + l: low nibbles are columns 64c + 2l + p (pair 32c + l), high nibbles 32 more (pair 32c + 16 + l).
            ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, o + Q4KPanels.QS + 32L * m, LE)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
            long c = 32L * (m / 16) + m % 16;
            q.and((short) 15).intoMemorySegment(pack, 64 * (VECTORS * c + v), NATIVE);
            q.lanewise(LSHR, 4).intoMemorySegment(pack, 64 * (VECTORS * (c + 16) + v), NATIVE);
        }
    }
}
