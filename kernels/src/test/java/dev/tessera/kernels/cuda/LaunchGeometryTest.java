package dev.tessera.kernels.cuda;

import dev.tessera.kernels.TensorType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Host-side launch math and KV block tables; no GPU needed. */
class LaunchGeometryTest {

    @Test
    void matvecTierIsTheSmallestCompiledTierHoldingTheTokens() {
        int[] expected = {0, 1, 2, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16, 16, 16};
        for (int n = 1; n <= 16; n++) assertEquals(expected[n], LaunchGeometry.matvecTier(n), "tokens " + n);
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.matvecTier(17));
        assertEquals(4, LaunchGeometry.tierIndex(16));
        assertEquals(0, LaunchGeometry.tierIndex(1));
    }

    @Test
    void gridsCoverEveryRowAndElement() {
        assertEquals(1, LaunchGeometry.matvecBlocks(1));
        assertEquals(18, LaunchGeometry.matvecBlocks(72));
        assertEquals(19, LaunchGeometry.matvecBlocks(73));
        assertEquals(32064, LaunchGeometry.matvecBlocks(128256));
        assertEquals(1, LaunchGeometry.elementwiseBlocks(256));
        assertEquals(2, LaunchGeometry.elementwiseBlocks(257));
        assertEquals(32, LaunchGeometry.rowThreads(1, 256));
        assertEquals(64, LaunchGeometry.rowThreads(33, 256));
        assertEquals(256, LaunchGeometry.rowThreads(4096, 256));
        assertEquals(3, LaunchGeometry.prefillBlocksY(17));
    }

    @Test
    void splitMatvecsCoverEveryRowWithWholeBlocks() {
        assertEquals(1, LaunchGeometry.matvecSplit(2048, 1));
        assertEquals(2, LaunchGeometry.matvecSplit(4096, 2));
        assertEquals(4, LaunchGeometry.matvecSplit(8192, 1));
        assertEquals(1, LaunchGeometry.matvecSplit(8192, 16));
        for (int split : new int[] {1, 2, 4}) {
            assertEquals(0, LaunchGeometry.MATVEC_ROWS % split, "a block holds whole rows");
            int rowsPerBlock = LaunchGeometry.MATVEC_ROWS / split;
            for (int rows : new int[] {1, 3, 2048, 2049})
                assertEquals((rows + rowsPerBlock - 1) / rowsPerBlock, LaunchGeometry.matvecBlocks(rows, split), rows + " rows, split " + split);
        }
        assertEquals(2048, LaunchGeometry.matvecBlocks(2048, 4));
    }

    @Test
    void unitsMatchTheKernelFormatStructs() {
        // 4096 columns: F16 in 1024 units of 4, Q8_0 in 128 blocks x 4, Q4_K in 16 blocks x 8, Q6_K in 16 x 16.
        assertEquals(1024, LaunchGeometry.unitsPerRow(TensorType.F16, 4096));
        assertEquals(512, LaunchGeometry.unitsPerRow(TensorType.Q8_0, 4096));
        assertEquals(512, LaunchGeometry.unitsPerRow(TensorType.Q4_0, 4096));
        assertEquals(128, LaunchGeometry.unitsPerRow(TensorType.Q4_K, 4096));
        assertEquals(256, LaunchGeometry.unitsPerRow(TensorType.Q6_K, 4096));
        assertEquals("q4_k", LaunchGeometry.formatSuffix(TensorType.Q4_K));
        assertNull(LaunchGeometry.formatSuffix(TensorType.Q5_K));
    }

    @Test
    void stagingFieldsDoNotOverlap() {
        int m = 10;
        assertEquals(0, LaunchGeometry.cacheBaseOffset(m, 0));
        assertEquals(80, LaunchGeometry.blockTableOffset(m, 0));
        assertEquals(160, LaunchGeometry.numBlocksOffset(m, 0));
        assertEquals(200, LaunchGeometry.positionOffset(m, 0));
        assertEquals(240, LaunchGeometry.tokenOffset(m, 0));
        assertEquals(LaunchGeometry.STAGING_BYTES_PER_TOKEN * m, LaunchGeometry.tokenOffset(m, m - 1) + 4);
    }

    @Test
    void blockTableAddressesEveryPositionOnce() {
        int capacity = 40, numLayers = 2, kvDim = 8;
        int numBlocks = LaunchGeometry.numKvBlocks(capacity);
        assertEquals(3, numBlocks);
        int[] table = CudaKvCache.contiguousBlockTable(numBlocks);
        assertArrayEquals(new int[] {0, 1, 2}, table);
        long floats = CudaKvCache.sizeBytes(numLayers, numBlocks, kvDim) / Float.BYTES;
        boolean[] used = new boolean[(int) floats];
        for (int value = 0; value < 2; value++)
            for (int layer = 0; layer < numLayers; layer++)
                for (int pos = 0; pos < numBlocks * LaunchGeometry.KV_BLOCK; pos++) {
                    long i = CudaKvCache.rowIndex(table, numLayers, numBlocks, kvDim, layer, pos, value == 1);
                    assertEquals(0, i % kvDim);
                    for (int e = 0; e < kvDim; e++) {
                        assertEquals(false, used[(int) i + e], "row of layer " + layer + " pos " + pos + " reused");
                        used[(int) i + e] = true;
                    }
                }
        // A permuted table moves whole blocks: position 17 (block 1, slot 1) lands in physical block 0.
        int[] permuted = {2, 0, 1};
        assertEquals(1L * kvDim, CudaKvCache.rowIndex(permuted, numLayers, numBlocks, kvDim, 0, 17, false));
    }
}
