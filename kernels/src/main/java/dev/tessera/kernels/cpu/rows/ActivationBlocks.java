package dev.tessera.kernels.cpu.rows;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * What the panel dots read of a matmul's input rows besides x itself, per 32-column block, computed once per matmul
 * and shared by every row: Σx (formats with a per-block offset or min take offset * Σx once per block), and for the
 * integer route ({@link PanelKernel#needsInt8}) x rounded to int8 with one scale per block, as llama.cpp's q8_0
 * activations are: {@code x ≈ scale * q}, |q| ≤ 127. The int8 values are stored two per int (column 2m in the low
 * 16 bits, 2m + 1 in the high), so broadcasting one int gives a short vector whose lanes alternate the two columns.
 * <p>
 * Indices run over all tokens: block {@code b} of the token at x offset {@code xo} is {@code xo / 32 + b}, its
 * column pair {@code m} is {@code xo / 2 + m}.
 */
public final class ActivationBlocks {
    /** Above |x| / scale this rounding trick (add and subtract 1.5 * 2^23) would be wrong; |q| ≤ 127 is far below. */
    private static final float ROUND = 0x1.8p23f;
    private float[] sums = new float[0], scales = new float[0], int8Sums = new float[0];
    private int[] pairs = new int[0];
    private float[] int8Floats = new float[0];
    private int[] int8Totals = new int[0];

    /** Σx of each 32-column block. */
    public float[] sums() {
        return sums;
    }

    /**
     * Σ of the int8 values of each 32-column block times its scale: the sum of x as the int8 route sees it, for the
     * min term of an int8 dot, so that the rounding of x shifts the dot as it would shift the dot of the dequantized
     * weights (a Q4_K value's offset cancels against its min instead of multiplying the rounding error by up to 15).
     */
    public float[] int8Sums() {
        return int8Sums;
    }

    /** Σ of the int8 values of each 32-column block. */
    public int[] int8Totals() {
        return int8Totals;
    }

    /** The int8 scale of each 32-column block (0 for an all-zero block). */
    public float[] scales() {
        return scales;
    }

    /**
     * The int8 values as floats, one per column: a float dot of 4-bit weights with them sums exact integers (below
     * 2^24 within a block), so it equals the 16-bit integer dot bit for bit.
     */
    public float[] int8Floats() {
        return int8Floats;
    }

    /** The int8 values, a column pair per int. */
    public int[] pairs() {
        return pairs;
    }

    /**
     * Fills the sums of {@code numTokens} rows of {@code cols} floats at x[0..], and their int8 copy if {@code int8}.
     * cols is a multiple of 32.
     */
    public ActivationBlocks compute(float[] x, int numTokens, int cols, boolean int8) {
        int n = numTokens * cols / 32;
        if (sums.length < n) sums = new float[n];
        if (int8 && scales.length < n) {
            scales = new float[n];
            int8Sums = new float[n];
            pairs = new int[16 * n];
            int8Floats = new float[32 * n];
            int8Totals = new int[n];
        }
        for (int b = 0; b < n; b++) {
            int k = 32 * b;
            if (VectorLanes.L == 16) {
                FloatVector lo = FloatVector.fromArray(VectorLanes.F, x, k), hi = FloatVector.fromArray(VectorLanes.F, x, k + 16);
                sums[b] = lo.add(hi).reduceLanes(VectorOperators.ADD);
                if (int8) quantize(lo, hi, b);
            } else {
                float s = 0f;
                for (int i = k; i < k + 32; i++) s += x[i];
                sums[b] = s;
                if (int8) quantizeScalar(x, k, b);
            }
        }
        return this;
    }

    private void quantize(FloatVector lo, FloatVector hi, int b) {
        float max = lo.abs().max(hi.abs()).reduceLanes(VectorOperators.MAX);
        float scale = max / 127f, inverse = max == 0f ? 0f : 127f / max;
        scales[b] = scale;
        int sum = pack(lo.mul(inverse), 32 * b) + pack(hi.mul(inverse), 32 * b + 16);
        int8Totals[b] = sum;
        int8Sums[b] = sum * scale;
    }

    /**
     * Rounds the 16 values of columns k.. (|v| ≤ 127) to the nearest integer, ties to even as rint does, stores them
     * as floats and as 8 pairs and returns their sum.
     */
    private int pack(FloatVector v, int k) {
        FloatVector rounded = v.add(ROUND).sub(ROUND);
        rounded.intoArray(int8Floats, k);
        IntVector q = (IntVector) rounded.convert(VectorOperators.F2I, 0);
        ((ShortVector) q.convertShape(VectorOperators.I2S, ShortVector.SPECIES_256, 0)).reinterpretAsInts().intoArray(pairs, k / 2);
        return q.reduceLanes(VectorOperators.ADD);
    }

    private void quantizeScalar(float[] x, int k, int b) {
        float max = 0f;
        for (int i = k; i < k + 32; i++) max = Math.max(max, Math.abs(x[i]));
        float inverse = max == 0f ? 0f : 127f / max;
        scales[b] = max / 127f;
        int sum = 0;
        for (int m = 0; m < 16; m++) {
            int q0 = (int) Math.rint(x[k + 2 * m] * inverse), q1 = (int) Math.rint(x[k + 2 * m + 1] * inverse);
            pairs[16 * b + m] = (q0 & 0xffff) | q1 << 16;
            int8Floats[k + 2 * m] = q0;
            int8Floats[k + 2 * m + 1] = q1;
            sum += q0 + q1;
        }
        int8Totals[b] = sum;
        int8Sums[b] = sum * scales[b];
    }
}
