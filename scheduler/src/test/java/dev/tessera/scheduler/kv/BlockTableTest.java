package dev.tessera.scheduler.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class BlockTableTest {

    @Test
    void allocatesABlockOnlyWhenTheLastOneIsFull() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        BlockTable table = new BlockTable(pool);
        assertEquals(1, table.numBlocksNeeded(1));
        assertTrue(table.append(1));
        assertArrayEquals(new int[] {0}, table.blockIds());
        assertEquals(0, table.numBlocksNeeded(3));
        assertTrue(table.append(3));
        assertArrayEquals(new int[] {0}, table.blockIds(), "four tokens fit one block");
        assertTrue(table.append(1));
        assertArrayEquals(new int[] {0, 1}, table.blockIds());
        assertTrue(table.append(6));
        assertArrayEquals(new int[] {0, 1, 2}, table.blockIds());
        assertEquals(11, table.numTokens());
        assertEquals(5, pool.numFree());
        table.free();
        assertEquals(0, table.numBlocks());
        KvLeakCheck.assertAllFree(pool, 8);
    }

    @Test
    void mapsPositionsToBlockAndOffset() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        int[] taken = pool.allocate(2); // blocks 0 and 1 belong to someone else
        BlockTable table = new BlockTable(pool);
        assertTrue(table.append(6));
        assertArrayEquals(new int[] {2, 3}, table.blockIds());
        assertEquals(2, table.blockOf(0));
        assertEquals(0, table.offsetOf(0));
        assertEquals(2, table.blockOf(3));
        assertEquals(3, table.offsetOf(3));
        assertEquals(3, table.blockOf(4));
        assertEquals(0, table.offsetOf(4));
        assertEquals(3, table.blockOf(5));
        assertEquals(1, table.offsetOf(5));
        assertEquals(3 * 4 + 1, table.slotOf(5));
        assertThrows(IndexOutOfBoundsException.class, () -> table.blockOf(6), "slot 6 is not reserved yet");
        assertThrows(IndexOutOfBoundsException.class, () -> table.blockOf(-1));
        table.free();
        pool.free(taken);
        KvLeakCheck.assertAllFree(pool, 8);
    }

    @Test
    void appendIsAllOrNothingWhenThePoolIsFull() {
        KvBlockPool pool = new KvBlockPool(8, 4);
        BlockTable first = new BlockTable(pool);
        BlockTable second = new BlockTable(pool);
        assertTrue(first.append(6 * 4));
        assertTrue(second.append(3));
        assertArrayEquals(new int[] {6}, second.blockIds());
        assertFalse(second.append(2 + 4 + 4), "needs 3 more blocks, 1 is free");
        assertEquals(3, second.numTokens(), "a failed append reserves nothing");
        assertArrayEquals(new int[] {6}, second.blockIds());
        assertEquals(1, pool.numFree());

        first.free(); // preempted: its blocks come back at once
        assertTrue(second.append(2 + 4 + 4));
        assertArrayEquals(new int[] {6, 0, 1, 2}, second.blockIds());
        second.free();
        KvLeakCheck.assertAllFree(pool, 8);
    }
}
