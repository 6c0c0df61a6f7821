package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Species and layouts shared by the row kernels.
 * <p>
 * F is the preferred float species, but clamped to 8 or 16 lanes: quant blocks hold 16 or 32 packed values, so a lane
 * count that divides 16 lets every kernel walk a block in whole vectors (16 lanes on AVX-512, 8 on AVX2/NEON-class
 * hardware). B, S and I have the same lane count as F, so one byte/short/int vector widens into one float vector.
 */
final class VectorLanes {
    static final VectorSpecies<Float> F =
            FloatVector.SPECIES_PREFERRED.length() >= 16 ? FloatVector.SPECIES_512 : FloatVector.SPECIES_256;
    static final int L = F.length();
    static final VectorSpecies<Byte> B = L == 16 ? ByteVector.SPECIES_128 : ByteVector.SPECIES_64;
    static final VectorSpecies<Short> S = L == 16 ? ShortVector.SPECIES_256 : ShortVector.SPECIES_128;
    static final VectorSpecies<Integer> I = L == 16 ? IntVector.SPECIES_512 : IntVector.SPECIES_256;

    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** The order of floats written for the matmul's own scratch (PackedGemm's packed chunks). */
    static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);
    static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);

    /** 0..31: per-lane shift counts that pick bit j of a 32-bit qh word. */
    static final int[] BIT_INDEX = new int[32];

    static {
        for (int i = 0; i < 32; i++) BIT_INDEX[i] = i;
    }

    private VectorLanes() {}

    /**
     * IEEE half → float on L lanes without a table. The magnitude bits shifted into a float's exponent/mantissa
     * position give a float 2^112 times too small, for normals and subnormals alike, so one multiply rebiases
     * both; Inf/NaN (exponent 31) get an all-ones exponent first so the multiply keeps them Inf/NaN.
     */
    static FloatVector halfToFloat(ShortVector half) {
        return halfBitsToFloat((IntVector) half.convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0));
    }

    /** {@link #halfToFloat} on halves already zero-extended into int lanes. */
    static FloatVector halfBitsToFloat(IntVector bits) {
        IntVector abs = bits.and(0x7fff);
        VectorMask<Integer> special = abs.compare(VectorOperators.GE, 0x7c00);
        IntVector mag = abs.lanewise(VectorOperators.LSHL, 13).lanewise(VectorOperators.OR, 0x7f800000, special);
        FloatVector f = mag.reinterpretAsFloats().mul(0x1p112f);
        return f.reinterpretAsInts().or(bits.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    /**
     * The int8 x of two columns (one int of {@link ActivationBlocks#pairs}) in alternating short lanes: the x pattern
     * of a pair slice (row i, column parity p at lane 2i + p) in the int8 panel dots.
     */
    static ShortVector xPair(int pair) {
        return IntVector.broadcast(IntVector.SPECIES_512, pair).reinterpretAsShorts();
    }

    /** Lanes 2i and 2i + 1 of a pair slice's 16-bit sums added into int lane i, as floats (exact: |sum| < 2^16). */
    static FloatVector rowSums(ShortVector sums) {
        IntVector both = sums.reinterpretAsInts();
        IntVector low = both.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16);
        return (FloatVector) low.add(both.lanewise(VectorOperators.ASHR, 16)).convert(VectorOperators.I2F, 0);
    }
}
