package dev.tessera.scheduler.parallel;

import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.kernels.cuda.CudaBackend;
import dev.tessera.kernels.cuda.NcclCollective;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.scheduler.engine.BatchingEngine;
import dev.tessera.scheduler.engine.SingleRequestTest;
import dev.tessera.scheduler.sched.SchedulerOutput;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tensor-parallel groups over NCCL with real worker processes: a worker on the CPU is refused by name before any rank
 * starts joining (and serves the next master, whose {@code auto} becomes star); on a host with two CUDA devices and
 * libnccl, a master on device 0 and a worker on device 1 give the greedy tokens of one process.
 */
class TensorParallelNcclTest {
    static final int NUM_TOKENS = 24;

    @TempDir
    Path temp;

    @Test
    void ncclWithAWorkerOnTheCpuIsRefusedNamingItAndAutoThenRunsStar() throws Exception {
        Path model = TensorParallelEngineTest.MODELS.resolve("stories260K.gguf");
        int[] prompt, reference;
        try (LoadedModel m = ModelLoader.load(model, new CpuBackend(1), 64)) {
            prompt = m.tokenizer().encode("Once upon a time", true, false);
            reference = SingleRequestTest.greedyAlone(m.model(), prompt, NUM_TOKENS, t -> false);
        }
        try (GgufFile f = GgufFile.open(model);
             WorkerProcesses workers = new WorkerProcesses(Files.createDirectories(temp.resolve("shards")), 0, true)) {
            ModelConfig c = ModelConfig.fromGguf(f);
            ShardPlan plan = TensorParallelRunner.plan(f, c, new int[]{1, 1});
            workers.start(0);
            try (TensorParallelRunner runner = new TensorParallelRunner(f, c, new CpuBackend(1), workers.addresses(1), plan, CollectiveKind.NCCL,
                    0, 64, 16, Duration.ofSeconds(20), null, List.of())) {
                runner.allocateKv(8, 16, KvCacheType.F32);
                SchedulerOutput step = new SchedulerOutput(List.of(new SchedulerOutput.ScheduledSequence(0, prompt, 0, 0, new int[]{0}, true)), new int[0], false);
                long t0 = System.nanoTime();
                var e = assertThrows(TensorParallelRunner.TensorParallelException.class, () -> runner.execute(step, new float[c.vocabSize()], new int[1]));
                assertEquals("tensor-parallel set-up failed: --collective nccl needs every rank on CUDA; worker 127.0.0.1:" + workers.address(0).getPort()
                        + " (rank 1) computes on cpu (1 threads)", e.getMessage());
                assertFalse(e.getMessage().contains("\n"));
                assertTrue(System.nanoTime() - t0 < 15_000_000_000L, "the refusal waited on something");
            }
            try (TensorParallelRunner runner = new TensorParallelRunner(f, c, new CpuBackend(1), workers.addresses(1), plan, CollectiveKind.AUTO,
                    0, 64, 16, Duration.ofSeconds(20), null, List.of());
                 BatchingEngine engine = TensorParallelEngineTest.engine(runner, 0)) {
                assertArrayEquals(reference, TensorParallelEngineTest.generate(engine, prompt, NUM_TOKENS));
                assertEquals("star", runner.collectiveName(), "auto on CPU ranks");
            }
        }
    }

    @Test
    void ncclGroupOfTwoGpusGivesTheGreedyTokensOfOneProcess() throws Exception {
        int numDevices = cudaDeviceCount();
        Assumptions.assumeTrue(NcclCollective.libraryProblem().isEmpty(), "NCCL test skipped: " + NcclCollective.libraryProblem());
        Assumptions.assumeTrue(numDevices >= 2, "NCCL test skipped: one rank per GPU and this host has " + numDevices
                + " CUDA device (NCCL refuses two ranks on one GPU)");
        Path model = TensorParallelEngineTest.MODELS.resolve("stories260K.gguf");
        int[] prompt, reference;
        try (LoadedModel m = ModelLoader.load(model, new CudaBackend(0), 64)) {
            prompt = m.tokenizer().encode("Once upon a time", true, false);
            reference = SingleRequestTest.greedyAlone(m.model(), prompt, NUM_TOKENS, t -> false);
        }
        try (GgufFile f = GgufFile.open(model);
             WorkerProcesses workers = new WorkerProcesses(Files.createDirectories(temp.resolve("shards")), 0, true, "cuda:1")) {
            ModelConfig c = ModelConfig.fromGguf(f);
            workers.start(0);
            try (TensorParallelRunner runner = new TensorParallelRunner(f, c, new CudaBackend(0), workers.addresses(1),
                    TensorParallelRunner.plan(f, c, new int[]{1, 1}), CollectiveKind.NCCL, 0, 64, 16, Duration.ofSeconds(60), null, List.of());
                 BatchingEngine engine = TensorParallelEngineTest.engine(runner, 0)) {
                assertArrayEquals(reference, TensorParallelEngineTest.generate(engine, prompt, NUM_TOKENS));
                assertEquals("nccl", runner.collectiveName());
            }
        }
    }

    /** CUDA devices visible here; aborts the test with the reason when there is no driver or device. */
    static int cudaDeviceCount() {
        try (Arena arena = Arena.ofConfined()) {
            int rc = cuda_h.cuInit(0);
            Assumptions.assumeTrue(rc == cuda_h.CUDA_SUCCESS, "NCCL test skipped: no CUDA device (cuInit returned " + rc + ")");
            MemorySegment count = arena.allocate(cuda_h.C_INT);
            Assumptions.assumeTrue(cuda_h.cuDeviceGetCount(count) == cuda_h.CUDA_SUCCESS, "NCCL test skipped: cuDeviceGetCount failed");
            return count.get(cuda_h.C_INT, 0);
        } catch (RuntimeException e) {  // LibraryUnavailableException: no driver
            Assumptions.abort("NCCL test skipped: no CUDA device: " + e.getMessage());
            return 0;
        }
    }
}
