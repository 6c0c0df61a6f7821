package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

import static dev.tessera.kernels.cpu.rows.IQ4NLPanels.TABLE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.F;
import static dev.tessera.kernels.cpu.rows.VectorLanes.LE;
import static dev.tessera.kernels.cpu.rows.VectorLanes.NATIVE;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.B2F;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.ZERO_EXTEND_B2S;

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
            FloatVector d = FloatVector.fromMemorySegment(F, w, o + IQ4XSPanels.D, LE);
            for (int j = 0; j < kn / 32; j++) {
                // As the dot's factor: d times the signed scale byte as a float.
                d.mul((FloatVector) ByteVector.fromMemorySegment(B16, w, o + IQ4XSPanels.SC + 16L * j, LE).convertShape(B2F, F, 0))
                        .intoMemorySegment(pack, SCALES + 64L * (VECTORS * j + v), NATIVE);
                levels(w, o + IQ4XSPanels.QS + 256L * j, pack, 32 * j, v);
            }
        }
    };
    private static final VectorSpecies<Short> S16 = ShortVector.SPECIES_256, S32 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Byte> B16 = ByteVector.SPECIES_128, B32 = ByteVector.SPECIES_256;

    private IQ4Gemm() {}

    /** The levels of one 32-column block's 8 pair slices at {@code qs} as float vectors of columns c0.. into slot v. */
    static void levels(MemorySegment w, long qs, MemorySegment pack, int c0, int v) {
        for (int m = 0; m < 8; m++) {
            ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B32, w, qs + 32L * m, LE).convertShape(ZERO_EXTEND_B2S, S32, 0);
            IntVector lo = q.and((short) 15).selectFrom(TABLE).reinterpretAsInts(), hi = q.lanewise(LSHR, 4).selectFrom(TABLE).reinterpretAsInts();
            long c = c0 + 2L * m;  // low nibbles: columns c, c + 1; high nibbles: c + 16, c + 17
            ((FloatVector) lo.lanewise(LSHL, 16).lanewise(ASHR, 16).convert(I2F, 0)).intoMemorySegment(pack, 64 * (VECTORS * c + v), NATIVE);
            ((FloatVector) lo.lanewise(ASHR, 16).convert(I2F, 0)).intoMemorySegment(pack, 64 * (VECTORS * (c + 1) + v), NATIVE);
            ((FloatVector) hi.lanewise(LSHL, 16).lanewise(ASHR, 16).convert(I2F, 0)).intoMemorySegment(pack, 64 * (VECTORS * (c + 16) + v), NATIVE);
            ((FloatVector) hi.lanewise(ASHR, 16).convert(I2F, 0)).intoMemorySegment(pack, 64 * (VECTORS * (c + 17) + v), NATIVE);
        }
    }
}
