package dev.tessera.scheduler.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class KvBlockPoolTest {

    private static final int[] NONE = {};

    @Test
    void allocatesLowestEmptyIdsFirstInAscendingOrder() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        assertEquals(8, pool.numTotal());
        assertEquals(4, pool.blockSize());
        assertArrayEquals(new int[] {0, 1, 2}, pool.allocate(3));
        assertArrayEquals(new int[] {3, 4}, pool.allocate(2));
        pool.free(new int[] {0, 1, 2});
        assertEquals(6, pool.numFree());
        assertArrayEquals(new int[] {0, 1, 2, 5}, pool.allocate(4));
        pool.free(new int[] {3});
        assertArrayEquals(new int[] {3, 6, 7}, pool.allocate(3));
        assertEquals(0, pool.numFree());
        pool.checkInvariants();
        pool.free(new int[] {0, 1, 2, 5});
        pool.free(new int[] {4});
        pool.free(new int[] {3, 6, 7});
        KvLeakCheck.assertAllFree(pool, 8);
    }

    @Test
    void allocateReturnsNoBlocksWhenFullAndChangesNothing() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        int[] all = pool.allocate(8);
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7}, all);
        assertArrayEquals(NONE, pool.allocate(1));
        assertEquals(0, pool.numFree());
        assertEquals(1.0, pool.usage());

        pool.free(new int[] {5});
        assertArrayEquals(NONE, pool.allocate(2), "two blocks asked, one free: all or nothing");
        assertEquals(1, pool.numFree());
        assertEquals(0, pool.refCount(5));
        assertArrayEquals(new int[] {5}, pool.allocate(1));
        pool.free(all);
        KvLeakCheck.assertAllFree(pool, 8);
    }

    @Test
    void zeroBlocksIsEmptyAndNegativeIsAnError() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        assertArrayEquals(NONE, pool.allocate(0));
        assertThrows(IllegalArgumentException.class, () -> pool.allocate(-1));
        assertThrows(IllegalArgumentException.class, () -> new KvBlockPool(0, 16));
        assertThrows(IllegalArgumentException.class, () -> new KvBlockPool(8, 0));
        KvLeakCheck.assertAllFree(pool, 8);
    }

    @Test
    void sharedBlocksStayInUseUntilEveryHolderFrees() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        int[] prompt = pool.allocate(2);
        assertArrayEquals(new int[] {0, 1}, prompt);
        pool.share(prompt); // a second child of an n = 2 request
        assertEquals(2, pool.refCount(0));
        assertEquals(2, pool.refCount(1));
        assertEquals(2, pool.numUsed());
        assertEquals(0.25, pool.usage());

        pool.free(prompt);
        assertEquals(1, pool.refCount(0));
        assertEquals(6, pool.numFree(), "one holder left: the blocks stay in use");
        assertArrayEquals(new int[] {2}, pool.allocate(1), "a shared block is never handed out again");

        pool.free(prompt);
        pool.free(new int[] {2});
        KvLeakCheck.assertAllFree(pool, 8);
        assertThrows(IllegalStateException.class, () -> pool.free(new int[] {0}), "double free is a bug");
        assertThrows(IllegalStateException.class, () -> pool.share(new int[] {0}), "share of a free block");
        assertThrows(IllegalStateException.class, () -> pool.free(new int[] {8}), "id outside the pool");
    }

    @Test
    void numBlocksForDividesMemoryByBlockBytes() {
        // 2 layers x (K + V) x 16 tokens x 4 KV heads x 8 headDim x 4 bytes = 8192 bytes per block
        long bytesPerBlock = 2L * 2 * 16 * 4 * 8 * 4;
        assertEquals(8, KvBlockPool.numBlocksFor(8 * bytesPerBlock + bytesPerBlock - 1, bytesPerBlock));
        assertEquals(0, KvBlockPool.numBlocksFor(bytesPerBlock - 1, bytesPerBlock));
    }
}
