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
    private final WorkerPool pool;
    private final float[][] tiles;
    private final float[][] packs;

    MatMul(WorkerPool pool) {
        this.pool = pool;
        this.tiles = new float[pool.numThreads()][];
        this.packs = new float[pool.numThreads()][];
    }

    void run(CpuWeight w, float[] x, int numTokens, float[] out, int outWidth) {
        int cols = w.cols();
        if (numTokens == 1) {
            pool.parallelFor(w.rows(), 16, (long) w.rows() * cols, (thread, start, end) -> {
                for (int r = start; r < end; r++) out[r] = dot(w, r, x, 0, cols);
            });
            return;
        }
        int block = PackedGemm.BLOCK_ROWS;
        pool.parallelFor(w.rows(), block, (long) w.rows() * cols * numTokens, (thread, start, end) -> {
            float[] tile = tiles[thread];
            if (tile == null || tile.length < block * cols) tiles[thread] = tile = new float[block * cols];
            float[] pack = packs[thread];
            if (pack == null) packs[thread] = pack = new float[PackedGemm.K_CHUNK * block];
            int r = start;
            for (; r + block <= end; r += block) {
                for (int i = 0; i < block; i++) dequantize(w, r + i, tile, i * cols);
                PackedGemm.multiply(tile, cols, pack, x, numTokens, out, outWidth, r);
            }
            for (; r < end; r++) {
                dequantize(w, r, tile, 0);
                for (int t = 0; t < numTokens; t++) out[t * outWidth + r] = QuantDot.dot(tile, 0, x, t * cols, cols);
            }
        });
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
