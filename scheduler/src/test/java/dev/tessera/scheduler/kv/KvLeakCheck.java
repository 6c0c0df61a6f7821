package dev.tessera.scheduler.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The leak check the engine tests share: once every sequence is freed, the pool is whole again. */
final class KvLeakCheck {

    private KvLeakCheck() {}

    /** Every block is allocatable again (empty or cached idle), none is held, and the states add up. */
    static void assertAllFree(KvBlockPool pool, int startingFree) {
        pool.checkInvariants();
        assertEquals(startingFree, pool.numFree(), "KV blocks leaked: free count did not return to its start");
        assertEquals(0, pool.numUsed(), "KV blocks still held after every sequence was freed");
        for (int b = 0; b < pool.numTotal(); b++) {
            assertEquals(0, pool.refCount(b), "block " + b + " still referenced");
        }
        assertEquals(pool.numTotal(), pool.numEmpty() + pool.numCachedIdle());
    }
}
