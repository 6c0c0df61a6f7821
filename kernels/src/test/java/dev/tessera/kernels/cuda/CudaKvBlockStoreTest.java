package dev.tessera.kernels.cuda;

import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCacheType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Host-side rules and layout of the paged CUDA KV store; no GPU needed. */
class CudaKvBlockStoreTest {

    @Test
    void onlyBlocksOfSixteenPositionsAreAccepted() {
        assertDoesNotThrow(() -> CudaKvBlockStore.validate(16, 8, 64, 16, 100, KvCacheType.F32));
        assertDoesNotThrow(() -> CudaKvBlockStore.validate(16, 8, 64, 16, 100, KvCacheType.F16));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CudaKvBlockStore.validate(16, 8, 64, 32, 100, KvCacheType.F32));
        assertTrue(e.getMessage().contains("blocks of 16 positions"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CudaKvBlockStore.validate(16, 8, 512, 16, 100, KvCacheType.F32));
        assertThrows(IllegalArgumentException.class, () -> CudaKvBlockStore.validate(16, 8, 64, 16, 0, KvCacheType.F32));
        assertThrows(IllegalArgumentException.class, () -> CudaKvBlockStore.validate(16, 8, 64, 16, 10, null));
    }

    @Test
    void storeSizeIsBlocksTimesWhatTheSchedulerBudgetsPerBlock() {
        int numLayers = 16, kvDim = 512, numBlocks = 37;
        for (KvCacheType type : KvCacheType.values())
            assertEquals(numBlocks * KvBlockStore.bytesPerBlock(numLayers, kvDim, LaunchGeometry.KV_BLOCK, type),
                    CudaKvBlockStore.sizeBytes(numLayers, numBlocks, kvDim, type), type.toString());
        // An F32 store of n blocks is laid out exactly like a private cache of n blocks.
        assertEquals(CudaKvCache.sizeBytes(numLayers, numBlocks, kvDim), CudaKvBlockStore.sizeBytes(numLayers, numBlocks, kvDim, KvCacheType.F32));
    }

    @Test
    void deviceTablesGrowInPowersOfTwo() {
        assertEquals(64, CudaKvBlockStore.tableCapacity(0));
        assertEquals(64, CudaKvBlockStore.tableCapacity(64));
        assertEquals(128, CudaKvBlockStore.tableCapacity(65));
        assertEquals(4096, CudaKvBlockStore.tableCapacity(3000));
    }

    @Test
    void sequencesWithInterleavedTablesNeverShareARow() {
        // A pool of 12 blocks, two sequences dealt alternate blocks out of order, as a scheduler would.
        int numBlocks = 12, numLayers = 3, kvDim = 4;
        int[] a = {7, 0, 9, 4, 2, 11}, b = {1, 10, 3, 8, 6, 5};
        long elements = CudaKvBlockStore.sizeBytes(numLayers, numBlocks, kvDim, KvCacheType.F32) / Float.BYTES;
        boolean[] used = new boolean[(int) elements];
        for (int[] table : new int[][] {a, b})
            for (int value = 0; value < 2; value++)
                for (int layer = 0; layer < numLayers; layer++)
                    for (int pos = 0; pos < table.length * LaunchGeometry.KV_BLOCK; pos++) {
                        long row = CudaKvCache.rowIndex(table, numLayers, numBlocks, kvDim, layer, pos, value == 1);
                        for (int e = 0; e < kvDim; e++) {
                            assertFalse(used[(int) row + e], "row of layer " + layer + " position " + pos + " used twice");
                            used[(int) row + e] = true;
                        }
                        // The CPU store's address of the same position: block * blockSize + slot, per layer.
                        long slot = (long) table[pos / LaunchGeometry.KV_BLOCK] * LaunchGeometry.KV_BLOCK + pos % LaunchGeometry.KV_BLOCK;
                        assertEquals(((long) (value * numLayers + layer) * numBlocks * LaunchGeometry.KV_BLOCK + slot) * kvDim, row);
                    }
        for (boolean u : used) assertTrue(u, "every element of the pool belongs to one of the two sequences");
    }
}
