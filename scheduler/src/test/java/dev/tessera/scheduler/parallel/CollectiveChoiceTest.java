package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.collective.CollectiveKind;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Which collective a group uses, from what each rank said it computes on and whether it can load libnccl. */
class CollectiveChoiceTest {
    static final String MISSING = "NCCL unavailable: libnccl.so.2 not found";

    static CollectiveChoice.Rank master(String backend, String ncclProblem) {
        return new CollectiveChoice.Rank("rank 0 (this process)", backend, ncclProblem);
    }

    static CollectiveChoice.Rank worker(int rank, String backend, String ncclProblem) {
        return new CollectiveChoice.Rank("worker 10.0.0." + rank + ":7000 (rank " + rank + ")", backend, ncclProblem);
    }

    static final CollectiveChoice.Rank CUDA_MASTER = master("cuda:0 (NVIDIA H100 80GB HBM3)", "");
    static final List<CollectiveChoice.Rank> CUDA_WORKERS = List.of(worker(1, "cuda:0 (NVIDIA H100 80GB HBM3)", ""), worker(2, "cuda:1 (NVIDIA H100 80GB HBM3)", ""));

    @Test
    void autoIsNcclOnlyWhenEveryRankIsOnCudaWithTheLibrary() {
        assertEquals(CollectiveKind.NCCL, CollectiveChoice.resolve(CollectiveKind.AUTO, CUDA_MASTER, CUDA_WORKERS));
        assertEquals(CollectiveKind.STAR, CollectiveChoice.resolve(CollectiveKind.AUTO, master("cpu (16 threads)", ""), CUDA_WORKERS));
        assertEquals(CollectiveKind.STAR, CollectiveChoice.resolve(CollectiveKind.AUTO, master("cuda:0 (NVIDIA H100)", MISSING), CUDA_WORKERS));
        assertEquals(CollectiveKind.STAR, CollectiveChoice.resolve(CollectiveKind.AUTO, CUDA_MASTER,
                List.of(CUDA_WORKERS.getFirst(), worker(2, "cpu (4 threads)", ""))));
        assertEquals(CollectiveKind.STAR, CollectiveChoice.resolve(CollectiveKind.AUTO, CUDA_MASTER,
                List.of(CUDA_WORKERS.getFirst(), worker(2, "cuda:1 (NVIDIA H100)", MISSING))));
        assertEquals(CollectiveKind.STAR, CollectiveChoice.resolve(CollectiveKind.AUTO, master("cpu (2 threads)", MISSING),
                List.of(worker(1, "cpu (2 threads)", MISSING))));
    }

    @Test
    void starAndRingAreKeptWhateverTheRanksAreOn() {
        for (CollectiveKind k : List.of(CollectiveKind.STAR, CollectiveKind.RING)) {
            assertEquals(k, CollectiveChoice.resolve(k, CUDA_MASTER, CUDA_WORKERS));
            assertEquals(k, CollectiveChoice.resolve(k, master("cpu (2 threads)", MISSING), List.of(worker(1, "cpu (2 threads)", MISSING))));
        }
    }

    @Test
    void ncclIsRefusedInOneLineNamingTheRankThatCannotJoin() {
        assertEquals(CollectiveKind.NCCL, CollectiveChoice.resolve(CollectiveKind.NCCL, CUDA_MASTER, CUDA_WORKERS));
        var e = assertThrows(IllegalArgumentException.class, () -> CollectiveChoice.resolve(CollectiveKind.NCCL, CUDA_MASTER,
                List.of(CUDA_WORKERS.getFirst(), worker(2, "cpu (4 threads)", MISSING))));
        assertEquals("--collective nccl needs every rank on CUDA; worker 10.0.0.2:7000 (rank 2) computes on cpu (4 threads)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> CollectiveChoice.resolve(CollectiveKind.NCCL, CUDA_MASTER,
                List.of(worker(1, "cuda:0 (NVIDIA H100)", MISSING))));
        assertEquals("--collective nccl: worker 10.0.0.1:7000 (rank 1): " + MISSING, e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> CollectiveChoice.resolve(CollectiveKind.NCCL, master("cpu (16 threads)", ""), CUDA_WORKERS));
        assertEquals("--collective nccl needs every rank on CUDA; rank 0 (this process) computes on cpu (16 threads)", e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }
}
