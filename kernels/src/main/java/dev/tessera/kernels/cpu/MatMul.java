package dev.tessera.kernels.cpu;

import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cpu.rows.RowKernels;

import java.lang.foreign.MemorySegment;

/**
 * out[t][r] = W[r] · x[t], parallel over rows. One token dots the quantized rows directly (decode is bound by
 * reading weights); several tokens dequantize a tile of rows once into a per-thread buffer and reuse it for every
 * token, so each weight byte is read and decoded once per step (prefill and batched decode).
 */
final class MatMul {
    private static final int TILE_ROWS = 4;

    private final WorkerPool pool;
    private final float[][] tiles;

    MatMul(WorkerPool pool) {
        this.pool = pool;
        this.tiles = new float[pool.numThreads()][];
    }

    void run(CpuWeight w, float[] x, int numTokens, float[] out, int outWidth) {
        int cols = w.cols();
        if (numTokens == 1) {
            pool.parallelFor(w.rows(), 16, (long) w.rows() * cols, (thread, start, end) -> {
                for (int r = start; r < end; r++) out[r] = dot(w, r, x, 0, cols);
            });
            return;
        }
        pool.parallelFor(w.rows(), TILE_ROWS, (long) w.rows() * cols * numTokens, (thread, start, end) -> {
            float[] tile = tiles[thread];
            if (tile == null || tile.length < TILE_ROWS * cols) tiles[thread] = tile = new float[TILE_ROWS * cols];
            int r = start;
            for (; r + TILE_ROWS <= end; r += TILE_ROWS) {
                for (int i = 0; i < TILE_ROWS; i++) dequantize(w, r + i, tile, i * cols);
                for (int t = 0; t < numTokens; t++) dot4(tile, cols, x, t * cols, out, t * outWidth + r);
            }
            for (; r < end; r++) {
                dequantize(w, r, tile, 0);
                for (int t = 0; t < numTokens; t++) out[t * outWidth + r] = QuantDot.dot(tile, 0, x, t * cols, cols);
            }
        });
    }

    /** Four rows of tile against one activation row: each x vector is loaded once for four FMAs. */
    private static void dot4(float[] tile, int cols, float[] x, int xo, float[] out, int oo) {
        var F = QuantDot.F;
        var a0 = jdk.incubator.vector.FloatVector.zero(F);
        var a1 = a0; var a2 = a0; var a3 = a0;
        int i = 0;
        for (; i < F.loopBound(cols); i += F.length()) {
            var xv = jdk.incubator.vector.FloatVector.fromArray(F, x, xo + i);
            a0 = jdk.incubator.vector.FloatVector.fromArray(F, tile, i).fma(xv, a0);
            a1 = jdk.incubator.vector.FloatVector.fromArray(F, tile, cols + i).fma(xv, a1);
            a2 = jdk.incubator.vector.FloatVector.fromArray(F, tile, 2 * cols + i).fma(xv, a2);
            a3 = jdk.incubator.vector.FloatVector.fromArray(F, tile, 3 * cols + i).fma(xv, a3);
        }
        float s0 = a0.reduceLanes(jdk.incubator.vector.VectorOperators.ADD), s1 = a1.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
        float s2 = a2.reduceLanes(jdk.incubator.vector.VectorOperators.ADD), s3 = a3.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
        for (; i < cols; i++) {
            float xi = x[xo + i];
            s0 += tile[i] * xi; s1 += tile[cols + i] * xi; s2 += tile[2 * cols + i] * xi; s3 += tile[3 * cols + i] * xi;
        }
        out[oo] = s0; out[oo + 1] = s1; out[oo + 2] = s2; out[oo + 3] = s3;
    }

    static float dot(CpuWeight w, int row, float[] x, int xo, int n) {
        MemorySegment seg = w.data();
        long off = row * w.rowBytes();
        return switch (w.type()) {
            case F32 -> QuantDot.dotF32(seg, off, x, xo, n);
            case Q8_0 -> QuantDot.dotQ8_0(seg, off, x, xo, n);
            case Q4_0 -> QuantDot.dotQ4_0(seg, off, x, xo, n);
            default -> Formats.dot(w.type(), seg, off, x, xo, n);
        };
    }

    static void dequantize(CpuWeight w, int row, float[] out, int oo) {
        MemorySegment seg = w.data();
        long off = row * w.rowBytes();
        int n = w.cols();
        switch (w.type()) {
            case F32 -> QuantDot.dequantizeF32(seg, off, out, oo, n);
            case F16 -> QuantDot.dequantizeF16(seg, off, out, oo, n);
            case Q8_0 -> QuantDot.dequantizeQ8_0(seg, off, out, oo, n);
            case Q4_0 -> QuantDot.dequantizeQ4_0(seg, off, out, oo, n);
            default -> Formats.dequantize(w.type(), seg, off, out, oo, n);
        }
    }

    /** Types without a hand-tuned path above go through the per-format row kernels. */
    static final class Formats {
        static float dot(TensorType type, MemorySegment seg, long off, float[] x, int xo, int n) {
            return RowKernels.forType(type).dot(seg, off, x, xo, n);
        }

        static void dequantize(TensorType type, MemorySegment seg, long off, float[] out, int oo, int n) {
            RowKernels.forType(type).dequantize(seg, off, out, oo, n);
        }
    }
}
