package dev.tessera.kernels.cpu;

import dev.tessera.kernels.cpu.rows.RowKernel;

import java.lang.foreign.MemorySegment;

/**
 * How far an int8-activation panel dot (x rounded per 32-column block to max|x| / 127 steps, as llama.cpp's q8_0)
 * may be from the float dot: each x moves by at most half a step, so the dot by at most Σ |w| * step / 2.
 */
final class Int8Rounding {
    private Int8Rounding() {}

    static double bound(RowKernel kernel, MemorySegment data, long rowOffset, int cols, float[] x, int xOffset) {
        float[] w = new float[cols];
        kernel.dequantize(data, rowOffset, w, 0, cols);
        double bound = 0;
        for (int b = 0; b < cols; b += 32) {
            float max = 0;
            for (int k = b; k < b + 32; k++) max = Math.max(max, Math.abs(x[xOffset + k]));
            for (int k = b; k < b + 32; k++) bound += Math.abs(w[k]) * max / 254;
        }
        return bound * 1.001;
    }
}
