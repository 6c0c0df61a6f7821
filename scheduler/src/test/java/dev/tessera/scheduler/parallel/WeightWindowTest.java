package dev.tessera.scheduler.parallel;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WeightWindowTest {
    /** Blocks that record how many are alive (allocated and not yet freed by their arena). */
    static final class CountingSource implements WeightWindow.BlockSource<MemorySegment> {
        final AtomicInteger alive = new AtomicInteger(), peak = new AtomicInteger(), loads = new AtomicInteger();
        final long sleepMillis;

        CountingSource(long sleepMillis) { this.sleepMillis = sleepMillis; }

        @Override
        public MemorySegment load(int index, Arena arena) {
            try { Thread.sleep(sleepMillis); } catch (InterruptedException e) { throw new IllegalStateException(e); }
            MemorySegment s = arena.allocate(1024);
            s.set(java.lang.foreign.ValueLayout.JAVA_INT, 0, index);
            peak.accumulateAndGet(alive.incrementAndGet(), Math::max);
            loads.incrementAndGet();
            // Count the block freed when its arena closes.
            arena.allocate(1).reinterpret(arena, seg -> alive.decrementAndGet());
            return s;
        }
    }

    @Test
    void windowOfTwoNeverHoldsMoreThanTwoBlocksAndCyclesInOrder() {
        CountingSource source = new CountingSource(1);
        TpStats stats = new TpStats(6);
        try (WeightWindow w = new WeightWindow(source, 6, 2, stats)) {
            for (int step = 0; step < 3; step++) {
                for (int b = 0; b < 6; b++) {
                    MemorySegment s = w.acquire(b);
                    assertEquals(b, s.get(java.lang.foreign.ValueLayout.JAVA_INT, 0));
                    try { Thread.sleep(3); } catch (InterruptedException e) { throw new IllegalStateException(e); }
                    w.release(b);
                }
            }
            assertTrue(w.peakResidentBlocks() <= 2, "peak " + w.peakResidentBlocks());
        }
        assertTrue(source.peak.get() <= 2, "peak alive " + source.peak.get());
        assertEquals(0, source.alive.get(), "all blocks freed after close");
        assertTrue(source.loads.get() >= 18, "every use loads its block again: " + source.loads.get());
        // Loads (1 ms) are shorter than compute (3 ms): after the first block, compute should barely wait.
        assertTrue(stats.totalWaitNanos() < stats.totalLoadNanos(), stats.summary("test"));
    }

    @Test
    void windowZeroLoadsEverythingOnce() {
        CountingSource source = new CountingSource(0);
        try (WeightWindow w = new WeightWindow(source, 5, 0, new TpStats(5))) {
            for (int step = 0; step < 3; step++) for (int b = 0; b < 5; b++) { w.acquire(b); w.release(b); }
            assertEquals(5, w.peakResidentBlocks());
        }
        assertEquals(5, source.loads.get());
    }

    @Test
    void outOfOrderUseAndWindowOfOneAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new WeightWindow(new CountingSource(0), 4, 1, new TpStats(4)));
        try (WeightWindow w = new WeightWindow(new CountingSource(0), 4, 2, new TpStats(4))) {
            assertThrows(IllegalStateException.class, () -> w.acquire(1));
        }
    }

    @Test
    void aFailingLoadSurfacesOnAcquire() {
        WeightWindow.BlockSource<Object> broken = (i, arena) -> { throw new IllegalStateException("disk gone at block " + i); };
        try (WeightWindow w = new WeightWindow(broken, 4, 2, new TpStats(4))) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> w.acquire(0));
            assertEquals("disk gone at block 0", e.getMessage());
        }
    }
}
