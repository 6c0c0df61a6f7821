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
 * The collective a tensor-parallel rank on a GPU would use: NCCL's allreduce and all-to-all over device activations,
 * one rank on this device, against the host collective on the same rows (a group of one must hand back its own rows
 * bit for bit). A tensor-parallel step over NCCL needs one rank per GPU, so on a one-GPU host it says so in one row.
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
    void run() {
        Backend backend = deviceBackend();
        if (!(backend instanceof CudaBackend cuda)) {
            report.row(name(), "nccl", "skipped: no CUDA device (" + backend.name() + ")", "SKIP");
            backend.close();
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
        report.row(name(), "tensor-parallel step over NCCL", "not run: one rank per GPU is needed and this build's runner"
                + " speaks TCP (--collective nccl is refused in one line)", "SKIP");
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
