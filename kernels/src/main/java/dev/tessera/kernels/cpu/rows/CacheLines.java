package dev.tessera.kernels.cpu.rows;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static dev.tessera.kernels.cpu.rows.VectorLanes.U8;

/**
 * Reads one byte of every cache line of a weight block before the dot works through it, on Intel CPUs only. A
 * one-token dot streams its weights from memory, and its vector loads expose only a few misses at a time ahead of
 * the arithmetic; loading each line of the block up front puts all of its misses in flight at once (Java has no
 * prefetch instruction; these are plain loads whose sum is kept alive by {@link #keep}). Measured on 2-thread Q4_K_M
 * decodes, alternating builds: on a Sapphire Rapids VM 19.2-19.6 without, 20.1-20.9 tok/s with the current block
 * touched (the next block instead, one 2432-byte panel block of the Q4_K layout then, or 4096 bytes ahead, was no better than none); on an AMD EPYC (Zen 5) VM
 * the touch cost instead, 37.9-47.7 without against 32.5-41.8 with over seven rounds (six won without), and one
 * thread 29.6 against 27.0.
 */
final class CacheLines {
    /** Whether the dots touch a block's lines first: a constant, so C2 drops the loop where it is off. */
    static final boolean ENABLED = intel();

    private CacheLines() {}

    /** The sum of one byte from each 64-byte line of [from, to), or 0 where touching is off. */
    static int touch(MemorySegment w, long from, long to) {
        if (!ENABLED) return 0;
        int sum = 0;
        for (long a = from; a < to; a += 64) sum += w.get(U8, a);
        return sum;
    }

    /** Consumes a {@link #touch} sum so the compiler keeps its loads (no sum of bytes reaches this value). */
    static void keep(int touched) {
        if (touched == Integer.MIN_VALUE) throw new IllegalStateException("unreachable line sum");
    }

    private static boolean intel() {
        try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("vendor_id")).findFirst().map(l -> l.contains("GenuineIntel")).orElse(false);
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }
}
