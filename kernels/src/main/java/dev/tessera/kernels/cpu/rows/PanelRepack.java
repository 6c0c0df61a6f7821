package dev.tessera.kernels.cpu.rows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.stream.IntStream;

import static dev.tessera.kernels.cpu.rows.VectorLanes.I16;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I32;
import static dev.tessera.kernels.cpu.rows.VectorLanes.I64;

/**
 * Shared steps of the {@link PanelKernel} repacks: a parallel panel copy, and the pair-slice transpose of 16 rows'
 * quant bytes (four rows by four byte pairs at a time in four longs, so a load moves 32 bytes with 8 long reads and
 * writes instead of 64 byte ones; a byte-at-a-time loop measured 200-260 MB/s here, several seconds for a 1B model).
 */
final class PanelRepack {
    private static final int ROWS = PanelKernel.ROWS;

    private PanelRepack() {}

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

    /**
     * Panels of a tensor of 32-value blocks of {@code blockBytes}, an f16 scale then the quant bytes (Q4_0, Q8_0): per
     * 16-row panel and block, the 16 scales, then the quant bytes as pair slices ({@link #pairSlices}).
     */
    static MemorySegment scalesAndPairSlices(MemorySegment src, int rows, int cols, int blockBytes, Arena arena) {
        return halvesAndPairSlices(src, rows, cols, blockBytes, 1, arena);
    }

    /**
     * As {@link #scalesAndPairSlices} for blocks that start with {@code halves} f16 values (Q4_1: d, m): per panel block
     * the 16 rows' first half, then their second, ..., then the pair slices.
     */
    static MemorySegment halvesAndPairSlices(MemorySegment src, int rows, int cols, int blockBytes, int halves, Arena arena) {
        int numBlocks = cols / 32, numPairs = (blockBytes - 2 * halves) / 2, panelBlockBytes = ROWS * blockBytes;
        long rowBytes = (long) numBlocks * blockBytes;
        return inChunks(src, rows, (long) numBlocks * panelBlockBytes, arena, (dst, p0, p1) -> {
            long[] x = new long[4];
            for (int p = p0; p < p1; p++)
                for (int b = 0; b < numBlocks; b++) {
                    long s = (long) p * ROWS * rowBytes + (long) b * blockBytes, d = ((long) p * numBlocks + b) * panelBlockBytes;
                    for (int h = 0; h < halves; h++)
                        for (int i = 0; i < ROWS; i++) dst.set(I16, d + 2L * ROWS * h + 2 * i, src.get(I16, s + i * rowBytes + 2 * h));
                    pairSlices(src, s, rowBytes, 2 * halves, numPairs, dst, d + 2L * ROWS * halves, x);
                }
        });
    }

    /**
     * Panels of Q5_0 or Q5_1 (32-value blocks: {@code halves} f16 values, u32 qh, u8 qs[16]): per 16-row panel and block,
     * the rows' halves as {@link #halvesAndPairSlices} writes them, then a plane of fifth bits, then the 8 pair slices of
     * qs. The plane is 32 shorts, one per lane 2i + p (row i, column parity p): its bit j is the fifth bit of slice j's
     * low-nibble value there (column 2j + p), bit 8 + j that of the high-nibble value (column 16 + 2j + p), so one vector
     * load gives a block's bits and an and and a compare make each slice's mask. The same bytes as GGUF.
     */
    static MemorySegment halvesFifthBitsAndPairSlices(MemorySegment src, int rows, int cols, int blockBytes, int halves, Arena arena) {
        int numBlocks = cols / 32, panelBlockBytes = ROWS * blockBytes, qh = 2 * halves;
        long rowBytes = (long) numBlocks * blockBytes;
        return inChunks(src, rows, (long) numBlocks * panelBlockBytes, arena, (dst, p0, p1) -> {
            long[] x = new long[4];
            for (int p = p0; p < p1; p++)
                for (int b = 0; b < numBlocks; b++) {
                    long s = (long) p * ROWS * rowBytes + (long) b * blockBytes, d = ((long) p * numBlocks + b) * panelBlockBytes;
                    for (int h = 0; h < halves; h++)
                        for (int i = 0; i < ROWS; i++) dst.set(I16, d + 2L * ROWS * h + 2 * i, src.get(I16, s + i * rowBytes + 2 * h));
                    long bitsAt = d + 2L * ROWS * halves;
                    for (int i = 0; i < ROWS; i++) {
                        int high = src.get(I32, s + i * rowBytes + qh);
                        for (int c = 0; c < 2; c++) {
                            int plane = 0;
                            for (int j = 0; j < 8; j++) plane |= (high >>> (2 * j + c) & 1) << j | (high >>> (16 + 2 * j + c) & 1) << (8 + j);
                            dst.set(I16, bitsAt + 2L * (2 * i + c), (short) plane);
                        }
                    }
                    pairSlices(src, s, rowBytes, qh + 4, 8, dst, bitsAt + 64, x);
                }
        });
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
