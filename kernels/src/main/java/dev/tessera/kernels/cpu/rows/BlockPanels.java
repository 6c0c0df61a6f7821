package dev.tessera.kernels.cpu.rows;

/**
 * A panel kernel of 32-column blocks with dots on int8 x (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL): per 16-row panel, one
 * panel block holding the 16 rows' GGUF blocks for each 32 columns, the same bytes rearranged. This holds what they
 * share, as {@link SuperBlockPanels} does for the K-quants; each kernel lays out and reads its own panel blocks.
 */
abstract class BlockPanels implements PanelKernel {
    static final int BLOCK = 32;
    private final int panelBlockBytes;

    BlockPanels(int blockBytes) {
        this.panelBlockBytes = ROWS * blockBytes;
    }

    @Override
    public final boolean needsInt8() {
        return true;
    }

    @Override
    public final long panelBytes(int cols) {
        return (long) (cols / BLOCK) * panelBlockBytes;
    }
}
