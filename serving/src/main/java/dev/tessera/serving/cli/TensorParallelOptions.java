package dev.tessera.serving.cli;

import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.kernels.cuda.NcclCollective;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.scheduler.parallel.ShardPlan;
import dev.tessera.scheduler.parallel.TensorParallelRunner;
import dev.tessera.scheduler.parallel.TensorParallelWorker;
import dev.tessera.scheduler.parallel.TpProtocol;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The tensor-parallel master options of {@code serve}, {@code generate} and {@code bench} ({@code --tp-workers}, {@code --tp-weights},
 * {@code --allreduce}, {@code --memory-window}) and the runs they select: this process is rank 0.
 */
final class TensorParallelOptions {
    static final Set<String> OPTIONS = Set.of("tp-workers", "tp-weights", "collective", "allreduce", "memory-window", "tp-allreduce-listen", "tp-allreduce-via");

    static final String USAGE = "\n" + """
              --tp-workers H:P,...     tensor-parallel: run with these workers (ranks 1..N); this process is rank 0
              --tp-weights 1,1,2       relative device speeds, master first (default: all equal)
              --collective auto|star|ring|nccl  how ranks combine partial sums (default auto: nccl when every rank
                                       is on CUDA with libnccl, else star over TCP; nccl refuses a rank that is not;
                                       --allreduce is an alias)
              --memory-window W        blocks of the master's weights resident at once, 0 = all (default 0)
              --tp-allreduce-listen H:P  bind the master's allreduce listener here (default: a free port)
              --tp-allreduce-via H:P,... per worker, in --tp-workers order, the address it reaches the master's
                                       allreduce listener at (e.g. a 'tessera linkemu' in front of --tp-allreduce-listen)""".indent(2).stripTrailing();

    private TensorParallelOptions() {}

    /**
     * The master's runner: rank 0 on {@code --device}, with batches of up to {@code maxBatchTokens} rows and logits for
     * up to {@code maxLogitRows} sequences a step (the engine's limits).
     */
    static TensorParallelRunner open(CliArgs args, GgufFile file, ModelConfig config, int threads, int maxBatchTokens, int maxLogitRows) {
        List<InetSocketAddress> workers = new ArrayList<>();
        for (String s : args.require("tp-workers").split(",")) {
            try {
                workers.add(TensorParallelWorker.parseAddress(s.trim()));
            } catch (TpProtocol.ProtocolException e) {
                throw new CliArgs.UsageException("--tp-workers: " + e.getMessage());
            }
        }
        int[] weights;
        CollectiveKind kind;
        ShardPlan plan;
        try {
            weights = args.has("tp-weights") ? ShardPlan.parseWeights(args.get("tp-weights", "")) : ones(workers.size() + 1);
            if (weights.length != workers.size() + 1)
                throw new CliArgs.UsageException("--tp-weights has " + weights.length + " entries for " + (workers.size() + 1) + " devices (master first)");
            kind = collective(args.get("collective", args.get("allreduce", "auto")));
            plan = TensorParallelRunner.plan(file, config, weights);
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        int window = args.getInt("memory-window", 0, 0, 1 << 20);
        if (window == 1) throw new CliArgs.UsageException("--memory-window must be 0 (all) or at least 2");
        InetSocketAddress listen = args.has("tp-allreduce-listen") ? address("--tp-allreduce-listen", args.get("tp-allreduce-listen", "")) : null;
        List<InetSocketAddress> via = new ArrayList<>();
        if (args.has("tp-allreduce-via")) {
            for (String s : args.get("tp-allreduce-via", "").split(",")) via.add(address("--tp-allreduce-via", s.trim()));
            if (via.size() != workers.size())
                throw new CliArgs.UsageException("--tp-allreduce-via has " + via.size() + " addresses for " + workers.size() + " workers (one per worker, in --tp-workers order)");
            if (listen == null) throw new CliArgs.UsageException("--tp-allreduce-via needs --tp-allreduce-listen (the fixed port the routes lead to)");
        }
        return new TensorParallelRunner(file, config, Devices.backend(args, threads), workers, plan, kind, window, maxBatchTokens, maxLogitRows,
                Duration.ofSeconds(30), listen, via);
    }

    /**
     * The collective {@code --collective} asks for. NCCL without the library here is refused at once in one line
     * naming what is missing; whether every rank is on CUDA (and what AUTO becomes) is only known from the workers'
     * hello answers, so the group set-up decides that.
     */
    static CollectiveKind collective(String value) {
        CollectiveKind kind = CollectiveKind.parse(value);
        if (kind == CollectiveKind.NCCL && !NcclCollective.libraryProblem().isEmpty())
            throw new IllegalArgumentException("--collective nccl: " + NcclCollective.libraryProblem());  // "NCCL unavailable: libnccl.so.2 not found ..."
        return kind;
    }

    private static InetSocketAddress address(String flag, String s) {
        try {
            return TensorParallelWorker.parseAddress(s);
        } catch (TpProtocol.ProtocolException e) {
            throw new CliArgs.UsageException(flag + ": " + e.getMessage());
        }
    }

    private static int[] ones(int n) {
        int[] w = new int[n];
        java.util.Arrays.fill(w, 1);
        return w;
    }
}
