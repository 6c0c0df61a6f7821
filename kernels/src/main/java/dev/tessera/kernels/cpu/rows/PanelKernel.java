package dev.tessera.kernels.cpu.rows;

import dev.tessera.kernels.TensorType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Reads a weight repacked at load into panels of {@link #ROWS} rows (the idea behind ggml-cpu's repacked layouts):
 * for each panel and each 32-column block, the 16 rows' f16 scales, then byte slices that each widen into one float
 * vector of the 16 rows at one column. The matmul then needs no transpose: many tokens unpack K chunks straight into
 * the column-major packed form, few tokens dot 16 rows at once. A panel copy has the GGUF tensor's size.
 * <p>
 * Panels exist only where a float vector has 16 lanes (AVX-512) and the row count is a multiple of 16. The K-quants
 * keep their values' bytes transposed the same way, with their headers decoded at load where decoding them per block
 * and panel cost the dot its speed (Q4_K's d/dmin as floats and 6-bit scales as bytes; Q6_K's d as floats).
 */
public interface PanelKernel {
    int ROWS = 16;

    /** The panel kernel for {@code type} at this shape, or null where the row layout is kept. */
    static PanelKernel forType(TensorType type, int rows, int cols) {
        if (VectorLanes.L != ROWS || rows % ROWS != 0 || cols % 32 != 0) return null;
        return switch (type) {
            case Q4_0 -> Q4_0Panels.INSTANCE;
            case Q4_1 -> Q4_1Panels.INSTANCE;
            case Q5_0 -> Q5_0Panels.INSTANCE;
            case Q5_1 -> Q5_1Panels.INSTANCE;
            case Q8_0 -> Q8_0Panels.INSTANCE;
            case Q2_K -> Q2KPanels.INSTANCE;
            case Q3_K -> Q3KPanels.INSTANCE;
            case Q4_K -> Q4KPanels.INSTANCE;
            case Q5_K -> Q5KPanels.INSTANCE;
            case Q6_K -> Q6KPanels.INSTANCE;
            case IQ4_NL -> IQ4NLPanels.INSTANCE;
            case IQ4_XS -> IQ4XSPanels.INSTANCE;
            default -> null;
        };
    }

    /**
     * Whether the dots read x rounded to int8 per block ({@link ActivationBlocks}) instead of x: 4-bit weights times
     * int8 activations summed in 16-bit lanes take half the vector instructions of widening every weight to a float,
     * and the block's offset or min takes the int8 block sum once per block. Others may be passed null.
     */
    default boolean needsInt8() {
        return false;
    }

    /**
     * The integer GEMM that many tokens (prefill) go through on the int8 x (in 16-bit lanes, or for Q8_0 and IQ4 in floats that
     * hold exact integers), instead of {@link #unpack} and the float GEMM; null where there is none.
     */
    default IntegerGemm.Kernel integerGemm() {
        return null;
    }

    /** Whether many tokens go through {@link #gemm}. */
    default boolean hasIntegerGemm() {
        return integerGemm() != null;
    }

    /**
     * out[t * outWidth + r0 + i] = W[r0 + i] · x[t] for rows [r0, r0 + rows) (one to three whole panels) and all
     * {@code numTokens} tokens of {@code xBlocks}, each token's row the same bits as its {@link #dot}; {@code pack} is
     * the calling thread's scratch. Only where {@link #hasIntegerGemm}.
     */
    default void gemm(MemorySegment w, long panelBytes, int r0, int rows, int cols, ActivationBlocks xBlocks, int numTokens, float[] out,
                      int outWidth, MemorySegment pack) {
        if (integerGemm() == null) throw new UnsupportedOperationException("no integer GEMM for " + getClass().getSimpleName());
        IntegerGemm.multiply(integerGemm(), w, panelBytes, r0, rows, cols, xBlocks, numTokens, out, outWidth, pack);
    }

    /** Bytes of one panel: all its blocks. */
    long panelBytes(int cols);

    /** The panel layout of a row-major GGUF tensor ({@code rows} x {@code cols}), in memory of {@code arena}. */
    MemorySegment repack(MemorySegment src, int rows, int cols, Arena arena);

    /**
     * Writes columns [k0, k0 + kn) of the panel at {@code panelOffset} column-major as native floats:
     * {@code packed[(k - k0) * stride + col0 + i] = W[i][k]} (float indices). k0 and kn are multiples of 32; the values equal the row
     * kernel's dequantized ones (a zero may lose its sign, which changes no sum).
     */
    void unpack(MemorySegment w, long panelOffset, int k0, int kn, MemorySegment packed, int stride, int col0);

    /**
     * out[outOffset + i] = W[i] · x[xOffset..] for the panel's 16 rows (one-token matmul), with the same arithmetic
     * as {@link #dot4}, so a token's result is the same alone or in a batch.
     */
    void dot(MemorySegment w, long panelOffset, int cols, float[] x, int xOffset, ActivationBlocks xBlocks, float[] out, int outOffset);

    /**
     * out[t * outWidth + o0 + i] = W[i] · x[t] for four tokens at x offsets x0..x3 (batched decode): each widened
     * weight vector feeds four tokens' FMAs. x3 (and x2) may repeat an earlier token for smaller groups; only
     * {@code numTokens} rows of out are written.
     */
    void dot4(MemorySegment w, long panelOffset, int cols, float[] x, int x0, int x1, int x2, int x3, ActivationBlocks xBlocks,
              int numTokens, float[] out, int o0, int outWidth);

    /**
     * As {@link #dot4} for eight tokens at x offsets {@code xs[0..8)} (later ones may repeat an earlier token): one
     * widened weight vector feeds eight FMAs, so a batch of eight decode tokens dequantizes each weight once instead
     * of twice. Per token the arithmetic is {@link #dot}'s; {@code acc} is scratch of at least 8 * 16 floats.
     */
    default void dot8(MemorySegment w, long panelOffset, int cols, float[] x, int[] xs, ActivationBlocks xBlocks, int numTokens, float[] out,
                      int o0, int outWidth, float[] acc) {
        // Two passes of dot4 (the panel is read again from L1/L2): in the int8 kernels eight tokens' sums would not fit
        // the registers next to the decode.
        dot4(w, panelOffset, cols, x, xs[0], xs[1], xs[2], xs[3], xBlocks, Math.min(numTokens, 4), out, o0, outWidth);
        if (numTokens > 4)
            dot4(w, panelOffset, cols, x, xs[4], xs[5], xs[6], xs[7], xBlocks, numTokens - 4, out, o0 + 4 * outWidth, outWidth);
    }

    /** Row {@code i} (0..15) of the panel at {@code panelOffset}, all {@code cols} values (embedding lookups). */
    void dequantizeRow(MemorySegment w, long panelOffset, int i, int cols, float[] out, int outOffset);
}
