package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.collective.Collective;
import dev.tessera.kernels.collective.HostCollective;
import dev.tessera.kernels.cuda.CudaBackend;
import dev.tessera.kernels.cuda.NcclCollective;

import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The collective a tensor-parallel rank on a GPU uses: NCCL's allreduce and all-to-all over device activations, one
 * rank on this device, against the host collective on the same rows (a group of one must hand back its own rows bit
 * for bit); then a tensor-parallel step of stories260K whose ranks combine through NCCL, one rank per device
 * ({@link NcclTensorParallelStep}), against the CPU backend. Where NCCL cannot run, each row says why in one line.
 */
final class CollectiveSection extends CheckSection {
    CollectiveSection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "collective";
    }

    @Override
    void run() throws Exception {
        Backend backend = deviceBackend();
        if (!(backend instanceof CudaBackend cuda)) {
            report.row(name(), "nccl", "skipped: no CUDA device (" + backend.name() + ")", "SKIP");
            report.row(name(), TP_STEP, "skipped: no CUDA device (" + backend.name() + ")", "SKIP");
            backend.close();
            return;
        }
        String problem = NcclCollective.libraryProblem();
        if (!problem.isEmpty()) {
            report.row(name(), "nccl", "skipped: " + problem, "SKIP");
            report.row(name(), TP_STEP, "skipped: " + problem, "SKIP");
            cuda.close();
            return;
        }
        try (cuda; Collective nccl = new NcclCollective(cuda, 0, 1, NcclCollective.uniqueId());
             Collective host = HostCollective.single(cuda)) {
            int rows = 16, width = 2048;
            float[] data = new float[rows * width];
            SplittableRandom random = new SplittableRandom(11);
            for (int i = 0; i < data.length; i++) data[i] = (float) random.nextGaussian();
            check("allreduce f32 16x2048 (1 rank)", cuda, nccl, host, data, rows, width, false);
            check("all-to-all 16 rows of 2048 (1 rank)", cuda, nccl, host, data, rows, width, true);
        }
        tensorParallelStep();
    }

    private static final String TP_STEP = "tensor-parallel step over NCCL vs CPU";

    private void tensorParallelStep() throws Exception {
        int numRanks = Math.min(2, NcclTensorParallelStep.deviceCount());
        NcclTensorParallelStep.Outcome o = NcclTensorParallelStep.run(modelsDir.resolve("stories260K.gguf"), numRanks, numThreads);
        // F16/F32 device math against the CPU: argmax must agree, logits within 1% of the largest.
        boolean ok = o.sameArgmax() && o.maxAbsDiff() <= 0.01f * Math.max(1f, o.maxAbsRef());
        String ranks = o.numRanks() == 1 ? "1 rank (one GPU here: NCCL needs one GPU per rank, and one rank skips the collective)"
                : o.numRanks() + " ranks on " + o.numRanks() + " GPUs";
        report.row(name(), TP_STEP + ", stories260K prefill, " + ranks, String.format(Locale.ROOT,
                "max |logit diff| %.2e of max |logit| %.2f, argmax %s", o.maxAbsDiff(), o.maxAbsRef(), o.sameArgmax() ? "equal" : "DIFFERS"),
                ok ? "ok" : "FAIL");
    }

    private void check(String item, Backend b, Collective nccl, Collective host, float[] data, int rows, int width, boolean allToAll) {
        float[] viaNccl = run(b, nccl, data, rows, width, allToAll), viaHost = run(b, host, data, rows, width, allToAll);
        boolean same = Arrays.equals(viaNccl, data) && Arrays.equals(viaHost, data);
        report.row(name(), item, String.format(Locale.ROOT, "%s (NCCL %s host collective)", same ? "rows unchanged, bit for bit" : "rows differ",
                Arrays.equals(viaNccl, viaHost) ? "equals" : "differs from"), same ? "ok" : "FAIL");
    }

    private static float[] run(Backend b, Collective c, float[] data, int rows, int width, boolean allToAll) {
        Activations x = b.allocate(rows, width);
        b.upload(data, x, rows);
        float[] out = new float[rows * width];
        if (allToAll) {
            Activations recv = b.allocate(rows, width);
            int[] received = new int[1];
            int n = c.allToAll(x, new int[]{rows}, recv, received);
            if (n != rows || received[0] != rows) throw new IllegalStateException("all-to-all received " + n + " rows, sent " + rows);
            b.download(recv, out, rows);
        } else {
            c.allReduce(x, rows);
            b.download(x, out, rows);
        }
        return out;
    }
}
