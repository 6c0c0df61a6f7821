package dev.tessera.kernels.cpu;

import dev.tessera.kernels.cpu.rows.ActivationBlocks;
import dev.tessera.kernels.cpu.rows.PanelKernel;

import java.lang.foreign.MemorySegment;

/**
 * out[t][r] = W[r] · x[t], parallel over rows. One token dots the quantized rows directly (decode is bound by
 * reading weights); several tokens dequantize a tile of rows once into a per-thread buffer and reuse it for every
 * token, so each weight byte is read and decoded once per step (prefill and batched decode). Q4_0 and Q8_0 matrices
 * repacked into 16-row panels at load take {@link #runPanels} instead.
 */
final class MatMul {
    /** Up to this many tokens go through per-row dots; more through the packed GEMM (measured crossover). */
    static final int SMALL_BATCH = 16;

    private final WorkerPool pool;
    private final float[][] tiles;
    private final MemorySegment[] packs;  // per thread: PackedGemm's chunk
    private final float[][] dotSums;  // per thread: dot8's running sums
    private final int[][] dotTokens;  // per thread: dot8's token offsets
    private final ActivationBlocks activationBlocks = new ActivationBlocks();  // of the current call's x, for the panel dots

    MatMul(WorkerPool pool) {
        this.pool = pool;
        this.tiles = new float[pool.numThreads()][];
        this.packs = new MemorySegment[pool.numThreads()];
        this.dotSums = new float[pool.numThreads()][8 * PanelKernel.ROWS];
        this.dotTokens = new int[pool.numThreads()][8];
    }

    void run(CpuWeight w, float[] x, int numTokens, float[] out, int outWidth) {
        if (w.panels() != null) {
            runPanels(w, x, numTokens, out, outWidth);
            return;
        }
        int cols = w.cols();
        if (numTokens == 1) {
            pool.parallelFor(w.rows(), 16, (long) w.rows() * cols, (thread, start, end) -> {
                for (int r = start; r < end; r++) out[r] = w.dot(r, x, 0);
            });
            return;
        }
        if (numTokens <= SMALL_BATCH) {
            // A few tokens (batched decode): dequantizing into the packed layout would cost more than the FMAs it
            // feeds, so rows are decoded four at a time into an L1/L2 buffer and dotted with every token's activations,
            // four rows by four tokens per pass (16 accumulators, 8 loads per 16 FMAs).
            pool.parallelFor(w.rows(), 16, (long) w.rows() * cols * numTokens, (thread, start, end) -> {
                float[] tile = tiles[thread];
                if (tile == null || tile.length < 4 * cols) tiles[thread] = tile = new float[Math.max(4 * cols, PackedGemm.WIDE_ROWS * cols)];
                int r = start;
                for (; r + 4 <= end; r += 4) {
                    for (int i = 0; i < 4; i++) w.dequantize(r + i, tile, i * cols);
                    int t = 0;
                    for (; t + 4 <= numTokens; t += 4) FloatDot.dot4x4(tile, x, t, cols, out, outWidth, r);
                    for (; t < numTokens; t++)
                        for (int i = 0; i < 4; i++) out[t * outWidth + r + i] = FloatDot.dot(tile, i * cols, x, t * cols, cols);
                }
                for (; r < end; r++) {
                    w.dequantize(r, tile, 0);
                    int t = 0;
                    for (; t + 4 <= numTokens; t += 4) FloatDot.dot4(tile, x, t, cols, out, outWidth, r);
                    for (; t < numTokens; t++) out[t * outWidth + r] = FloatDot.dot(tile, 0, x, t * cols, cols);
                }
            });
            return;
        }
        int wide = PackedGemm.WIDE_ROWS, narrow = PackedGemm.NARROW_ROWS;
        pool.parallelFor(w.rows(), wide, (long) w.rows() * cols * numTokens, (thread, start, end) -> {
            float[] tile = tiles[thread];
            if (tile == null || tile.length < wide * cols) tiles[thread] = tile = new float[wide * cols];
            MemorySegment pack = packs[thread];
            if (pack == null) packs[thread] = pack = PackedGemm.newPack();
            int r = start;
            for (int block = wide; block >= narrow; block -= wide - narrow) {
                for (; r + block <= end; r += block) {
                    for (int i = 0; i < block; i++) w.dequantize(r + i, tile, i * cols);
                    PackedGemm.multiply(tile, block, cols, pack, x, numTokens, out, outWidth, r);
                }
            }
            for (; r < end; r++) {
                w.dequantize(r, tile, 0);
                for (int t = 0; t < numTokens; t++) out[t * outWidth + r] = FloatDot.dot(tile, 0, x, t * cols, cols);
            }
        });
    }

    /**
     * A weight repacked into panels ({@link PanelKernel}). Up to SMALL_BATCH tokens dot 16 rows per pass, eight or four
     * tokens at a time (each widened weight vector feeds them all; Q4_0 measured 67-73 GMAC/s per thread at 4-16
     * tokens with groups of four against 43-65 for unpacking), with the same arithmetic for every token count, so a token's result does not
     * change when it is batched. More tokens unpack each K chunk of up to 48 rows straight into the packed layout (vector ops, no
     * transpose) and run the packed micro-kernel, except where the kernel has an integer GEMM (Q4_0): that multiplies
     * in 16-bit lanes on the int8 x, with each token's row the same bits as its one-token dot.
     */
    private void runPanels(CpuWeight w, float[] x, int numTokens, float[] out, int outWidth) {
        int cols = w.cols(), step = PanelKernel.ROWS;
        MemorySegment panels = w.panels();
        PanelKernel kernel = w.panelKernel();
        long panelBytes = kernel.panelBytes(cols);
        boolean integerGemm = numTokens > SMALL_BATCH && kernel.hasIntegerGemm();
        // An int8 kernel without an integer GEMM takes its batched dots for any number of tokens: a float GEMM would give a
        // prompt's tokens other bits than the same tokens get in a decode step.
        boolean dots = numTokens <= SMALL_BATCH || kernel.needsInt8() && !kernel.hasIntegerGemm();
        ActivationBlocks xBlocks = (dots || integerGemm) && kernel.needsInt8() ? int8Blocks(x, numTokens, cols) : null;
        if (numTokens == 1) {
            pool.parallelFor(w.rows(), step, (long) w.rows() * cols, (thread, start, end) -> {
                for (int r = start; r < end; r += step) kernel.dot(panels, (r / step) * panelBytes, cols, x, 0, xBlocks, out, r);
            });
            return;
        }
        if (dots) {
            pool.parallelFor(w.rows(), step, (long) w.rows() * cols * numTokens, (thread, start, end) -> {
                for (int r = start; r < end; r += step)
                    smallBatch(kernel, panels, (r / step) * panelBytes, cols, x, xBlocks, 0, numTokens, out, 0, r, outWidth, thread);
            });
            return;
        }
        int wide = PackedGemm.WIDE_ROWS;
        if (integerGemm) {
            runIntegerGemms(new CpuWeight[]{w}, 1, xBlocks, numTokens, new float[][]{out}, new int[]{outWidth});
            return;
        }
        pool.parallelFor(w.rows(), wide, (long) w.rows() * cols * numTokens, (thread, start, end) -> {
            MemorySegment pack = packs[thread];
            if (pack == null) packs[thread] = pack = PackedGemm.newPack();
            for (int r = start; r < end; ) {
                int block = Math.min(wide, end - r);
                for (int k0 = 0; k0 < cols; k0 += PackedGemm.K_CHUNK) {
                    int kn = Math.min(PackedGemm.K_CHUNK, cols - k0);
                    for (int i = 0; i < block; i += step)
                        kernel.unpack(panels, ((r + i) / step) * panelBytes, k0, kn, pack, block, i);
                    PackedGemm.multiplyPacked(pack, block, kn, x, cols, k0, numTokens, out, outWidth, r);
                }
                r += block;
            }
        });
    }

    /**
     * More than SMALL_BATCH tokens through panel weights that all have an integer GEMM and read the same x (a prefill's
     * q/k/v or gate/up): x's int8 blocks are made once, and every weight's 48-row units run in one parallel region, so
     * the small matrices (k, v) share one fork and join and fill the tail of the large ones.
     */
    void runIntegerGemms(CpuWeight[] ws, int n, float[] x, int numTokens, float[][] outs, int[] outWidths) {
        runIntegerGemms(ws, n, int8Blocks(x, numTokens, ws[0].cols()), numTokens, outs, outWidths);
    }

    private void runIntegerGemms(CpuWeight[] ws, int n, ActivationBlocks xBlocks, int numTokens, float[][] outs, int[] outWidths) {
        int cols = ws[0].cols(), unit = 3 * PanelKernel.ROWS;
        int[] firstUnit = new int[n + 1];
        long work = 0;
        for (int i = 0; i < n; i++) {
            if (!hasIntegerGemm(ws[i], cols))
                throw new IllegalArgumentException(ws[i].name() + " is not a panel matrix of width " + cols + " with an integer GEMM");
            firstUnit[i + 1] = firstUnit[i] + (ws[i].rows() + unit - 1) / unit;
            work += (long) ws[i].rows() * cols * numTokens;
        }
        pool.parallelFor(firstUnit[n], 1, work, (thread, start, end) -> {
            MemorySegment pack = packs[thread];
            if (pack == null) packs[thread] = pack = PackedGemm.newPack();
            int i = 0;
            for (int u = start; u < end; ) {
                while (u >= firstUnit[i + 1]) i++;
                CpuWeight w = ws[i];
                int last = Math.min(end, firstUnit[i + 1]), r = (u - firstUnit[i]) * unit, rEnd = Math.min(w.rows(), (last - firstUnit[i]) * unit);
                w.panelKernel().gemm(w.panels(), w.panelKernel().panelBytes(cols), r, rEnd - r, cols, xBlocks, numTokens, outs[i], outWidths[i], pack);
                u = last;
            }
        });
    }

    /** Whether all n weights are panel matrices of one width with an integer GEMM ({@link #runIntegerGemms} takes them). */
    static boolean allIntegerGemms(CpuWeight[] ws, int n) {
        for (int i = 0; i < n; i++) if (!hasIntegerGemm(ws[i], ws[0].cols())) return false;
        return true;
    }

    private static boolean hasIntegerGemm(CpuWeight w, int cols) {
        return w.panels() != null && w.panelKernel().hasIntegerGemm() && w.cols() == cols;
    }

    /**
     * One panel (16 rows at {@code r}) for 2-16 tokens, in groups of eight (five or more left), else four: the tokens
     * are rows xRow0.. of x, and token t's results go to out[outBase + t * outWidth + r ..].
     */
    private void smallBatch(PanelKernel kernel, MemorySegment panels, long panel, int cols, float[] x, ActivationBlocks xBlocks, int xRow0,
                            int numTokens, float[] out, int outBase, int r, int outWidth, int thread) {
        int[] xs = dotTokens[thread];
        for (int t = 0; t < numTokens; ) {
            // A short group repeats its last token.
            int left = numTokens - t, n = Math.min(left >= 5 ? 8 : 4, left), first = xRow0 + t;
            if (left >= 5) {
                for (int i = 0; i < 8; i++) xs[i] = (first + Math.min(i, n - 1)) * cols;
                kernel.dot8(panels, panel, cols, x, xs, xBlocks, n, out, outBase + t * outWidth + r, outWidth, dotSums[thread]);
            } else {
                int x0 = first * cols, x1 = (first + Math.min(1, n - 1)) * cols;
                int x2 = (first + Math.min(2, n - 1)) * cols, x3 = (first + n - 1) * cols;
                kernel.dot4(panels, panel, cols, x, x0, x1, x2, x3, xBlocks, n, out, outBase + t * outWidth + r, outWidth);
            }
            t += n;
        }
    }

    /**
     * outs[i][outOffsets[i] + t * outWidths[i] + r] = ws[i][r] · x[xRow0[i] + t] for t < counts[i] (1-16), for n panel
     * weights of one width, all in one parallel region instead of one fork and join each, with x's int8 blocks made
     * once: a decode step's q/k/v or gate/up (every weight on the same tokens), or its experts (each on its own few).
     * Each row has {@link #runPanels}' arithmetic for that many tokens, so results equal those of separate calls.
     *
     * @param numXRows rows of x (block sums are taken over all of them)
     */
    void runPanelGroups(CpuWeight[] ws, int n, float[] x, int numXRows, int[] xRow0, int[] counts, float[][] outs, int[] outOffsets,
                        int[] outWidths) {
        int cols = ws[0].cols(), step = PanelKernel.ROWS;
        int[] firstRow = firstRows(ws, n, cols);
        long work = 0;
        for (int i = 0; i < n; i++) work += (long) ws[i].rows() * cols * counts[i];
        ActivationBlocks xBlocks = anyNeedsInt8(ws, n) ? int8Blocks(x, numXRows, cols) : null;
        pool.parallelFor(firstRow[n], step, work, (thread, start, end) -> {
            int i = 0;
            for (int v = start; v < end; v += step) {
                while (v >= firstRow[i + 1]) i++;
                CpuWeight w = ws[i];
                int r = v - firstRow[i];
                long panel = (r / step) * w.panelKernel().panelBytes(cols);
                if (counts[i] == 1) w.panelKernel().dot(w.panels(), panel, cols, x, xRow0[i] * cols, xBlocks, outs[i], outOffsets[i] + r);
                else smallBatch(w.panelKernel(), w.panels(), panel, cols, x, xBlocks, xRow0[i], counts[i], outs[i], outOffsets[i], r,
                        outWidths[i], thread);
            }
        });
    }

    /**
     * x's int8 blocks ({@link ActivationBlocks}), over the pool when there are many (a prefill's: rounding 128 tokens of
     * 2048 columns on the caller alone left the other thread idle for 1.3% of a Q4_0 prefill).
     */
    private ActivationBlocks int8Blocks(float[] x, int numRows, int cols) {
        int n = numRows * cols / 32;
        ActivationBlocks blocks = activationBlocks.prepare(numRows, cols);
        pool.parallelFor(n, 16, 4L * n * 32, (thread, start, end) -> blocks.computeBlocks(x, start, end));
        return blocks;
    }

    /** Where each of the first n panel weights (all {@code cols} wide) starts in their rows laid end to end; [n] is the total. */
    private static int[] firstRows(CpuWeight[] ws, int n, int cols) {
        int[] firstRow = new int[n + 1];
        for (int i = 0; i < n; i++) {
            if (ws[i].panels() == null || ws[i].cols() != cols || ws[i].rows() % PanelKernel.ROWS != 0)
                throw new IllegalArgumentException(ws[i].name() + " is not a panel matrix of width " + cols);
            firstRow[i + 1] = firstRow[i] + ws[i].rows();
        }
        return firstRow;
    }

    private static boolean anyNeedsInt8(CpuWeight[] ws, int n) {
        for (int i = 0; i < n; i++) if (ws[i].panelKernel().needsInt8()) return true;
        return false;
    }
}
