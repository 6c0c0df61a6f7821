package dev.tessera.kernels.cpu.rows;

import java.lang.foreign.MemorySegment;

/**
 * The loop the integer prefill GEMMs share ({@link Q4_0Gemm}, {@link Q4KGemm} and {@link Q5KGemm}, {@link Q6KGemm} and {@link Q3KGemm}, and in floats {@link Q8_0Gemm} and {@link IQ4Gemm}): per three panels (48
 * rows) and K chunk, each panel's weights are unpacked once into 16-bit pair vectors in a per-thread pack, then every
 * four tokens run over them.
 */
final class IntegerGemm {
    /** Panels at a time. */
    static final int VECTORS = 3;
    static final int ROWS = VECTORS * PanelKernel.ROWS;

    /** One weight type's unpack and inner block, over the pack it lays out. */
    interface Kernel {
        int kChunk();

        long packBytes();

        /** Columns [k0, k0 + kn) of the panel at {@code panelOffset} into slot v of the pack. */
        void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment pack, int v);

        /** Zeros slot v (fewer than three panels left): its sums are then 0 and never written out. */
        void clear(MemorySegment pack, int kn, int v);

        /** The chunk's sums for four tokens (x offsets x0..x3, later ones may repeat the last of n) added into out. */
        void chunk(MemorySegment pack, int kn, int k0, ActivationBlocks xBlocks, int x0, int x1, int x2, int x3, int n, int vectors,
                   float[] out, int o0, int outWidth);
    }

    private IntegerGemm() {}

    /**
     * out[t * outWidth + r0 + i] = W[r0 + i] · x[t] for rows [r0, r0 + rows) (whole panels) and every token, x as the
     * int8 blocks of {@code xBlocks}.
     */
    static void multiply(Kernel kernel, MemorySegment w, long panelBytes, int r0, int rows, int cols, ActivationBlocks xBlocks, int numTokens,
                         float[] out, int outWidth, MemorySegment pack) {
        if (pack.byteSize() < kernel.packBytes()) throw new IllegalArgumentException("pack of " + pack.byteSize() + " bytes, need " + kernel.packBytes());
        for (int r = r0; r < r0 + rows; r += ROWS) {
            int vectors = Math.min(VECTORS, (r0 + rows - r) / PanelKernel.ROWS);
            for (int k0 = 0; k0 < cols; k0 += kernel.kChunk()) {
                int kn = Math.min(kernel.kChunk(), cols - k0);
                for (int v = 0; v < VECTORS; v++) {
                    if (v < vectors) kernel.unpack(w, (long) (r / PanelKernel.ROWS + v) * panelBytes, k0, kn, pack, v);
                    else kernel.clear(pack, kn, v);
                }
                for (int t = 0; t < numTokens; t += 4) {
                    int n = Math.min(4, numTokens - t), x0 = t * cols, x1 = (t + Math.min(1, n - 1)) * cols;
                    int x2 = (t + Math.min(2, n - 1)) * cols, x3 = (t + n - 1) * cols;
                    kernel.chunk(pack, kn, k0, xBlocks, x0, x1, x2, x3, n, vectors, out, t * outWidth + r, outWidth);
                }
            }
        }
    }
}
