package dev.tessera.kernels.cpu.rows;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Memory for panel copies. Arena.allocate zero-fills through 4 KiB page faults, which cost ~4.5 µs each on the
 * VM this was measured on (600 MB took 2.5-3.2 s, most of a 1B model's repack time). On Linux the copy is instead
 * mapped anonymously (already zero) with MADV_HUGEPAGE over its whole 2 MiB pages, so it faults 512 times less
 * often; the tail under 2 MiB keeps small pages, so no memory is resident beyond the copy. Anywhere the calls are
 * missing or fail, Arena.allocate is used.
 */
final class PanelMemory {
    private static final long HUGE = 2L << 20;
    private static final int PROT_READ_WRITE = 3, MAP_PRIVATE_ANONYMOUS = 0x22, MADV_HUGEPAGE = 14, MADV_POPULATE_READ = 22;
    private static final MethodHandle MMAP, MUNMAP, MADVISE;

    static {
        MethodHandle mmap = null, munmap = null, madvise = null;
        try {
            if (System.getProperty("os.name", "").startsWith("Linux")) {
                Linker linker = Linker.nativeLinker();
                var libc = linker.defaultLookup();
                mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(),
                        FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
                munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
                madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
            }
        } catch (RuntimeException | Error e) {
            mmap = munmap = madvise = null;
        }
        MMAP = mmap;
        MUNMAP = munmap;
        MADVISE = madvise;
    }

    private PanelMemory() {}

    /**
     * Maps all pages of a mapped-file segment in one call (MADV_POPULATE_READ, Linux 5.14+) instead of one fault per
     * 64 KiB as the repack reads them; ignored where unsupported.
     */
    static void populate(MemorySegment mapped) {
        if (MADVISE == null || !mapped.isMapped() || mapped.byteSize() == 0) return;
        long start = mapped.address() & -4096L, end = mapped.address() + mapped.byteSize();
        try {
            int ignored = (int) MADVISE.invokeExact(MemorySegment.ofAddress(start), end - start, MADV_POPULATE_READ);
        } catch (Throwable e) {
            // only a hint
        }
    }

    /** {@code size} zeroed bytes, 64-byte aligned, freed with {@code arena}. */
    static MemorySegment allocate(long size, Arena arena) {
        if (MMAP == null || size < HUGE) return arena.allocate(size, 64);
        try {
            long reserved = size + HUGE;
            MemorySegment base = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, reserved, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
            if (base.address() == -1L) return arena.allocate(size, 64);
            long aligned = (base.address() + HUGE - 1) & -HUGE;
            int ignored = (int) MADVISE.invokeExact(MemorySegment.ofAddress(aligned), size & -HUGE, MADV_HUGEPAGE);
            long baseAddress = base.address();
            return MemorySegment.ofAddress(aligned).reinterpret(size, arena, s -> unmap(baseAddress, reserved));
        } catch (Throwable e) {
            return arena.allocate(size, 64);
        }
    }

    private static void unmap(long address, long size) {
        try {
            int ignored = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(address), size);
        } catch (Throwable e) {
            throw new IllegalStateException("munmap failed", e);
        }
    }
}
