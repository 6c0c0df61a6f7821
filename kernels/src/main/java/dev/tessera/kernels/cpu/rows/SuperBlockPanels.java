package dev.tessera.kernels.cpu.rows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A K-quant panel kernel (Q2_K to Q6_K): per 16-row panel, one panel block of a fixed size for each 256-column
 * super-block, and dots on int8 x. This holds what they share: the panel's size and the repack in parallel chunks of
 * panels; each kernel writes its own panel blocks.
 */
abstract class SuperBlockPanels implements PanelKernel {
    static final int BLOCK = 256;
    private final int panelBlockBytes;

    SuperBlockPanels(int panelBlockBytes) {
        this.panelBlockBytes = panelBlockBytes;
    }

    @Override
    public final boolean needsInt8() {
        return true;
    }

    @Override
    public final long panelBytes(int cols) {
        return (long) (cols / BLOCK) * panelBlockBytes;
    }

    @Override
    public final MemorySegment repack(MemorySegment src, int rows, int cols, Arena arena) {
        int numBlocks = cols / BLOCK;
        return PanelRepack.inChunks(src, rows, panelBytes(cols), arena, (dst, p0, p1) -> repackPanels(src, dst, p0, p1, numBlocks));
    }

    /** Writes panels [p0, p1) of {@code dst}, {@code numBlocks} panel blocks each, from the GGUF tensor {@code src}. */
    abstract void repackPanels(MemorySegment src, MemorySegment dst, int p0, int p1, int numBlocks);
}
