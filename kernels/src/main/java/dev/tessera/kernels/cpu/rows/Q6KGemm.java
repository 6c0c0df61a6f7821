package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.LSHL;

/** Q6_K's prefill matmul ({@link GroupGemm}): pair vectors of q - 32 and d * scale, decoded as {@link Q6KPanels#dot} decodes them. */
final class Q6KGemm extends GroupGemm {
    static final Q6KGemm INSTANCE = new Q6KGemm();
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128, B32 = ByteVector.SPECIES_256;

    private Q6KGemm() {}

    /** Pair vectors and d * scale of the panel block at {@code o} into slot v of the pack, decoded as Q6KPanels.dot decodes them. */
    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment pack, int v) {
        long o = panelOffset + (long) (k0 / BLOCK) * Q6KPanels.PANEL_BLOCK_BYTES;
        FloatVector d = FloatVector.fromMemorySegment(F, w, o + Q6KPanels.D, LE);
        for (int g = 0; g < 16; g++) {
            d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + Q6KPanels.SCALES + (long) g * PanelKernel.ROWS, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).intoMemorySegment(pack, SCALES + 64L * (VECTORS * g + v), NATIVE);
            for (int t = 0; t < 2; t++) {
                long group = o + Q6KPanels.QS + (long) g * Q6KPanels.GROUP_BYTES;
                ShortVector wv = ShortVector.fromMemorySegment(S32, w, group + Q6KPanels.WORDS * t, LE);
                ShortVector bv = (ShortVector) ByteVector.fromMemorySegment(B32, w, group + Q6KPanels.BYTES + 32L * t, LE)
                        .convertShape(VectorOperators.B2S, S32, 0);
                // Quad t of group g holds column pairs 8g + 4t + s, s = 0..3.
                long c = 8L * g + 4L * t;
                wv.lanewise(ASHR, 10).intoMemorySegment(pack, 64 * (VECTORS * c + v), NATIVE);
                wv.lanewise(LSHL, 6).lanewise(ASHR, 10).intoMemorySegment(pack, 64 * (VECTORS * (c + 1) + v), NATIVE);
                bv.lanewise(LSHL, 14).lanewise(ASHR, 10).or(wv.and((short) 15)).intoMemorySegment(pack, 64 * (VECTORS * (c + 2) + v), NATIVE);
                bv.lanewise(ASHR, 2).intoMemorySegment(pack, 64 * (VECTORS * (c + 3) + v), NATIVE);
            }
        }
    }
}
