package dev.tessera.serving.cli;

import dev.tessera.kernels.cpu.CpuTopology;
import dev.tessera.scheduler.parallel.TensorParallelWorker;
import dev.tessera.scheduler.parallel.TpProtocol;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/** {@code tessera worker}: a tensor-parallel worker that serves masters one at a time until killed. */
public final class WorkerCommand implements Command {
    @Override public String name() { return "worker"; }

    @Override public String summary() { return "run a tensor-parallel worker for 'generate/bench --tp-workers'"; }

    @Override
    public String usage() {
        return """
                usage: tessera worker --listen HOST:PORT [--shard-dir DIR] [options]

                Waits for a master ('tessera serve|generate|bench --tp-workers ...'), checks it holds the shard the master
                expects (same source model fingerprint, plan and rank), then computes its share of every layer. With no
                such shard in --shard-dir it asks the master to stream it (stored there, checked by SHA-256 and metadata,
                reused next time); 'tessera shard' can prepare the files offline instead. Prompts and text never reach a
                worker. Logs to stderr.

                  --listen HOST:PORT       control address masters connect to (required)
                  --shard-dir DIR          directory of shard files (default ~/.cache/tessera/shards; created)
                  --no-receive-shards      refuse a master whose shard is missing instead of asking for it
                  --memory-window W        blocks of weights resident at once, 0 = all (default 0; otherwise at least 2)
                  --threads N              CPU threads (default: physical cores)
                  --device auto|cpu|cuda[:N]  where this worker computes its shard (default auto); on CUDA with
                                       libnccl it can join a master's NCCL group (--collective nccl|auto)

                The master sets the batch and KV memory: each session the worker holds paged K/V for its own KV heads,
                as many blocks as the master's pool (its --kv-cache-memory, --kv-cache-type), under the same block ids.""";
    }

    @Override
    public int run(List<String> argList) {
        CliArgs args = new CliArgs(argList, Set.of("listen", "shard-dir", "memory-window", "threads", "device"), Set.of("no-receive-shards"));
        var listen = parse(args.require("listen"));
        boolean receive = !args.has("no-receive-shards");
        Path dir = args.has("shard-dir") ? Path.of(args.get("shard-dir", ""))
                : Path.of(System.getProperty("user.home"), ".cache", "tessera", "shards");
        if (receive && !args.has("shard-dir")) {
            try {
                Files.createDirectories(dir);
            } catch (java.io.IOException e) {
                throw new CliArgs.UsageException("cannot create shard directory " + dir + ": " + e.getMessage());
            }
        }
        if (!Files.isDirectory(dir)) throw new CliArgs.UsageException("--shard-dir " + dir + " is not a directory");
        int window = args.getInt("memory-window", 0, 0, 1 << 20);
        if (window == 1) throw new CliArgs.UsageException("--memory-window must be 0 (all) or at least 2");
        int threads = args.getInt("threads", CpuTopology.physicalCores(), 1, 1024);
        try (TensorParallelWorker worker = new TensorParallelWorker(listen, dir, window, unused -> Devices.backend(args, threads),
                Duration.ofSeconds(30), System.err, receive)) {
            worker.serve();
        }
        return 0;
    }

    private static java.net.InetSocketAddress parse(String s) {
        try {
            return TensorParallelWorker.parseAddress(s);
        } catch (TpProtocol.ProtocolException e) {
            throw new CliArgs.UsageException("--listen: " + e.getMessage());
        }
    }
}
