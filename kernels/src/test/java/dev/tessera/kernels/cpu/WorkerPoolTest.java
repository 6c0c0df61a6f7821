package dev.tessera.kernels.cpu;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WorkerPoolTest {

    @Test
    void coversEveryIndexExactlyOnce() {
        try (WorkerPool pool = new WorkerPool(3)) {
            for (int n : new int[]{1, 31, 32, 96, 1000}) {
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                pool.parallelFor(n, 16, Long.MAX_VALUE, (thread, start, end) -> { for (int i = start; i < end; i++) hits.incrementAndGet(i); });
                for (int i = 0; i < n; i++) assertEquals(1, hits.get(i), "n=" + n + " index " + i);
            }
        }
    }

    @Test
    void workerFailureReachesTheCaller() {
        try (WorkerPool pool = new WorkerPool(2)) {
            // The caller's first chunk is slow, so the worker takes the rest, and fails.
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pool.parallelFor(64, 16, Long.MAX_VALUE, (thread, start, end) -> {
                if (thread == 0) sleep(200);
                else throw new IllegalArgumentException("boom in worker");
            }));
            assertEquals("boom in worker", e.getMessage());
            // The pool keeps working after a failure.
            AtomicIntegerArray hits = new AtomicIntegerArray(64);
            pool.parallelFor(64, 16, Long.MAX_VALUE, (thread, start, end) -> { for (int i = start; i < end; i++) hits.incrementAndGet(i); });
            for (int i = 0; i < 64; i++) assertEquals(1, hits.get(i));
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void eachThreadRunsItsOwnShareFrontToBack() {
        try (WorkerPool pool = new WorkerPool(2)) {
            for (int round = 0; round < 20; round++) {
                java.util.List<int[]> callerChunks = new java.util.ArrayList<>();
                AtomicIntegerArray hits = new AtomicIntegerArray(64);
                pool.parallelFor(64, 1, Long.MAX_VALUE, (thread, start, end) -> {
                    if (thread == 0) callerChunks.add(new int[]{start, end});
                    for (int i = start; i < end; i++) hits.incrementAndGet(i);
                });
                for (int i = 0; i < 64; i++) assertEquals(1, hits.get(i));
                // The caller's share is [0, 32): its chunks there run in order, each starting where the last ended, so it
                // reads one run of rows; only after that may it take from the worker's share.
                int next = 0;
                for (int[] c : callerChunks) {
                    if (c[0] >= 32) break;
                    assertEquals(next, c[0], "round " + round);
                    next = c[1];
                }
                assertTrue(next > 0, "the caller ran none of its own share first");
            }
        }
    }

    @Test
    void aSlowThreadTakesFewerChunks() {
        try (WorkerPool pool = new WorkerPool(2)) {
            AtomicIntegerArray byThread = new AtomicIntegerArray(2);
            pool.parallelFor(64, 1, Long.MAX_VALUE, (thread, start, end) -> {
                if (thread == 0) sleep(100);
                byThread.addAndGet(thread, end - start);
            });
            assertEquals(64, byThread.get(0) + byThread.get(1));
            // Static halves would give the sleeping caller 32 indices; it finishes one chunk while the worker does the rest.
            assertTrue(byThread.get(0) < 32, "caller took " + byThread.get(0));
        }
    }
}
