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
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.NE;

/**
 * Q3_K's prefill matmul ({@link GroupGemm}): pair vectors of the signed values (low bits, minus 4 where the clear bit is
 * set) and d * scale. {@link Q3KPanels#dot} sums Σ low·qx and Σ qx (clear) apart and subtracts 4 times the second in
 * 16-bit lanes; with every value's sum at most 8 * 4 * 127 per lane, Σ value·qx is the same 16-bit number, so the rows
 * are the dot's bits. Before it, many tokens took the batched dots: 31 GMAC/s against this GEMM's 94 (2048×2048, 128
 * tokens, one thread, Zen 5).
 */
final class Q3KGemm extends GroupGemm {
    static final Q3KGemm INSTANCE = new Q3KGemm();
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128, B32 = ByteVector.SPECIES_256;

    private Q3KGemm() {}

    /** Pair vectors and d * scale of the panel block at {@code o} into slot v of the pack, as Q3KPanels.dot forms them. */
    @Override
    public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment pack, int v) {
        long o = panelOffset + (long) (k0 / BLOCK) * Q3KPanels.PANEL_BLOCK_BYTES;
        FloatVector d = FloatVector.fromMemorySegment(F, w, o + Q3KPanels.D, LE);
        for (int g = 0; g < 16; g++) {
            long sub = o + Q3KPanels.SUB_BLOCKS + (long) g * Q3KPanels.SUB_BLOCK_BYTES;
            d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, sub, LE).convertShape(VectorOperators.B2F, F, 0))
                    .intoMemorySegment(pack, SCALES + 64L * (VECTORS * g + v), NATIVE);
            ShortVector clear = (ShortVector) ByteVector.fromMemorySegment(B32, w, sub + Q3KPanels.CLEARS, LE)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
            for (int h = 0; h < 2; h++) {
                ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, sub + Q3KPanels.SLICES + 32L * h, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, S32, 0);
                // Field k of slice h holds column pair 8g + 4h + k.
                for (int k = 0; k < 4; k++) {
                    int f = 4 * h + k;
                    q.lanewise(LSHR, 2 * k).and((short) 3).sub((short) 4, clear.and((short) (1 << f)).compare(NE, 0))
                            .intoMemorySegment(pack, 64L * (VECTORS * (8L * g + f) + v), NATIVE);
                }
            }
        }
    }
}
