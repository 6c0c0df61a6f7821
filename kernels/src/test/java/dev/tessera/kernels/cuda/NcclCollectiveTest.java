package dev.tessera.kernels.cuda;

import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.bindings.nccl.nccl_h;
import dev.tessera.kernels.Activations;
import dev.tessera.kernels.collective.CollectiveException;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * NCCL collectives: without libnccl, opening fails in one line naming the library; with a CUDA device and libnccl,
 * allReduce and allToAll run with one rank per device (each on its own thread and backend), else skip with a reason.
 */
class NcclCollectiveTest {

    @Test
    void withoutLibncclOpeningFailsInOneLineNamingIt() {
        Assumptions.assumeFalse(nccl_h.libraryAvailable(), "libnccl is installed here (" + nccl_h.libraryStatus() + "); the missing-library path is not reachable");
        for (Runnable open : List.<Runnable>of(NcclCollective::uniqueId, () -> new NcclCollective(null, 0, 1, new byte[128]))) {
            CollectiveException e = assertThrows(CollectiveException.class, open::run);
            assertTrue(e.getMessage().startsWith("NCCL unavailable: libnccl.so.2 not found"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        }
    }

    @Test
    void allReduceAndAllToAllOneRankPerDevice() throws Exception {
        int numDevices = deviceCount();
        Assumptions.assumeTrue(nccl_h.libraryAvailable(), "NCCL test skipped: " + nccl_h.libraryStatus());
        byte[] id = NcclCollective.uniqueId();
        assertEquals(nccl_h.NCCL_UNIQUE_ID_BYTES, id.length);
        int size = numDevices, width = 96;
        ExecutorService pool = Executors.newFixedThreadPool(size);
        try {
            List<Future<?>> ranks = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                int rank = r;
                ranks.add(pool.submit(() -> { runRank(rank, size, id, width); return null; }));
            }
            for (Future<?> f : ranks) f.get(120, TimeUnit.SECONDS);
        } finally {
            pool.shutdownNow();
        }
    }

    /** Rank r: allReduce of rows holding r + 1 + i (in and out of a recorded step), then allToAll of d + 1 rows to each d. */
    private static void runRank(int rank, int size, byte[] id, int width) {
        try (CudaBackend backend = new CudaBackend(rank); NcclCollective nccl = new NcclCollective(backend, rank, size, id)) {
            assertEquals(rank, nccl.rank());
            assertEquals(size, nccl.size());
            assertTrue(nccl.recordable());
            int numTokens = 3;
            Activations x = backend.allocate(numTokens, width);
            float[] values = new float[numTokens * width];
            for (int i = 0; i < values.length; i++) values[i] = rank + 1 + i;
            backend.upload(values, x, numTokens);
            nccl.allReduce(x, numTokens);
            float[] got = new float[values.length], expected = new float[values.length];
            backend.download(x, got, numTokens);
            for (int i = 0; i < values.length; i++) expected[i] = size * (size + 1) / 2f + size * (float) i;
            assertArrayEquals(expected, got, "allReduce on rank " + rank);

            // The same sum inside a recorded step: captured once, replayed once.
            for (int rep = 0; rep < 2; rep++) {
                backend.upload(values, x, numTokens);
                backend.beginStep("nccl step", numTokens);
                nccl.allReduce(x, numTokens);
                backend.endStep();
                backend.download(x, got, numTokens);
                assertArrayEquals(expected, got, "recorded allReduce on rank " + rank + ", run " + rep);
            }

            // allToAll: d + 1 rows to rank d; row j to d holds 1000 * rank + 100 * d + j in every column.
            int[] sendCounts = new int[size], recvCounts = new int[size];
            int numSend = 0;
            for (int d = 0; d < size; d++) { sendCounts[d] = d + 1; numSend += d + 1; }
            float[] rows = new float[numSend * width];
            int at = 0;
            for (int d = 0; d < size; d++)
                for (int j = 0; j < sendCounts[d]; j++, at++)
                    for (int c = 0; c < width; c++) rows[at * width + c] = 1000 * rank + 100 * d + j;
            Activations send = backend.allocate(numSend, width), recv = backend.allocate(size * (rank + 1), width);
            backend.upload(rows, send, numSend);
            int numRecv = nccl.allToAll(send, sendCounts, recv, recvCounts);
            assertEquals(size * (rank + 1), numRecv);
            float[] in = new float[numRecv * width];
            backend.download(recv, in, numRecv);
            at = 0;
            for (int src = 0; src < size; src++) {
                assertEquals(rank + 1, recvCounts[src], "rows from rank " + src);
                for (int j = 0; j < recvCounts[src]; j++, at++)
                    assertEquals(1000 * src + 100 * rank + j, in[at * width + width - 1], "row " + j + " from rank " + src + " at rank " + rank);
            }
        }
    }

    /** CUDA devices visible here; aborts the test with the reason when there is no driver or device. */
    private static int deviceCount() {
        try (Arena arena = Arena.ofConfined()) {
            int rc = cuda_h.cuInit(0);
            Assumptions.assumeTrue(rc == cuda_h.CUDA_SUCCESS, "no CUDA device: cuInit returned " + rc);
            MemorySegment count = arena.allocate(cuda_h.C_INT);
            Assumptions.assumeTrue(cuda_h.cuDeviceGetCount(count) == cuda_h.CUDA_SUCCESS && count.get(cuda_h.C_INT, 0) > 0, "no CUDA device");
            return count.get(cuda_h.C_INT, 0);
        } catch (RuntimeException e) {  // LibraryUnavailableException: no driver
            Assumptions.abort("no CUDA device: " + e.getMessage());
            return 0;
        }
    }
}
