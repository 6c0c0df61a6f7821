package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;

/**
 * The prefill GEMMs of IQ4_NL and IQ4_XS panels ({@link FloatIntegerGemm}): a panel's levels (at most 127 in
 * magnitude) as floats, and per 32-column block the factor its one-token dot multiplies the block's integer sum by (IQ4_NL's d,
 * IQ4_XS's d * (ls - 32)). The four-token dots they replace ran 32 GMAC/s per thread (2048×2048, cache-resident).
 */
abstract class IQ4Gemm extends FloatIntegerGemm {
    static final IQ4Gemm NL = new IQ4Gemm() {
        @Override
        public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment pack, int v) {
            long o = panelOffset + (long) (k0 / 32) * IQ4NLPanels.PANEL_BLOCK_BYTES;
            for (int b = 0; b < kn / 32; b++, o += IQ4NLPanels.PANEL_BLOCK_BYTES) {
                VectorLanes.halfToFloat(ShortVector.fromMemorySegment(S16, w, o, LE)).intoMemorySegment(pack, SCALES + 64L * (VECTORS * b + v), NATIVE);
                levels(w, o + IQ4NLPanels.QS, pack, 32 * b, v);
            }
        }
    };
    static final IQ4Gemm XS = new IQ4Gemm() {
        @Override
        public void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment pack, int v) {
            long o = panelOffset + (long) (k0 / 256) * IQ4XSPanels.PANEL_BLOCK_BYTES;
            for (int j = 0; j < kn / 32; j++) {
                IQ4XSPanels.subBlockScales(w, o, j).intoMemorySegment(pack, SCALES + 64L * (VECTORS * j + v), NATIVE);
                levels(w, o + IQ4XSPanels.QS + 256L * j, pack, 32 * j, v);
            }
        }
    };
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256;
    private static final FloatVector ONE = FloatVector.broadcast(F, 1f);

    private IQ4Gemm() {}

    /**
     * The levels of one 32-column block's 8 pair slices at {@code qs} as float vectors of columns c0.. into slot v: the
     * panels' unpack with a scale of 1 (exact), into the pack's column stride of three vectors.
     */
    static void levels(MemorySegment w, long qs, MemorySegment pack, int c0, int v) {
        IQ4NLPanels.unpackLevels(w, qs, ONE, pack, 16 * (VECTORS * c0 + v), 16 * VECTORS);
    }
}
