package dev.tessera.serving.cli;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.cpu.CpuTopology;
import dev.tessera.offload.AttentionWorker;
import dev.tessera.scheduler.parallel.TensorParallelWorker;
import dev.tessera.scheduler.parallel.TpProtocol;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Set;

/** {@code tessera attention-worker}: a Lamina memory node that holds KV cache and computes attention for a compute node. */
public final class AttentionWorkerCommand implements Command {
    @Override public String name() { return "attention-worker"; }

    @Override public String summary() { return "hold KV cache and compute attention for 'serve|generate|bench --attention-workers'"; }

    @Override
    public String usage() {
        return """
                usage: tessera attention-worker --listen HOST:PORT --kv-cache-memory SIZE [--device cpu|cuda[:N]] [--threads N]

                A memory node for attention offloading (Lamina): the compute node ('tessera serve --attention-workers ...')
                keeps the weights and runs projections, FFN and sampling; this node holds the paged KV cache of the KV
                heads it is given and computes their attention. It needs no model file: the compute node sends the shapes.
                One compute node at a time; each connection starts with empty KV memory. Logs to stderr.

                  --listen HOST:PORT       address compute nodes connect to (required)
                  --kv-cache-memory SIZE   KV memory this node offers, e.g. 8GiB (required)
                  --device auto|cpu|cuda[:N]  where attention runs (default cpu: host memory is the point)
                  --threads N              CPU threads (default: physical cores)""";
    }

    @Override
    public int run(List<String> argList) {
        CliArgs args = new CliArgs(argList, Set.of("listen", "kv-cache-memory", "device", "threads"), Set.of());
        java.net.InetSocketAddress listen;
        try {
            listen = TensorParallelWorker.parseAddress(args.require("listen"));
        } catch (TpProtocol.ProtocolException e) {
            throw new CliArgs.UsageException("--listen: " + e.getMessage());
        }
        long budget = args.getBytes("kv-cache-memory", 0);
        if (budget < 1) throw new CliArgs.UsageException("--kv-cache-memory is required: the KV memory this node offers, e.g. 8GiB");
        int threads = args.getInt("threads", CpuTopology.physicalCores(), 1, 1024);
        List<String> deviceArgs = args.has("device") ? List.of("--device", args.get("device", "cpu")) : List.of("--device", "cpu");
        Backend backend = Devices.backend(new CliArgs(deviceArgs, Set.of("device"), Set.of()), threads);
        try (backend; AttentionWorker worker = new AttentionWorker(backend, budget, listen, System.err)) {
            System.err.printf("attention-worker: listening on %s:%d (%s, --kv-cache-memory %d)%n", listen.getHostString(), worker.port(), backend.name(), budget);
            worker.serve();
        } catch (IOException e) {
            throw new UncheckedIOException("attention-worker on " + listen + ": " + e.getMessage(), e);
        }
        return 0;
    }
}
