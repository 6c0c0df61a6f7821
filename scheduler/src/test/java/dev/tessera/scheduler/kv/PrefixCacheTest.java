package dev.tessera.scheduler.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class PrefixCacheTest {

    /** Every block collides: only the token and parent comparison keeps lookups right. */
    private static final BlockHashFunction ALWAYS_42 = (parent, tokens, from, count) -> 42L;

    private static final int[] SHARED = {1, 2, 3, 4, 5, 6, 7, 8};

    /** A sequence that adopts its cached prefix, reserves the rest, and publishes its full blocks. */
    private static BlockTable prefill(KvBlockPool pool, int[] prompt, int expectedCachedTokens) {
        BlockTable table = new BlockTable(pool);
        assertEquals(expectedCachedTokens, table.adoptCachedPrefix(prompt, prompt.length - 1));
        assertTrue(table.append(prompt.length - table.numTokens()));
        table.cacheFullBlocks(prompt, prompt.length);
        pool.checkInvariants();
        return table;
    }

    private static int[] concat(int[] a, int... b) {
        int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void promptsSharingTwoBlocksShareExactlyThoseBlocks() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        BlockTable a = prefill(pool, concat(SHARED, 10, 11), 0);
        assertArrayEquals(new int[] {0, 1, 2}, a.blockIds());

        BlockTable b = prefill(pool, concat(SHARED, 20, 21, 22), 8);
        assertArrayEquals(new int[] {0, 1, 3}, b.blockIds());
        assertEquals(2, pool.refCount(0));
        assertEquals(2, pool.refCount(1));

        // diverges at token 5, inside block 2 of the prompt: only block 0 is shared
        BlockTable c = prefill(pool, new int[] {1, 2, 3, 4, 5, 99, 7, 8, 30}, 4);
        assertArrayEquals(new int[] {0, 4, 5}, c.blockIds());
        assertEquals(3, pool.refCount(0));
        assertEquals(2, pool.refCount(1));

        assertEquals(9 + 10 + 8, pool.numQueriedTokens(), "lookups see prompt length - 1 tokens");
        assertEquals(0 + 8 + 4, pool.numHitTokens());

        a.free();
        b.free();
        c.free();
        KvLeakCheck.assertAllFree(pool, 8);
        // blocks 0, 1 (shared prefix) and 4 (c's second block) stay cached for later prompts
        assertEquals(3, pool.numCachedIdle());
        assertTrue(pool.isCached(0) && pool.isCached(1) && pool.isCached(4));
        assertFalse(pool.isCached(2), "a partial block is never cached");
    }

    @Test
    void freedFullBlocksStayCachedUntilEvicted() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        prefill(pool, concat(SHARED, 9), 0).free();
        assertEquals(8, pool.numFree());
        assertEquals(2, pool.numCachedIdle());

        assertArrayEquals(new int[] {2, 3, 4, 5, 6}, pool.allocate(5), "empty blocks go before cached ones");
        BlockTable again = prefill(pool, concat(SHARED, 9), 8);
        assertArrayEquals(new int[] {0, 1, 7}, again.blockIds());
        assertEquals(0, pool.numFree());
        assertEquals(0, pool.numEvictions());
        again.free();
        pool.free(new int[] {2, 3, 4, 5, 6});
        KvLeakCheck.assertAllFree(pool, 8);
    }

    @Test
    void cachedIdleBlocksAreEvictedLeastRecentlyReleasedFirst() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        int[] x = {1, 1, 1, 1, 2, 2, 2, 2};
        int[] y = {3, 3, 3, 3, 4, 4, 4, 4};
        BlockTable tx = prefill(pool, concat(x, 0), 0);
        BlockTable ty = prefill(pool, concat(y, 0), 0);
        assertArrayEquals(new int[] {0, 1, 2}, tx.blockIds());
        assertArrayEquals(new int[] {3, 4, 5}, ty.blockIds());
        tx.free(); // releases 2 (empty), then 1, then 0: a sequence's tail goes before its prefix
        ty.free(); // then 4, then 3
        assertEquals(4, pool.numCachedIdle());

        // touching x's first block makes it most recently used: eviction order is now 1, 4, 3, 0
        BlockTable firstOfX = new BlockTable(pool);
        assertEquals(4, firstOfX.adoptCachedPrefix(x, 4));
        assertArrayEquals(new int[] {0}, firstOfX.blockIds());
        firstOfX.free();

        assertArrayEquals(new int[] {2, 5, 6, 7}, pool.allocate(4), "empty blocks first, lowest id first");
        assertEquals(0, pool.numEvictions());
        assertArrayEquals(new int[] {1, 4, 3}, pool.allocate(3));
        assertEquals(3, pool.numEvictions());
        assertArrayEquals(new int[] {}, pool.allocate(2), "one block left");
        assertTrue(pool.isCached(0));
        assertFalse(pool.isCached(1) || pool.isCached(3) || pool.isCached(4));

        pool.free(new int[] {2, 5, 6, 7});
        pool.free(new int[] {1, 4, 3});
        BlockTable xAgain = new BlockTable(pool);
        assertEquals(4, xAgain.adoptCachedPrefix(x, 8), "x's second block was evicted");
        BlockTable yAgain = new BlockTable(pool);
        assertEquals(0, yAgain.adoptCachedPrefix(y, 8));
        xAgain.free();
        KvLeakCheck.assertAllFree(pool, 8);
    }

    @Test
    void collidingHashesNeverReturnWrongBlocks() {
        KvBlockPool pool = new KvBlockPool(8, 4, ALWAYS_42);
        BlockTable a = prefill(pool, new int[] {1, 2, 3, 4, 5, 6, 7, 8, 0}, 0);
        assertArrayEquals(new int[] {0, 1, 2}, a.blockIds());
        // same hash everywhere, different tokens in block 2: only block 0 is shared
        BlockTable b = prefill(pool, new int[] {1, 2, 3, 4, 9, 9, 9, 9, 0}, 4);
        assertArrayEquals(new int[] {0, 3, 4}, b.blockIds());
        // same tokens as a's block 2 but after a different first block: nothing is shared
        BlockTable c = prefill(pool, new int[] {7, 7, 7, 7, 5, 6, 7, 8, 0}, 0);
        assertArrayEquals(new int[] {5, 6, 7}, c.blockIds());
        a.free();
        b.free();
        c.free();
        KvLeakCheck.assertAllFree(pool, 8);

        // all five full blocks sit in one bucket; each prompt still finds exactly its own
        assertArrayEquals(new int[] {0, 1}, pool.lookup(new int[] {1, 2, 3, 4, 5, 6, 7, 8}).blockIds());
        assertArrayEquals(new int[] {0, 3}, pool.lookup(new int[] {1, 2, 3, 4, 9, 9, 9, 9}).blockIds());
        assertArrayEquals(new int[] {5, 6}, pool.lookup(new int[] {7, 7, 7, 7, 5, 6, 7, 8}).blockIds());
        assertArrayEquals(new int[] {}, pool.lookup(new int[] {5, 6, 7, 8}).blockIds());
    }

    @Test
    void anEvictedParentNeverLinksToItsOldChildren() {
        // with every hash colliding, only the parent's generation tells the reused block 0 from the old one
        KvBlockPool pool = new KvBlockPool(2, 4, ALWAYS_42);
        int[] x = {1, 1, 1, 1, 2, 2, 2, 2};
        BlockTable tx = prefill(pool, x, 0);
        assertArrayEquals(new int[] {0, 1}, tx.blockIds());
        pool.free(new int[] {0}); // the parent is released before its child, so it is evicted first
        pool.free(new int[] {1});

        // block 0 is reused for a different first block; x's block 1 still hangs off the old block 0
        int[] z = {3, 3, 3, 3, 2, 2, 2, 2};
        BlockTable tz = new BlockTable(pool);
        assertEquals(0, tz.adoptCachedPrefix(z, 4));
        assertTrue(tz.append(4));
        assertArrayEquals(new int[] {0}, tz.blockIds());
        tz.cacheFullBlocks(z, 4);
        assertEquals(1, pool.generation(0));
        assertTrue(pool.isCached(1), "x's second block is still cached");
        assertArrayEquals(new int[] {0}, pool.lookup(z).blockIds(), "z's second block must be computed");
        pool.free(new int[] {0});
        tz.free();
        KvLeakCheck.assertAllFree(pool, 2);
    }

    @Test
    void aDuplicateComputedAtTheSameTimeStaysUncachedButLinksItsChildren() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        int[] prompt = concat(SHARED, 0);
        // both admitted before either computed: neither finds a cached prefix
        BlockTable a = new BlockTable(pool);
        BlockTable b = new BlockTable(pool);
        assertEquals(0, a.adoptCachedPrefix(prompt, 8));
        assertEquals(0, b.adoptCachedPrefix(prompt, 8));
        assertTrue(a.append(9));
        assertTrue(b.append(9));
        assertArrayEquals(new int[] {0, 1, 2}, a.blockIds());
        assertArrayEquals(new int[] {3, 4, 5}, b.blockIds());
        a.cacheFullBlocks(prompt, 9);
        b.cacheFullBlocks(prompt, 9);
        assertFalse(pool.isCached(3) || pool.isCached(4), "the duplicate keeps the first copy");

        // b decodes on and fills its third block, which chains to a's blocks 0 and 1
        int[] bSoFar = concat(prompt, 41, 42, 43);
        assertTrue(b.append(3));
        b.cacheFullBlocks(bSoFar, 12);
        assertTrue(pool.isCached(5));
        a.free();
        b.free();
        KvLeakCheck.assertAllFree(pool, 8);
        assertEquals(3, pool.numCachedIdle());
        assertArrayEquals(new int[] {0, 1, 5}, pool.lookup(bSoFar).blockIds());
    }

    @Test
    void promptOfExactlyFullBlocksLeavesTheLastBlockToCompute() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        prefill(pool, SHARED, 0).free();
        BlockTable again = prefill(pool, SHARED, 4);
        assertArrayEquals(new int[] {0, 2}, again.blockIds(), "block 1 is recomputed into a new block");
        again.free();
        KvLeakCheck.assertAllFree(pool, 8);
    }

    @Test
    void xxHashChainsParentAndTokens() {
        XxHashBlockHash h = XxHashBlockHash.INSTANCE;
        int[] tokens = {1, 2, 3, 4, 5, 6, 7, 8};
        long first = h.hash(BlockHashFunction.ROOT_HASH, tokens, 0, 4);
        assertEquals(first, h.hash(BlockHashFunction.ROOT_HASH, new int[] {9, 1, 2, 3, 4}, 1, 4));
        assertNotEquals(first, h.hash(BlockHashFunction.ROOT_HASH, tokens, 4, 4));
        assertNotEquals(first, h.hash(first, tokens, 0, 4), "same tokens, different parent");
        assertNotEquals(first, h.hash(BlockHashFunction.ROOT_HASH, new int[] {1, 2, 3, 5}, 0, 4));
        // a block too big for the thread's stack takes the malloc path and is still deterministic
        int[] big = new int[10_000];
        for (int i = 0; i < big.length; i++) {
            big[i] = i * 31;
        }
        long bigHash = h.hash(7L, big, 0, big.length);
        assertEquals(bigHash, h.hash(7L, big.clone(), 0, big.length));
        big[9_999]++;
        assertNotEquals(bigHash, h.hash(7L, big, 0, big.length));
    }
}
