package dev.tessera.kernels.cpu.rows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.stream.IntStream;

import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I64;
import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * Repacks a row-major tensor of 32-value blocks (f16 scale, then {@code blockBytes - 2} quant bytes) into the
 * {@link PanelKernel} layout: per 16-row panel and block, the 16 scales, then one 16-byte slice per quant byte j
 * holding byte j of rows 0..15. Eight rows by eight bytes are transposed at a time in eight longs (three rounds of
 * masked swaps), so a load moves 64 bytes with 16 long reads and writes instead of 128 byte ones; a byte-at-a-time
 * loop measured 200-260 MB/s here, several seconds for a 1B model.
 */
final class PanelRepack {
    private static final int ROWS = PanelKernel.ROWS;

    private PanelRepack() {}

    static MemorySegment repack(MemorySegment src, int rows, int cols, int blockBytes, Arena arena) {
        int numBlocks = cols / 32;
        return inChunks(src, rows, (long) numBlocks * ROWS * blockBytes, arena, (dst, p0, p1) -> repack(src, dst, p0, p1, numBlocks, blockBytes));
    }

    /** Writes panels [p0, p1) of {@code dst} from the GGUF tensor. */
    interface PanelRange {
        void write(MemorySegment dst, int p0, int p1);
    }

    /**
     * A panel copy of {@code rows / 16} panels of {@code panelBytes}, written by {@code range} in parallel chunks of
     * panels: the time goes mostly to page faults (the mapped source, the new copy), and those proceed in parallel on
     * separate cores. Segments of a confined arena are repacked on the calling thread alone.
     */
    static MemorySegment inChunks(MemorySegment src, int rows, long panelBytes, Arena arena, PanelRange range) {
        int numPanels = rows / ROWS, numChunks = Math.min(numPanels, 64);
        MemorySegment dst = PanelMemory.allocate(panelBytes * numPanels, arena);
        PanelMemory.populate(src);
        Thread other = new Thread(() -> { });
        IntStream chunks = IntStream.range(0, numChunks);
        if (src.isAccessibleBy(other) && dst.isAccessibleBy(other)) chunks = chunks.parallel();
        chunks.forEach(chunk -> range.write(dst, numPanels * chunk / numChunks, numPanels * (chunk + 1) / numChunks));
        return dst;
    }

    private static void repack(MemorySegment src, MemorySegment dst, int p0, int p1, int numBlocks, int blockBytes) {
        int qsBytes = blockBytes - 2, panelBlockBytes = ROWS * blockBytes;
        long rowBytes = (long) numBlocks * blockBytes, panelBytes = (long) numBlocks * panelBlockBytes;
        long[] x = new long[8];
        for (int p = p0; p < p1; p++) {
            long srcPanel = (long) p * ROWS * rowBytes, dstPanel = p * panelBytes;
            for (int b = 0; b < numBlocks; b++) {
                long s = srcPanel + (long) b * blockBytes, d = dstPanel + (long) b * panelBlockBytes;
                for (int i = 0; i < ROWS; i++) dst.set(I16, d + 2 * i, src.get(I16, s + i * rowBytes));
                for (int g = 0; g < ROWS; g += 8)
                    for (int c0 = 0; c0 < qsBytes; c0 += 8) {
                        for (int r = 0; r < 8; r++) x[r] = src.get(I64, s + (g + r) * rowBytes + 2 + c0);
                        transpose8(x);
                        for (int c = 0; c < 8; c++) dst.set(I64, d + 2 * ROWS + (long) (c0 + c) * ROWS + g, x[c]);
                    }
            }
        }
    }

    /**
     * Writes {@code numPairs} pair slices of one 16-row panel block: pair m (bytes 2m, 2m + 1 from {@code qs} into each
     * row at {@code s}, rows {@code rowBytes} apart) of row i goes to slice m at bytes 2i, 2i + 1, slices 32 bytes apart
     * from {@code d}. Four rows by four pairs move at a time in four longs.
     */
    static void pairSlices(MemorySegment src, long s, long rowBytes, int qs, int numPairs, MemorySegment dst, long d, long[] x) {
        for (int g = 0; g < ROWS; g += 4)
            for (int m0 = 0; m0 < numPairs; m0 += 4) {
                for (int r = 0; r < 4; r++) x[r] = src.get(I64, s + (g + r) * rowBytes + qs + 2 * m0);
                transpose4x16(x);
                for (int m = 0; m < 4; m++) dst.set(I64, d + 32L * (m0 + m) + 2 * g, x[m]);
            }
    }

    /** x[r] byte c (little-endian) becomes x[c] byte r. */
    static void transpose8(long[] x) {
        swap(x, 0, 1, 8, 0x00FF00FF00FF00FFL); swap(x, 2, 3, 8, 0x00FF00FF00FF00FFL);
        swap(x, 4, 5, 8, 0x00FF00FF00FF00FFL); swap(x, 6, 7, 8, 0x00FF00FF00FF00FFL);
        swap(x, 0, 2, 16, 0x0000FFFF0000FFFFL); swap(x, 1, 3, 16, 0x0000FFFF0000FFFFL);
        swap(x, 4, 6, 16, 0x0000FFFF0000FFFFL); swap(x, 5, 7, 16, 0x0000FFFF0000FFFFL);
        swap(x, 0, 4, 32, 0x00000000FFFFFFFFL); swap(x, 1, 5, 32, 0x00000000FFFFFFFFL);
        swap(x, 2, 6, 32, 0x00000000FFFFFFFFL); swap(x, 3, 7, 32, 0x00000000FFFFFFFFL);
    }

    /** x[r] 16-bit unit c (little-endian) becomes x[c] unit r, for r, c in 0..3. */
    static void transpose4x16(long[] x) {
        swap(x, 0, 1, 16, 0x0000FFFF0000FFFFL); swap(x, 2, 3, 16, 0x0000FFFF0000FFFFL);
        swap(x, 0, 2, 32, 0x00000000FFFFFFFFL); swap(x, 1, 3, 32, 0x00000000FFFFFFFFL);
    }

    private static void swap(long[] x, int a, int b, int shift, long mask) {
        long t = ((x[a] >>> shift) ^ x[b]) & mask;
        x[b] ^= t;
        x[a] ^= t << shift;
    }
}
