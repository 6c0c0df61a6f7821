package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

/**
 * Q5_K's prefill matmul ({@link ScaleMinGemm}): pair vectors of q - 16, nibble and fifth bit together, so that 16
 * products of at most 16 * 127 fit a 16-bit lane (q itself, up to 31, would not); the chunk adds 16 Σqx back before
 * the float tail, which gives {@link Q5KPanels#dot}'s integer and so its bits. Before it, many tokens took the batched
 * dots.
 */
final class Q5KGemm extends ScaleMinGemm {
    static final Q5KGemm INSTANCE = new Q5KGemm();
    private static final VectorSpecies<Byte> B32 = ByteVector.SPECIES_256;

    private Q5KGemm() {
        super(16);
    }

    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment pack, int v) {
        long o = panelOffset + (long) (k0 / BLOCK) * Q5KPanels.PANEL_BLOCK_BYTES;
        unpackScales(w, o, pack, v);
        for (int g = 0; g < 8; g++) {
            long group = o + Q5KPanels.GROUPS + (long) g * Q5KPanels.GROUP_BYTES;
            ShortVector plane = ShortVector.fromMemorySegment(S32, w, group, LE);
            for (int k = 0; k < 8; k++) {
                // Slice m = 8g + k = 16c + l as in Q4KGemm: low nibbles pair 32c + l, high nibbles pair 32c + 16 + l; their
                // fifth bits are bits k and 8 + k of the plane.
                int m = 8 * g + k;
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, group + Q5KPanels.PLANE_BYTES + 32L * k, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                ShortVector low = plane.lanewise(LSHR, k).and((short) 1).lanewise(LSHL, 4);
                ShortVector high = plane.lanewise(LSHR, 8 + k).and((short) 1).lanewise(LSHL, 4);
                long c = 32L * (m / 16) + m % 16;
                q.and((short) 15).or(low).sub((short) 16).intoMemorySegment(pack, 64 * (VECTORS * c + v), NATIVE);
                q.lanewise(LSHR, 4).or(high).sub((short) 16).intoMemorySegment(pack, 64 * (VECTORS * (c + 16) + v), NATIVE);
            }
        }
    }
}
