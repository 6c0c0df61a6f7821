package dev.tessera.tools.gpucheck;

import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.kernels.cuda.CudaBackend;
import dev.tessera.kernels.cuda.NcclCollective;
import dev.tessera.models.arch.LlamaModel;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.scheduler.parallel.ShardPlan;
import dev.tessera.scheduler.parallel.ShardWeights;
import dev.tessera.scheduler.parallel.TensorParallelRunner;
import dev.tessera.scheduler.sched.SchedulerOutput;
import dev.tessera.scheduler.worker.StepInputs;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * One tensor-parallel prefill step of stories260K whose ranks combine through NCCL, in this process: one rank per CUDA
 * device (two when there are), each on its own thread, backend and slice of the source model — the same graph and
 * shard layout a master and its workers run — and rank 0's logits against the whole model on the CPU backend. With one
 * device the group is rank 0 alone: NCCL refuses two ranks on one GPU, and a graph of one rank skips its collective,
 * so that case checks the shard path only.
 */
final class NcclTensorParallelStep {
    /** Result: how many ranks ran, the largest logit difference, the largest reference logit, whether every argmax agreed. */
    record Outcome(int numRanks, float maxAbsDiff, float maxAbsRef, boolean sameArgmax) {}

    private static final int BLOCK_SIZE = 16, NUM_BLOCKS = 4;

    private NcclTensorParallelStep() {}

    /** CUDA devices visible to this process (0 without a driver). */
    static int deviceCount() {
        try (Arena arena = Arena.ofConfined()) {
            if (cuda_h.cuInit(0) != cuda_h.CUDA_SUCCESS) return 0;
            MemorySegment count = arena.allocate(cuda_h.C_INT);
            return cuda_h.cuDeviceGetCount(count) == cuda_h.CUDA_SUCCESS ? count.get(cuda_h.C_INT, 0) : 0;
        } catch (RuntimeException e) {  // no driver library
            return 0;
        }
    }

    static Outcome run(Path model, int numRanks, int numThreads) throws Exception {
        int[] prompt = {1, 403, 407, 261, 378, 1009, 285, 307, 1010, 322, 265, 260, 411};
        try (GgufFile file = GgufFile.open(model)) {
            ModelConfig config = ModelConfig.fromGguf(file);
            int vocab = config.vocabSize();
            float[] reference = new float[vocab];
            try (CpuBackend cpu = new CpuBackend(numThreads)) {
                LlamaModel whole = new LlamaModel(config, LlamaWeights.load(file, config, cpu), cpu, prompt.length, 1);
                prefill(whole, prompt, reference);
            }
            int[] weights = new int[numRanks];
            java.util.Arrays.fill(weights, 1);
            ShardPlan plan = TensorParallelRunner.plan(file, config, weights);
            byte[] id = NcclCollective.uniqueId();
            float[] logits = new float[vocab];
            ExecutorService pool = Executors.newFixedThreadPool(numRanks);
            try {
                List<Future<?>> ranks = new ArrayList<>();
                for (int r = 0; r < numRanks; r++) {
                    int rank = r;
                    ranks.add(pool.submit(() -> { runRank(file, config, plan, rank, numRanks, id, prompt, rank == 0 ? logits : null); return null; }));
                }
                for (Future<?> f : ranks) f.get(120, TimeUnit.SECONDS);
            } finally {
                pool.shutdownNow();
            }
            float maxDiff = 0, maxRef = 0;
            for (int i = 0; i < vocab; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(logits[i] - reference[i]));
                maxRef = Math.max(maxRef, Math.abs(reference[i]));
            }
            return new Outcome(numRanks, maxDiff, maxRef, argmax(logits) == argmax(reference));
        }
    }

    /** Rank {@code rank} on CUDA device {@code rank}: its slice, its NCCL membership, one prefill; logits on rank 0 only. */
    private static void runRank(GgufFile file, ModelConfig config, ShardPlan plan, int rank, int size, byte[] id, int[] prompt, float[] logits) {
        try (CudaBackend backend = new CudaBackend(rank);
             NcclCollective nccl = new NcclCollective(backend, rank, size, id);
             ShardWeights weights = new ShardWeights(config, plan, rank, file, false, backend, 0)) {
            LlamaModel model = new LlamaModel(config, weights.shape(), weights, rank == 0 ? LlamaWeights.loadHead(file, config, backend) : null,
                    backend, nccl, prompt.length, 1);
            prefill(model, prompt, logits);
        }
    }

    /** One step of the whole prompt; the last row's logits into {@code logits} (null: a rank without the head). */
    private static void prefill(LlamaModel model, int[] prompt, float[] logits) {
        StepInputs inputs = new StepInputs(model.newKvBlockStore(BLOCK_SIZE, NUM_BLOCKS, KvCacheType.F32));
        try {
            SchedulerOutput step = new SchedulerOutput(List.of(new SchedulerOutput.ScheduledSequence(0, prompt, 0, 0, new int[]{0}, logits != null)),
                    new int[0], false);
            StepInputs.Rows rows = inputs.apply(step);
            model.forward(rows.tokens(), rows.batch(), logits != null ? rows.logitRows() : new int[0], logits);
        } finally {
            inputs.clear();
            inputs.store().close();
        }
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

}
