package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A matmul's input rows as the integer panel dots read them ({@link PanelKernel#needsInt8}), computed once per matmul
 * and shared by every row: x rounded to int8 per 32-column block, as llama.cpp's q8_0 activations are,
 * {@code x ≈ scale * q} with |q| ≤ 127. The values are kept three ways: two per int (column 2m in the low 16 bits,
 * 2m + 1 in the high: one broadcast int gives both columns' short lanes), as floats (for the float dots of batched
 * tokens, whose sums of 4-bit weights times these are exact integers and so equal the 16-bit ones), and their block
 * sums (for each block's offset or min).
 * <p>
 * Indices run over all tokens: block {@code b} of the token at x offset {@code xo} is {@code xo / 32 + b}, its
 * column pair {@code m} is {@code xo / 2 + m}, its column {@code k} is {@code xo + k}.
 */
public final class ActivationBlocks {
    /** Adding and subtracting 1.5 * 2^23 rounds a float below 2^22 to an integer, ties to even as rint does. */
    private static final float ROUND = 0x1.8p23f;
    /** 16 lanes: panels, the only readers, exist only where floats have 16 lanes (see {@link PanelKernel#forType}). */
    private static final VectorSpecies<Float> F16 = FloatVector.SPECIES_512;
    private float[] scales = new float[0], scaledSums = new float[0], values = new float[0], negativeHalfSums = new float[0];
    private int[] totals = new int[0], pairs = new int[0];

    /** The int8 scale of each block (0 for an all-zero block). */
    public float[] scales() {
        return scales;
    }

    /** Σq of each block. */
    public int[] int8Totals() {
        return totals;
    }

    /**
     * Σq * scale of each block: Σx as the int8 dot sees it. A Q4_K min term taken with it cancels the rounding of x
     * against the values' offset, as the dot of the dequantized weights would; with the exact Σx instead, the
     * rounding error was multiplied by the nibbles (up to 15).
     */
    public float[] int8Sums() {
        return scaledSums;
    }

    /**
     * -(scale * Σq) of each 16-column half block: the min term of a 16-column sub-block (Q2_K), the same for every row
     * of a matmul, so made once here instead of summed from the pairs in each panel's dot.
     */
    public float[] negativeHalfSums() {
        return negativeHalfSums;
    }

    /** The int8 values as floats, one per column. */
    public float[] int8Floats() {
        return values;
    }

    /** The int8 values, a column pair per int. */
    public int[] pairs() {
        return pairs;
    }

    /** Rounds {@code numTokens} rows of {@code cols} floats at x[0..] (cols a multiple of 32). */
    public ActivationBlocks compute(float[] x, int numTokens, int cols) {
        prepare(numTokens, cols);
        computeBlocks(x, 0, numTokens * cols / 32);
        return this;
    }

    /** Room for {@code numTokens} rows of {@code cols}; then {@link #computeBlocks} fills it, in parts on several threads if wished. */
    public ActivationBlocks prepare(int numTokens, int cols) {
        int n = numTokens * cols / 32;
        if (scales.length < n) {
            scales = new float[n];
            scaledSums = new float[n];
            totals = new int[n];
            pairs = new int[16 * n];
            values = new float[32 * n];
            negativeHalfSums = new float[2 * n];
        }
        return this;
    }

    /** Rounds blocks [from, to) of x (32 columns each, across rows); blocks write only their own entries. */
    public void computeBlocks(float[] x, int from, int to) {
        for (int b = from; b < to; b++) {
            quantize(x, b);
            scaledSums[b] = totals[b] * scales[b];
        }
    }

    private void quantize(float[] x, int b) {
        FloatVector lo = FloatVector.fromArray(F16, x, 32 * b), hi = FloatVector.fromArray(F16, x, 32 * b + 16);
        float max = lo.abs().max(hi.abs()).reduceLanes(VectorOperators.MAX);
        float inverse = max == 0f ? 0f : 127f / max;
        scales[b] = max / 127f;
        int low = store(lo.mul(inverse), 32 * b), high = store(hi.mul(inverse), 32 * b + 16);
        totals[b] = low + high;
        negativeHalfSums[2 * b] = -(scales[b] * low);
        negativeHalfSums[2 * b + 1] = -(scales[b] * high);
    }

    /** Rounds the 16 values of columns k.. (|v| ≤ 127), stores them as floats and as 8 pairs, and returns their sum. */
    private int store(FloatVector v, int k) {
        FloatVector rounded = v.add(ROUND).sub(ROUND);
        rounded.intoArray(values, k);
        IntVector q = (IntVector) rounded.convert(VectorOperators.F2I, 0);
        ((ShortVector) q.convertShape(VectorOperators.I2S, ShortVector.SPECIES_256, 0)).reinterpretAsInts().intoArray(pairs, k / 2);
        return q.reduceLanes(VectorOperators.ADD);
    }
}
